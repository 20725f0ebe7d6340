"""Search axes: YAML forms, Ray Tune domains, one-line errors naming the field, values applied."""

import pytest
from pydantic import ValidationError

from k400ray.engine.params import AugmentationParams, TrainingParams
from k400ray.tune.space import Axis, apply_values, check_field


def test_a_list_is_a_grid_and_a_mapping_a_distribution():
    from ray import tune

    assert Axis.model_validate([0.2, 1.0]).domain() == tune.grid_search([0.2, 1.0])
    lr = Axis.model_validate({"loguniform": [0.001, 0.1]})
    assert lr.sampled and (lr.kind, lr.low, lr.high) == ("loguniform", 0.001, 0.1)
    domain = lr.domain()
    draws = [domain.sample() for _ in range(200)]
    assert all(0.001 <= d <= 0.1 for d in draws) and min(draws) < 0.01 < max(draws)  # log-spread
    mag = Axis.model_validate({"qrandint": [3, 10, 2]}).domain()
    assert {mag.sample() for _ in range(200)} <= {2, 4, 6, 8, 10} and mag.lower == 3
    assert set(Axis.model_validate({"choice": ["best", "last"]}).domain().categories) == {"best", "last"}


@pytest.mark.parametrize("raw, message", [
    ({"uniform": [0.1, 0.01]}, "low 0.1 > high 0.01"),
    ({"loguniform": [0, 0.1]}, "low must be above 0"),
    ({"randint": [5, 5]}, "leaves no value"),
    ({"gaussian": [0, 1]}, "unknown distribution 'gaussian'"),
    ({"uniform": [0.1]}, "uniform takes [low, high]"),
    ({"uniform": [0.1, 1], "choice": [1]}, "one distribution per axis"),
    ([], "give at least one value"),
])
def test_impossible_axes_are_refused(raw, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Axis.model_validate(raw)


def test_an_axis_is_checked_against_the_field_it_names():
    check_field("training.lr", Axis.model_validate({"loguniform": [1e-4, 1e-1]}))
    with pytest.raises(ValueError, match="space.training.lrr: unknown field"):
        check_field("training.lrr", Axis.model_validate([0.1]))
    with pytest.raises(ValueError, match="section one of training, augmentation"):
        check_field("data.train_index", Axis.model_validate(["a"]))
    with pytest.raises(ValueError, match="12: Input should be less than or equal to 10"):
        check_field("augmentation.randaugment_magnitude", Axis.model_validate({"randint": [5, 13]}))
    with pytest.raises(ValueError, match="0.0: Input should be greater than 0"):
        check_field("training.lr", Axis.model_validate({"uniform": [0, 0.1]}))


def test_sampled_values_are_set_and_validated_in_their_sections():
    sections = {"training": TrainingParams(epochs=3), "augmentation": AugmentationParams()}
    out = apply_values(sections, {"training.lr": 0.02, "augmentation.mixup_alpha": 0.2})
    assert out["training"] == TrainingParams(epochs=3, lr=0.02)
    assert out["augmentation"] == AugmentationParams(mixup_alpha=0.2)
    with pytest.raises(ValidationError):
        apply_values(sections, {"training.lr": -1.0})
