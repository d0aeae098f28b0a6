import torch
from torch import nn

from benchmarks import cost
from benchmarks.archs import build_arch
from benchmarks.datasets import load_dataset
from benchmarks.evaluation import evaluate
from pruners.masks import apply_masks, masks_from_scores, prunable_modules


def _prune(model, sparsity, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = {n: torch.rand(m.weight.shape, generator=g) for n, m in prunable_modules(model).items()}
    apply_masks(model, masks_from_scores(model, scores, sparsity, "layer"))


def test_dense_flops_of_an_mlp_are_two_per_multiply_add():
    model = build_arch("mlp_256x2", (1, 40), 10)
    got = cost.flops(model, (1, 40))
    expected = 2 * (40 * 256 + 256 * 256 + 256 * 10)
    assert got["flops_dense"] == got["flops_effective"] == expected


def test_effective_flops_count_the_multiply_adds_of_kept_weights():
    model = build_arch("mlp_256x2", (1, 40), 10)
    _prune(model, 0.75)
    kept = sum(int(m.weight_mask.sum()) for m in prunable_modules(model).values())
    assert cost.flops(model, (1, 40))["flops_effective"] == 2 * kept
    cnn = build_arch("cnn_32x3", (1, 8, 8), 10)
    dense = cost.flops(cnn, (1, 8, 8))["flops_dense"]
    _prune(cnn, 0.5)
    out = cost.flops(cnn, (1, 8, 8))
    assert out["flops_dense"] == dense
    assert abs(out["flops_effective"] - dense / 2) <= 0.001 * dense  # every layer at half density


def test_flops_are_counted_once_per_architecture(monkeypatch):
    calls = []
    original = torch.utils.flop_counter.FlopCounterMode

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.utils.flop_counter, "FlopCounterMode", counting)
    cost._FLOP_MEMO.clear()
    for seed in range(3):
        model = build_arch("mlp_256x2", (1, 8, 8), 10)
        _prune(model, 0.5, seed)
        cost.flops(model, (1, 8, 8))
    assert len(calls) == 1


def test_latency_rows_for_a_compact_model():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_arch("mlp_256x2", data.input_shape, 10)
    compact = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    rows = {r["metric"]: r["value"] for r in evaluate(model, data, "pruned", compact_model=compact)}
    for b in (1, 256):
        assert rows[f"latency_ms_b{b}"] > 0 and rows[f"latency_ms_b{b}_dense"] > 0
        assert rows[f"latency_speedup_b{b}"] == rows[f"latency_ms_b{b}_dense"] / rows[f"latency_ms_b{b}"]
    assert rows["flops_compact"] == 2 * (64 * 16 + 16 * 10) < rows["flops_dense"]
    no_compact = {r["metric"] for r in evaluate(model, data, "pruned")}
    assert "latency_ms_b1" not in no_compact and "flops_effective" in no_compact
