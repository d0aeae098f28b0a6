import pytest
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
        assert rows[f"latency_ms_b{b}_p10"] <= rows[f"latency_ms_b{b}"] <= rows[f"latency_ms_b{b}_p90"]
    assert rows["latency_protocol_repetitions"] == cost.LATENCY_PROTOCOL.repetitions
    assert rows["flops_compact"] == 2 * (64 * 16 + 16 * 10) < rows["flops_dense"]
    no_compact = {r["metric"] for r in evaluate(model, data, "pruned")}
    assert "latency_ms_b1" not in no_compact and "flops_effective" in no_compact


FAST = cost.LatencyProtocol(warmup=1, repetitions=5, threads=1, batch_sizes=(2, 8))


def _structured_cnn(shape, seed=0):
    from pruners.structured import apply_unit_masks, groups_of, select_units

    torch.manual_seed(seed)
    model = build_arch("cnn_32x3", shape, 10)
    g = torch.Generator().manual_seed(seed)
    scores = {grp.producer: torch.rand(model.get_submodule(grp.producer).weight.shape[0], generator=g)
              for grp in groups_of(model)}  # fmt: skip
    apply_unit_masks(model, select_units(model, scores, 0.5, "layer"))
    return model


def _layouts_seen(models: dict[str, nn.Module]) -> list[tuple]:
    """Forward pre-hooks on every convolution: (model, weight channels-last, input channels-last,
    torch threads) at each call. Hooks survive the copies the timing path makes."""
    seen: list[tuple] = []

    def hook(tag):
        def record(module, args):
            cl = torch.channels_last
            seen.append((tag, module.weight.is_contiguous(memory_format=cl),
                         args[0].is_contiguous(memory_format=cl), torch.get_num_threads()))  # fmt: skip

        return record

    for tag, model in models.items():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_pre_hook(hook(tag))
    return seen


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 40)], ids=["image", "sequence"])
def test_compaction_keeps_the_channels_last_layout(shape):
    from pruners.structured import compact_model

    model = _structured_cnn(shape)
    compact = compact_model(model)
    convs = [m for m in compact.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert any(not c.weight.is_contiguous() for c in convs)  # not a degenerate shape that is both


@pytest.mark.parametrize("compact_layout", [torch.channels_last, torch.contiguous_format], ids=["cl", "std"])
def test_dense_and_compact_models_are_timed_in_one_layout(monkeypatch, compact_layout):
    """Whatever layout the compact model comes in (the old compaction gave the standard one),
    both models and the input are channels-last inside the timing, with the protocol's threads."""
    from pruners.structured import compact_model

    monkeypatch.setattr(cost, "_LATENCY_MEMO", {})
    shape = (3, 8, 8)
    model = _structured_cnn(shape)
    compact = compact_model(model).to(memory_format=compact_layout)
    cost.flops(compact, shape)  # memoised now: the only forwards the hooks see are the timing's
    seen = _layouts_seen({"dense": model, "compact": compact})
    threads = torch.get_num_threads()
    rows = cost.latency(model, compact, shape, FAST)
    assert torch.get_num_threads() == threads  # restored
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    calls_per_model = convs * len(FAST.batch_sizes) * (FAST.warmup + FAST.repetitions)
    assert sum(s[0] == "dense" for s in seen) == sum(s[0] == "compact" for s in seen) == calls_per_model
    assert all(weight_cl and input_cl and t == FAST.threads for _, weight_cl, input_cl, t in seen)
    assert rows["latency_protocol_channels_last"] == 1.0


def test_a_model_without_convolutions_is_timed_in_the_standard_layout(monkeypatch):
    monkeypatch.setattr(cost, "_LATENCY_MEMO", {})
    model = build_arch("mlp_256x2", (1, 8, 8), 10)
    compact = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    assert cost.timing_layout(model) == torch.contiguous_format
    assert cost.latency(model, compact, (1, 8, 8), FAST)["latency_protocol_channels_last"] == 0.0


def test_latency_reports_the_spread_over_repetitions(monkeypatch):
    monkeypatch.setattr(cost, "_LATENCY_MEMO", {})
    from pruners.structured import compact_model

    model = _structured_cnn((2, 40))
    rows = cost.latency(model, compact_model(model), (2, 40), FAST)
    for b in FAST.batch_sizes:
        for which in ("", "_dense"):
            name = f"latency_ms_b{b}{which}"
            assert 0 < rows[f"{name}_p10"] <= rows[name] <= rows[f"{name}_p90"]
    assert rows["latency_protocol_warmup"] == FAST.warmup
    assert rows["latency_protocol_repetitions"] == FAST.repetitions
    assert rows["latency_protocol_threads"] == FAST.threads


def test_the_protocol_is_stated_once_and_written_into_the_leaderboard(tmp_path):
    import json

    from harness.storage import ResultsStore

    text = cost.latency_protocol_text()
    p = cost.LATENCY_PROTOCOL
    assert p.batch_sizes == (1, 256) and p.threads == 1 and p.memory_format == "channels_last"
    for part in (f"{p.warmup} warm-up", f"{p.repetitions} timed", "1 torch thread", "batch sizes 1, 256",
                 "channels-last", "median", "10th to 90th percentile"):  # fmt: skip
        assert part in text
    assert cost.LatencyProtocol(warmup=2, threads=4).text() != text
    with pytest.raises(ValueError):
        cost.LatencyProtocol(memory_format="nhwc")
    store = ResultsStore(tmp_path)
    store.write_leaderboard({"preset": "smoke", "grid": [0.5], "cell_ids": ["c1"]})
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board == {"preset": "smoke", "grid": [0.5], "cell_ids": ["c1"], "latency_protocol": text}
