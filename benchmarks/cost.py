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

Latency (``measure_latency``): median wall time of repeated forwards on CPU, at batch 1 and
256, after warm-up, under ``torch.inference_mode``; measured once per process for each pair
of (masked, compact) layer shapes.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn

from pruners.masks import current_mask, dense_weight, prunable_modules

LATENCY_BATCHES = (1, 256)

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


@torch.inference_mode()
def measure_latency(
    model: nn.Module, input_shape: tuple[int, ...], batch: int, repeats: int = 20, budget_s: float = 1.0
) -> float:
    """Median CPU wall time (ms) of one forward of ``batch`` examples: 3 warm-up runs, then
    up to ``repeats`` runs (at least 5) or until ``budget_s`` seconds have passed, with the
    calling process's torch threads (one per worker in ``run-all``)."""
    model = model.eval()
    x = torch.randn(batch, *input_shape)
    for _ in range(3):
        model(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


_LATENCY_MEMO: dict[tuple, dict[str, float]] = {}


def latency(model: nn.Module, compact_model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """CPU latency of the compact model against the masked model with its masks folded in
    (the dense-shaped computation): ``latency_ms_b{B}``, ``latency_ms_b{B}_dense`` and
    ``latency_speedup_b{B}`` (dense / compact) for B in 1 and 256; ``flops_compact``.

    Latency depends on the layer shapes, not on the weights' values, so it is measured once
    per process for each pair of shapes (the pruned and retrained phases of a cell share it).
    """
    key = (_arch_key(model, input_shape), _arch_key(compact_model, input_shape), torch.get_num_threads())
    if key not in _LATENCY_MEMO:
        dense = folded_copy(model)
        compact = copy.deepcopy(compact_model).cpu().eval()
        out: dict[str, float] = {}
        for batch in LATENCY_BATCHES:
            t_compact = measure_latency(compact, input_shape, batch)
            t_dense = measure_latency(dense, input_shape, batch)
            out[f"latency_ms_b{batch}"] = t_compact
            out[f"latency_ms_b{batch}_dense"] = t_dense
            out[f"latency_speedup_b{batch}"] = t_dense / t_compact
        out["flops_compact"] = flops(compact, input_shape)["flops_effective"]
        _LATENCY_MEMO[key] = out
    return dict(_LATENCY_MEMO[key])
