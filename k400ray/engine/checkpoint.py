"""What a checkpoint holds: the trial config and its resolved recipe, model/optimiser/scheduler
state, the epoch reached, RNG states, the best efficient-mode epoch's weights, and the per-video
predictions of the modes evaluated so far."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from k400ray.engine.metrics import Predictions

STATE = "state.pt"
BEST = "best.pt"  # weights of the best efficient-mode epoch (metrics.json says which)
METRICS = "metrics.json"
CONFIG = "trial_config.json"
RECIPE = "recipe.json"


def predictions_file(mode: str) -> str:
    return f"predictions_{mode}.parquet"


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(directory: Path, *, model, optimizer, scheduler, epoch: int, config: dict, metrics: dict,
         predictions: dict[str, Predictions], world_size: int = 1, base_lr: float | None = None,
         recipe: dict | None = None, best_state: dict | None = None) -> None:
    """``epoch`` is the number of finished training epochs; ``world_size`` and ``base_lr`` (the lr
    before group multipliers and schedule) say what a resume on another world size must rescale;
    ``recipe`` is the trial's resolved recipe (``engine.recipe.TrialRecipe``) as data."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch, "rng": rng_state(), "config": config, "world_size": world_size, "base_lr": base_lr,
        "recipe": recipe,
    }, directory / STATE)
    if best_state is not None:
        torch.save(best_state, directory / BEST)
    if recipe is not None:
        (directory / RECIPE).write_text(json.dumps(recipe, indent=2, sort_keys=True))
    (directory / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    (directory / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True))
    for mode, preds in predictions.items():
        pq.write_table(preds.to_table(), directory / predictions_file(mode))


def weights_digest(state_dict: dict) -> int:
    """A number that names ``state_dict``'s tensors (names, shapes and bytes): equal digests, equal
    weights. 48 bits, so that it survives a float metric exactly; what a run started from another
    run's checkpoint reports, to be compared with that checkpoint's."""
    import hashlib

    h = hashlib.sha1()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return int(h.hexdigest()[:12], 16)


def load_state(directory: Path) -> dict:
    # Our own checkpoint (optimiser state and RNG tuples need full unpickling).
    return torch.load(Path(directory) / STATE, map_location="cpu", weights_only=False)


def load_trial(state: dict):
    """(``TrialConfig``, ``TrialRecipe`` or None) of a checkpoint's ``state`` (:func:`load_state`):
    what it was trained with, typed. Older layouts load too (a flat config, a recipe whose preset is
    a name beside its data); a checkpoint written before recipes were saved has None."""
    from k400ray.engine.config import TrialConfig
    from k400ray.engine.recipe import TrialRecipe

    recipe = state.get("recipe")
    return TrialConfig.model_validate(state["config"]), TrialRecipe.model_validate(recipe) if recipe else None


def load_best(directory: Path) -> dict | None:
    """The best efficient-mode epoch's weights, or None (no epoch evaluated, or an older checkpoint)."""
    path = Path(directory) / BEST
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def load_predictions(directory: Path, mode: str) -> Predictions | None:
    path = Path(directory) / predictions_file(mode)
    return Predictions.from_table(pq.read_table(path)) if path.is_file() else None


def load_metrics(directory: Path) -> dict:
    path = Path(directory) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def run_checkpoint_metrics(run_dir: str) -> list[dict]:
    """The metrics of every checkpoint a Train run keeps (``checkpoint_*`` folders of ``run_dir``:
    a local path or a pyarrow URI such as ``s3://``), oldest first; [] when there is none. What a
    trial restarted by ``--resume`` or a Tune retry finds from its earlier attempt."""
    import pyarrow.fs

    try:
        fs, root = pyarrow.fs.FileSystem.from_uri(run_dir)
    except (pyarrow.ArrowInvalid, ValueError):
        fs, root = pyarrow.fs.LocalFileSystem(), str(Path(run_dir).resolve())
    found = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
            continue
        try:
            with fs.open_input_stream(f"{info.path}/{METRICS}") as stream:
                found.append((info.base_name, json.loads(stream.read())))
        except (OSError, ValueError):
            continue
    return [metrics for _, metrics in sorted(found, key=lambda pair: pair[0])]
