"""After a population-based-training exploit, a run starts from another run's checkpoint with its
own (explored) recipe: the checkpoint's weights and schedule position are restored, and the
optimiser trains with the new recipe's lr, weight decay and momentum, not the saved ones (the
trap of a checkpoint that carries its recipe)."""

import pytest
import torch

from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.optim import build_optimizer
from k400ray.engine.recipe import resolve_recipe
from k400ray.engine.resume import restore


def _recipe(lr: float, weight_decay: float):
    return resolve_recipe(TrialConfig(preset="tsm_r50_1x1x8", data={"train_index": "i"}, num_classes=5,
                                      training={"lr": lr, "weight_decay": weight_decay, "milestones": [2],
                                                "warmup_epochs": 0, "epochs": 6}))


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(4, 5))


def test_explored_values_win_over_the_checkpoint_and_the_weights_are_the_checkpoints(tmp_path):
    saved_recipe, explored = _recipe(0.01, 1e-4), _recipe(0.05, 5e-4)
    model = _model(0)
    opt, sched = build_optimizer(model, saved_recipe)
    model(torch.randn(2, 3, 3, 3)).sum().backward()
    opt.step()
    for _ in range(3):  # three epochs: past the milestone, the schedule's factor is 0.1
        sched.step()
    ckpt.save(tmp_path, model=model, optimizer=opt, scheduler=sched, epoch=3, config={}, metrics={},
              predictions={}, world_size=1, base_lr=saved_recipe.lr, recipe=saved_recipe.model_dump(mode="json"))

    other = _model(1)  # another init: what restore loads must replace it
    assert ckpt.weights_digest(other.state_dict()) != ckpt.weights_digest(model.state_dict())
    new_opt, new_sched = build_optimizer(other, explored)
    state = restore(tmp_path, model=other, optimizer=new_opt, scheduler=new_sched, base_lr=explored.lr,
                    total_epochs=explored.epochs, saved_world_size_default=1)

    assert ckpt.weights_digest(other.state_dict()) == ckpt.weights_digest(model.state_dict())
    for name, tensor in model.state_dict().items():
        assert torch.equal(other.state_dict()[name], tensor), name
    assert state.epoch == 3 and state.lr_rescaled_from == pytest.approx(0.01)
    for group in new_opt.param_groups:  # the schedule's position kept (x0.1), the explored base lr
        assert group["lr"] == pytest.approx(0.1 * 0.05 * group["lr_mult"])
        assert group["weight_decay"] in (pytest.approx(5e-4), 0.0)
    assert any(g["weight_decay"] == pytest.approx(5e-4) for g in new_opt.param_groups)
    assert new_opt.state_dict()["state"]  # the momentum buffers came with the checkpoint
    new_sched.step()  # later epochs follow the explored base lr
    assert new_opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.05 * new_opt.param_groups[0]["lr_mult"])
