"""Inference cost of a model: dense and effective (mask-aware) FLOPs, and CPU latency.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass of a
single example; it counts matrix multiplications and convolutions (2 FLOPs per
multiply-add), not element-wise ops (activations, normalisation, the mask product), which
are a small fraction for these networks.

- ``flops_dense``: FLOPs per example of the architecture with every weight kept.
- ``flops_effective``: FLOPs an implementation that skips zero weights would do:
  ``sum_l F_l d_l + F_rest``, ``F_l`` the dense FLOPs of prunable layer l (Linear/Conv),
  ``d_l = nnz(mask_l) / numel(W_l)`` its weight density, ``F_rest`` the FLOPs outside
  prunable layers. Each weight of a Linear layer takes part in one multiply-add per
  example, each weight of a convolution in one per output position, so scaling by the
  density counts exactly the multiply-adds with a non-zero weight (zero padding counted
  as the dense count does). Units whose input is dead (a pruned filter feeding the next
  layer) are not removed: for structured pruning, ``flops_compact`` counts the physically
  smaller model instead.

Both are deterministic, so the per-layer dense counts are computed once per architecture
and input shape (memoised); a pruned model only needs its mask densities.

Latency (``latency``): CPU wall time of the compact model and of the masked model with its
masks folded in, under one protocol, ``LATENCY_PROTOCOL`` (``latency_protocol_text()`` states
it; the harness writes that sentence into ``leaderboard.json`` as ``latency_protocol``). Both
models and the input are put in one memory layout before timing (channels-last for a model
with 2-D convolutions, as ``build_arch`` builds and trains it; the standard layout otherwise),
the torch thread count is pinned, both models are warmed up, and their timed forwards
alternate (compact, dense, compact, ...) so that background load falls on both alike. The
median over repetitions is the value, the 10th and 90th percentiles its spread. Measured once
per process for each pair of (masked, compact) layer shapes.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pruners.masks import current_mask, dense_weight, prunable_modules

_FLOP_MEMO: dict[tuple, tuple[float, dict[str, float]]] = {}


def _arch_key(model: nn.Module, input_shape: tuple[int, ...]) -> tuple:
    shapes = tuple((n, tuple(dense_weight(m).shape)) for n, m in prunable_modules(model).items())
    params = tuple((n.replace("_orig", ""), tuple(p.shape)) for n, p in model.named_parameters())
    return (type(model).__qualname__, tuple(input_shape), shapes, params)


def layer_flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[float, dict[str, float]]:
    """(total dense FLOPs per example, dense FLOPs of each prunable layer by module name)."""
    from torch.utils.flop_counter import FlopCounterMode

    key = _arch_key(model, input_shape)
    if key not in _FLOP_MEMO:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(torch.zeros(1, *input_shape, device=device))
        model.train(was_training)
        counts = counter.get_flop_counts()
        root = type(model).__name__
        per_layer = {n: float(sum(counts.get(f"{root}.{n}", {}).values())) for n in prunable_modules(model)}
        _FLOP_MEMO[key] = (float(counter.get_total_flops()), per_layer)
    return _FLOP_MEMO[key]


def flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """``flops_dense`` and ``flops_effective`` per example (see the module docstring)."""
    total, per_layer = layer_flops(model, input_shape)
    modules = prunable_modules(model)
    effective = total
    for name, layer_total in per_layer.items():
        mask = current_mask(modules[name])
        density = float(mask.count_nonzero()) / mask.numel()
        effective -= layer_total * (1.0 - density)
    return {"flops_dense": total, "flops_effective": effective}


def folded_copy(model: nn.Module) -> nn.Module:
    """A CPU copy with masks folded into plain weights (what a dense kernel computes)."""
    from torch.nn.utils import prune

    clone = copy.deepcopy(model).cpu().eval()
    for module in prunable_modules(clone).values():
        if hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return clone


@dataclass(frozen=True)
class LatencyProtocol:
    """How latency is timed: the one definition every latency row is measured under."""

    warmup: int = 3  # untimed forwards of each model per batch size
    repetitions: int = 20  # timed forwards of each model per batch size, alternating
    threads: int = 1  # torch intra-op threads while timing (every cell runs one thread)
    batch_sizes: tuple[int, ...] = (1, 256)
    memory_format: str = "channels_last"  # of models with 2-D convolutions; "contiguous": never
    statistic: str = "median"  # the value; the spread is the 10th-90th percentile range

    def __post_init__(self) -> None:
        if self.memory_format not in ("channels_last", "contiguous"):
            raise ValueError(f"memory_format {self.memory_format!r} is not one of: channels_last, contiguous")
        if self.statistic != "median":
            raise ValueError(f"statistic {self.statistic!r}: only the median is implemented")
        if self.warmup < 0 or self.repetitions < 2 or self.threads < 1 or not self.batch_sizes:
            raise ValueError(f"unusable latency protocol: {self}")

    def describe(self) -> dict:
        return {**asdict(self), "batch_sizes": list(self.batch_sizes), "spread": "p10-p90"}

    def text(self) -> str:
        layout = (
            "channels-last memory layout for models with 2-D convolutions (standard layout otherwise), "
            "the same for the dense and the compact model and their input"
            if self.memory_format == "channels_last"
            else "standard (contiguous) memory layout for the dense and the compact model and their input"
        )
        batches = ", ".join(str(b) for b in self.batch_sizes)
        return (
            f"CPU latency: at batch sizes {batches}, {self.warmup} warm-up forwards of each model, then "
            f"{self.repetitions} timed forwards of each, the compact and the dense (masks folded in) model "
            f"alternating, with {self.threads} torch thread{'s' if self.threads != 1 else ''}, "
            f"{layout}, under torch.inference_mode; reported: the {self.statistic} over repetitions "
            f"(latency_ms_b<B>, latency_ms_b<B>_dense) with its spread, the 10th to 90th percentile "
            f"(_p10, _p90)."
        )


LATENCY_PROTOCOL = LatencyProtocol()
LATENCY_BATCHES = LATENCY_PROTOCOL.batch_sizes  # kept for readers of the old name


def latency_protocol_text(protocol: LatencyProtocol = LATENCY_PROTOCOL) -> str:
    """The one-sentence statement of the latency protocol (stored in ``leaderboard.json``)."""
    return protocol.text()


def timing_layout(model: nn.Module, protocol: LatencyProtocol = LATENCY_PROTOCOL) -> torch.memory_format:
    """The memory layout a model is timed in: channels-last for a model with 2-D convolutions."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return (
        torch.channels_last
        if has_conv and protocol.memory_format == "channels_last"
        else torch.contiguous_format
    )


def _spread(times: list[float]) -> dict[str, float]:
    p = statistics.quantiles(times, n=10, method="inclusive")
    return {"": statistics.median(times), "_p10": p[0], "_p90": p[-1]}


@torch.inference_mode()
def measure_latency(
    models: dict[str, nn.Module],
    input_shape: tuple[int, ...],
    batch: int,
    protocol: LatencyProtocol = LATENCY_PROTOCOL,
) -> dict[str, list[float]]:
    """Wall times (ms) of one forward of ``batch`` examples, ``protocol.repetitions`` per model:
    every model warmed up, then timed in turn within each repetition. The models are used as
    given (``latency`` puts them in one layout); the input takes the first model's layout."""
    layout = timing_layout(next(iter(models.values())), protocol)
    x = torch.randn(batch, *input_shape)
    if x.dim() == 4:
        x = x.contiguous(memory_format=layout)
    for model in models.values():
        model.eval()
        for _ in range(protocol.warmup):
            model(x)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(protocol.repetitions):
        for name, model in models.items():
            t = time.perf_counter()
            model(x)
            times[name].append((time.perf_counter() - t) * 1e3)
    return times


_LATENCY_MEMO: dict[tuple, dict[str, float]] = {}


def latency(
    model: nn.Module,
    compact_model: nn.Module,
    input_shape: tuple[int, ...],
    protocol: LatencyProtocol = LATENCY_PROTOCOL,
) -> dict[str, float]:
    """CPU latency of the compact model against the masked model with its masks folded in
    (the dense-shaped computation), both in one layout (``timing_layout`` of the masked model),
    under ``protocol``. For each batch size B: ``latency_ms_b{B}`` and ``latency_ms_b{B}_dense``
    (medians over repetitions), their ``_p10`` / ``_p90`` percentiles, ``latency_speedup_b{B}``
    (dense median / compact median); the protocol itself as ``latency_protocol_warmup``,
    ``_repetitions``, ``_threads`` and ``_channels_last`` (1 when timed channels-last);
    ``flops_compact``.

    Latency depends on the layer shapes, not on the weights' values, so it is measured once
    per process for each pair of shapes (the pruned and retrained phases of a cell share it).
    """
    key = (_arch_key(model, input_shape), _arch_key(compact_model, input_shape), protocol)
    if key not in _LATENCY_MEMO:
        layout = timing_layout(model, protocol)
        dense = folded_copy(model).to(memory_format=layout)
        compact = copy.deepcopy(compact_model).cpu().eval().to(memory_format=layout)
        out: dict[str, float] = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(protocol.threads)
        try:
            for batch in protocol.batch_sizes:
                times = measure_latency({"compact": compact, "dense": dense}, input_shape, batch, protocol)
                for suffix, value in _spread(times["compact"]).items():
                    out[f"latency_ms_b{batch}{suffix}"] = value
                for suffix, value in _spread(times["dense"]).items():
                    out[f"latency_ms_b{batch}_dense{suffix}"] = value
                out[f"latency_speedup_b{batch}"] = (
                    out[f"latency_ms_b{batch}_dense"] / out[f"latency_ms_b{batch}"]
                )
        finally:
            torch.set_num_threads(threads)
        out["latency_protocol_warmup"] = float(protocol.warmup)
        out["latency_protocol_repetitions"] = float(protocol.repetitions)
        out["latency_protocol_threads"] = float(protocol.threads)
        out["latency_protocol_channels_last"] = float(layout == torch.channels_last)
        out["flops_compact"] = flops(compact, input_shape)["flops_effective"]
        _LATENCY_MEMO[key] = out
    return dict(_LATENCY_MEMO[key])
