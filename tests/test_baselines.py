"""The hand-written loops that ``harness bench`` times compute what they claim to."""

import pytest
import torch

from benchmarks.archs import build_arch
from benchmarks.baselines import _evaluate, _train, minimal_cell
from benchmarks.datasets import load_dataset
from benchmarks.evaluation import evaluation_sets
from benchmarks.training import TrainConfig


@pytest.fixture(scope="module")
def digits_sets():
    data = load_dataset("digits")
    return data, evaluation_sets(data)


def test_loader_fed_evaluation_matches_the_tensor_evaluation(digits_sets):
    data, sets = digits_sets
    torch.manual_seed(0)
    model = build_arch("cnn_32x3", data.input_shape, data.num_classes).eval()
    direct = _evaluate(model, sets, data.num_classes)
    loader = _evaluate(model, sets, data.num_classes, loader_workers=0)
    assert direct.keys() == loader.keys() and len(direct) == len(sets)
    for key, metrics in direct.items():
        assert metrics.keys() == loader[key].keys()
        for name, value in metrics.items():
            assert loader[key][name] == pytest.approx(value, rel=1e-6, abs=1e-6), (key, name)


def test_loader_fed_training_takes_the_same_steps_and_learns(digits_sets):
    data, sets = digits_sets
    config = TrainConfig(epochs=3, batch_size=64, lr=1e-2)
    accuracies = []
    for workers in (None, 0):
        torch.manual_seed(0)
        model = build_arch("mlp_256x2", data.input_shape, data.num_classes)
        steps: list[int] = []

        def count(module, args, out, seen=steps):
            if module.training:
                seen.append(out.shape[0])

        model.register_forward_hook(count)
        _train(model, data.x_train, data.y_train, config, seed=0, loader_workers=workers)
        assert len(steps) == 3 * (len(data.y_train) // 64) and set(steps) == {64}
        test_set = [s for s in sets if s[0] == "test"]
        accuracies.append(_evaluate(model, test_set, data.num_classes)[("test", 0)]["accuracy"])
    assert min(accuracies) > 0.8  # both orders of the same recipe learn the digits


def test_minimal_cell_fed_by_a_loader_times_every_phase(digits_sets):
    data, sets = digits_sets
    config = TrainConfig(epochs=1, batch_size=128)
    times = minimal_cell("mlp_256x2", data, sets, 0.9, 0, config, config, loader_workers=0)
    assert set(times) == {"dense_train", "prune_eval", "retrain_eval"}
    assert all(t > 0 for t in times.values())
