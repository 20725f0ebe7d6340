"""Population based training: Ray Tune's ``PopulationBasedTraining`` over a grid's trials, for
values that may change while a run trains (lr, weight decay, RandAugment magnitude, mixing alphas).

In a spec::

    scheduler:
      kind: pbt
      perturbation_interval: 2          # epochs between exploits
      quantile_fraction: 0.25           # the bottom quarter copies the top quarter
      resample_probability: 0.25
      mutations:
        training.lr: {loguniform: [0.001, 0.1]}
        augmentation.randaugment_magnitude: [3, 5, 7, 9]

The population is every trial of the grid (seeds x ``search.num_samples`` x the grid's points of
one preset: trials copy each other's weights, so they must share an architecture). A mutation is
a :class:`~k400ray.tune.space.Axis`: a list (or ``choice``) is shifted to a neighbouring value or
resampled; a distribution is scaled by 0.8 or 1.2 or resampled (Tune's explore), then kept inside
its bounds (:func:`clamped`). Each trial starts with a value drawn from each axis.

How a trial runs under PBT (:func:`fit`): its Train run reports every epoch with its checkpoint
to Tune (:class:`ReportToTune` on the Train controller, relayed by the trial's own process, as
Tune's function API takes checkpoints only from there). When PBT makes a trial exploit another,
Tune restarts it with the explored values and the donor's checkpoint (``tune.get_checkpoint``);
the trial then fits a *new* Train run (:func:`forked`: its name carries the checkpoint's digest),
which starts from that checkpoint: the trial's own Train run, whose latest checkpoint would win
a resume, is left behind. The new run's recipe holds the explored values, and the worker restores
weights and the schedule's position from the checkpoint but keeps the recipe's lr, weight decay
and momentum (:mod:`k400ray.engine.resume`); the RandAugment magnitude and mixing alphas are
read from the trial's config, never from a checkpoint.

MLflow: one child run per trial, as for any grid; each epoch logs ``pbt.<section.field>`` (the
value it trained with) with its metrics, once: the epoch logger sees an epoch before Tune can
stop the process for it, and the run waits for Tune before it logs the next one (a restart from
an epoch's checkpoint trains, and logs, only the epochs after it). Each exploit sets ``k400ray.pbt.exploit.<epoch>`` (and
``k400ray.pbt.donor``, the latest) to the donor trial's name.

A PBT trial's process is never reused for another trial (``reuse_actors`` off): its Train run
is stopped with the process when Tune pauses or exploits it.

Imports only Ray and the contracts at the top: the Train controller imports this module for
:class:`ReportToTune`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from ray.train import UserCallback

from k400ray.contracts import EFFICIENT_ACC1, EPOCH, PBT_VALUE_PREFIX, is_tested
from k400ray.presets import CUTMIX, MIXUP, RANDAUGMENT

MUTATED = "mutated"  # the param-space key of a trial's mutated values: {section.field: value}
FORK_MARK = ".pbt-"  # a Train run started from a checkpoint: <trial name>.pbt-<digest>
METRIC = EFFICIENT_ACC1
TIME_ATTR = EPOCH
# Schedule-like fields: values a run can change between two epochs. The other training fields set
# the run's length or shape (epochs, batch, milestones, ...), which a population must share.
MUTABLE_TRAINING = ("lr", "weight_decay")
# Which config a mutated augmentation field acts in (it changes nothing in the others).
ACTS_IN = {"randaugment_magnitude": RANDAUGMENT, "randaugment_num_ops": RANDAUGMENT,
           "mixup_alpha": MIXUP, "cutmix_alpha": CUTMIX}


def check_mutation(path: str, axis) -> None:
    """``path`` names a schedule-like field and every value of ``axis`` is valid for it. Raises
    ValueError (one line, ``mutations.<path>: ...``)."""
    from k400ray.tune.space import check_field

    try:
        check_field(path, axis)
    except ValueError as exc:
        raise ValueError("mutations." + str(exc).removeprefix("space.")) from None
    section, _, name = path.partition(".")
    if section == "training" and name not in MUTABLE_TRAINING:
        raise ValueError(f"mutations.{path}: sets the run's length or shape, which the population shares "
                         f"(mutable training fields: {', '.join(MUTABLE_TRAINING)})")


def check_population(scheduler, *, points, epochs_of, eval_interval_of) -> None:
    """A PBT ``scheduler`` (the spec's section) fits the grid: one preset, mutated augmentation
    fields that act in the grid's configs, and a perturbation before the last epoch at which
    every trial evaluates (``epochs_of`` / ``eval_interval_of``: (preset, config) -> epochs, the
    efficient-mode interval). Raises ValueError (one line, naming the field)."""
    presets = sorted({p for p, _, _ in points})
    if len(presets) > 1:
        raise ValueError(f"pbt: trials copy each other's weights, so the grid has one preset (got {', '.join(presets)})")
    configs = sorted({c for _, c, _ in points})
    for path in scheduler.mutations:
        name = path.partition(".")[2]
        if name in ACTS_IN and any(c != ACTS_IN[name] for c in configs):
            raise ValueError(f"mutations.{path}: acts in the {ACTS_IN[name]} config only (the grid has "
                             f"{', '.join(configs)})")
    interval = scheduler.perturbation_interval
    for preset, config, _ in points:
        epochs = epochs_of(preset, config)
        if interval >= epochs:
            raise ValueError(f"perturbation_interval: {interval} epochs leaves no exploit before the last of "
                             f"{preset} x {config}'s {epochs} epochs")
        every = eval_interval_of(preset, config)
        if interval % every:
            raise ValueError(f"perturbation_interval: {interval} is not a multiple of the efficient-mode interval "
                             f"({every} epochs: training.eval_interval), so PBT would find no score to compare")


def initial_space(mutations: dict) -> dict:
    """The param-space entry of the mutated values: each trial draws one from each axis."""
    from ray import tune

    return {MUTATED: {path: tune.choice(list(axis.values)) if axis.kind in ("grid", "choice") else axis.domain()
                      for path, axis in mutations.items()}}


def clamped(value, axis):
    """``value`` (explored by Tune) inside ``axis``'s bounds: a scaled value past a range's end is
    held at it (the integer kinds' upper bound is excluded)."""
    if axis.kind in ("grid", "choice"):
        return value
    high = axis.high - 1 if "randint" in axis.kind else axis.high
    low = axis.low
    out = min(max(value, low), high)
    return type(value)(out) if isinstance(value, int) else out


def build_pbt(spec, max_epochs: int):
    """Ray Tune's PBT for ``spec`` (its ``scheduler`` section, kind ``pbt``), whose trials run
    ``max_epochs``: no perturbation at or after that epoch (the last one is followed by the
    accurate-mode test, which a restart would redo on another trial's weights)."""
    from ray.tune.schedulers import PopulationBasedTraining

    s = spec.scheduler
    mutations = s.mutations

    def explore(config: dict) -> dict:
        values = config.get(MUTATED, {})
        config[MUTATED] = {path: clamped(v, mutations[path]) if path in mutations else v
                           for path, v in values.items()}
        return config

    class UntilLastEpoch(PopulationBasedTraining):
        """PBT that lets the last epoch's reports (and the trial's final one) through untouched."""

        def _get_new_config(self, trial, trial_to_clone):
            """The donor's explored values, the trial's own grid point (Tune copies the donor's
            whole config: the trial would become the donor's seed)."""
            new_config, operations = super()._get_new_config(trial, trial_to_clone)
            own = {k: v for k, v in trial.config.items() if k != MUTATED}
            return {**new_config, **own}, operations

        def on_trial_result(self, tune_controller, trial, result: dict) -> str:
            if is_tested(result) or result.get(TIME_ATTR, 0) >= max_epochs or METRIC not in result:
                return self.CONTINUE
            return super().on_trial_result(tune_controller, trial, result)

    return UntilLastEpoch(
        time_attr=TIME_ATTR, metric=METRIC, mode="max", perturbation_interval=s.perturbation_interval,
        hyperparam_mutations={MUTATED: {path: list(axis.values) if axis.kind in ("grid", "choice") else axis.domain()
                                        for path, axis in mutations.items()}},
        quantile_fraction=s.quantile_fraction, resample_probability=s.resample_probability,
        custom_explore_fn=explore, synch=s.synch, require_attrs=False,
    )


def mutated_values(params: dict) -> dict:
    """The mutated values of a Tune trial's ``params`` (``{section.field: value}``; empty unless PBT)."""
    return dict(params.get(MUTATED) or {})


def explored_config(cfg, values: dict):
    """``cfg`` (a ``TrialConfig``) with ``values`` set in its sections, validated again."""
    from k400ray.tune.space import apply_values

    sections = {"training": cfg.training, "augmentation": cfg.augmentation}
    return cfg.model_copy(update=apply_values(sections, values))


def epoch_values(values: dict) -> dict[str, float]:
    """The per-epoch metrics of the mutated values: ``pbt.<section.field>``."""
    return {f"{PBT_VALUE_PREFIX}{path}": float(v) for path, v in values.items()}


def trial_of(train_run: str) -> str:
    """The trial a Train run (or a checkpoint's config name) belongs to."""
    return train_run.split(FORK_MARK)[0]


def forked(cfg, checkpoint_path: str):
    """``cfg`` for a Train run of its own that starts from the Tune checkpoint at ``checkpoint_path``
    (named after it: a retry of the same start continues that run, another start gets another)."""
    digest = hashlib.sha1(checkpoint_path.encode()).hexdigest()[:10]
    return cfg.model_copy(update={"name": f"{trial_of(cfg.name)}{FORK_MARK}{digest}",
                                  "init_checkpoint": checkpoint_path})


def origin(checkpoint) -> tuple[str, int]:
    """(trial name, epoch) of the Train run that wrote ``checkpoint`` (a ``ray.tune.Checkpoint``)."""
    from k400ray.engine import checkpoint as ckpt

    with checkpoint.as_directory() as directory:
        config = json.loads((Path(directory) / ckpt.CONFIG).read_text())
        epoch = int(ckpt.load_metrics(Path(directory)).get(EPOCH, 0))
    return trial_of(config.get("name", "")), epoch


class _Mailbox:
    """A Ray actor (one process for both directions) between the Train controller and the
    trial's relay: an epoch's report, one at a time, then Tune's acceptance of it."""

    def __init__(self) -> None:
        import asyncio

        self.reports, self.accepted = asyncio.Queue(maxsize=1), asyncio.Queue()

    async def put_report(self, item) -> None:
        await self.reports.put(item)

    async def get_report(self, timeout_s: float):
        """The next report, or None when none came within ``timeout_s``."""
        import asyncio

        try:
            return await asyncio.wait_for(self.reports.get(), timeout_s)
        except asyncio.TimeoutError:
            return None

    async def accept(self) -> None:
        await self.accepted.put(True)

    async def wait_accepted(self) -> None:
        await self.accepted.get()


class ReportToTune(UserCallback):
    """On the Train controller, the last of the run's callbacks: each report of rank 0 (metrics,
    checkpoint path) to ``mailbox``, for :func:`fit`'s relay, then a wait until Tune let the trial
    go on.

    Last, because Tune may pause the trial or make it exploit another as soon as it has an
    epoch, which ends this process (and the controller with it): the callbacks before this one
    (the MLflow epoch logger) have seen the epoch by then. The wait keeps the run from logging a
    later epoch that a restart from this epoch's checkpoint would train (and log) again."""

    def __init__(self, mailbox) -> None:
        self.mailbox = mailbox

    def after_report(self, run_context, metrics, checkpoint) -> None:
        import ray

        report = (dict(metrics[0]) if metrics else {}, checkpoint.path if checkpoint else None)
        ray.get(self.mailbox.put_report.remote(report))
        ray.get(self.mailbox.wait_accepted.remote())


class _Relay(threading.Thread):
    """In the trial's process: the reports :class:`ReportToTune` sent to ``mailbox``, reported to
    Tune with their checkpoints (and ``extra`` metrics), each acknowledged once Tune let the
    trial go on."""

    def __init__(self, mailbox, extra: dict) -> None:
        super().__init__(daemon=True, name="k400ray-pbt-relay")
        self.mailbox, self.extra, self.done = mailbox, extra, threading.Event()

    def run(self) -> None:
        import ray
        import ray.tune

        while True:
            report = ray.get(self.mailbox.get_report.remote(0.5))
            if report is None:
                if self.done.is_set():
                    return
                continue
            metrics, path = report
            try:
                ray.tune.report({**metrics, **self.extra}, checkpoint=ray.tune.Checkpoint(path) if path else None)
            finally:
                ray.get(self.mailbox.accept.remote())  # also when the report failed: the run must not wait forever


def fit(cfg, *, recipe, callbacks: list, values: dict, on_exploit):
    """Fit the PBT trial ``cfg`` (its explored values set) from Tune's checkpoint, if any: the
    donor's after an exploit, the trial's own after a pause or a retry. ``on_exploit(donor,
    epoch)`` is called when the checkpoint is another trial's. ``callbacks`` (the MLflow epoch
    logger) see each epoch before Tune does (:class:`ReportToTune`). Returns the ``TrialOutcome``."""
    import ray
    import ray.tune

    from k400ray.engine.trial import run_trial

    start = ray.tune.get_checkpoint()
    if start is not None:
        donor, epoch = origin(start)
        cfg = forked(cfg, start.path)
        if donor and donor != trial_of(cfg.name):
            on_exploit(donor, epoch)
    mailbox = ray.remote(num_cpus=0)(_Mailbox).remote()
    relay = _Relay(mailbox, epoch_values(values))
    relay.start()
    try:
        return run_trial(cfg, recipe=recipe, callbacks=[*callbacks, ReportToTune(mailbox)])
    finally:
        relay.done.set()
        relay.join()
