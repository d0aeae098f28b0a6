"""GPU-hour estimate of a preset, printed by ``run-all --dry-run``.

    hours = sum over runs of  E_run * t_epoch(arch, dataset) / 3600

``t_epoch`` scales the calibrated reference (``benchmarks/gpu_calibration.toml``:
seconds per training epoch of ``cifar_resnet_20`` on 50,000 CIFAR-shaped images) by the
arch's dense FLOPs per example relative to the reference and by the training-set size.
``E_run`` counts epoch-equivalents: a dense parent trains ``T`` epochs once; a cell
retrains (``finetune`` / ``lr_rewind``: ``E`` epochs; ``weight_rewind``: ``T - k``), after the
pruning phase of a ``PhasePruner`` (its declared ``phase_epochs``) where there is one, or
trains from scratch (at-init and during-training pruners: their own budget, ``T`` when
they declare none); evaluation adds, per phase, a forward pass over every evaluation set,
a third of a training epoch per training-set's worth of examples. FLOPs scaling is crude
for small networks, which leave a GPU underused; the estimate is an upper-level guide.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import benchmarks
from core.atomic import atomic_write_text

CALIBRATION = Path(benchmarks.__file__).resolve().parent / "gpu_calibration.toml"
REFERENCE_SHAPE, REFERENCE_EXAMPLES = (3, 32, 32), 50_000
FORWARD_FRACTION = 1 / 3  # a forward pass costs about a third of a training step


def calibration() -> dict:
    return tomllib.loads(CALIBRATION.read_text())


def dataset_size(name: str) -> tuple[tuple[int, ...], int, int, int]:
    """(input shape, classes, training examples, evaluation examples per phase)."""
    from benchmarks.datasets import DATASETS, load_dataset

    entry = DATASETS.get(name)
    meta = entry.meta
    if meta is not None:  # datasets whose files may be absent declare their size
        return meta["input_shape"], meta["classes"], meta["train"], meta["eval"]
    data = load_dataset(name)
    return data.input_shape, data.num_classes, len(data.y_train), len(data.y_test) + len(data.y_train)


def flops_per_example(arch: str, shape: tuple[int, ...], classes: int, memo: dict) -> float:
    from benchmarks.archs import build_arch
    from benchmarks.cost import layer_flops

    key = (arch, shape, classes)
    if key not in memo:
        memo[key] = layer_flops(build_arch(arch, shape, classes), shape)[0]
    return memo[key]


def estimate(preset: str, filters: list[str] | None = None, study: str | None = None) -> dict:
    from benchmarks.cells import cell_epochs, kind_of
    from harness.runner import build_plan

    cells = build_plan(preset, study, filters).cells
    ref = calibration()
    memo: dict = {}
    ref_flops = flops_per_example(ref["reference_arch"], REFERENCE_SHAPE, 10, memo)
    sizes = {d: dataset_size(d) for d in {c.dataset for c in cells}}

    def epoch_seconds(arch: str, dataset: str) -> float:
        shape, classes, n_train, _ = sizes[dataset]
        ratio = flops_per_example(arch, shape, classes, memo) / ref_flops
        return ref["seconds_per_epoch"] * ratio * n_train / REFERENCE_EXAMPLES

    seconds, by_kind = 0.0, Counter()
    parents: dict[str, object] = {}
    for c in cells:
        parent = kind_of(c).parent(c)
        if parent is not None:
            parents.setdefault(parent.id, parent)
    for p in parents.values():
        s = p.train.epochs * epoch_seconds(p.arch, p.dataset)
        seconds += s
        by_kind["dense parents"] += s
    for c in cells:
        _, _, n_train, n_eval = sizes[c.dataset]
        kind = kind_of(c)
        epochs = cell_epochs(c)
        if kind.eval_passes:  # a forward pass over every evaluation set per evaluated phase
            epochs += kind.eval_passes * FORWARD_FRACTION * n_eval / n_train
        s = epochs * epoch_seconds(c.arch, c.dataset)
        seconds += s
        by_kind[kind.label] += s
    return {
        "cells": len(cells),
        "parents": len(parents),
        "gpu_hours": seconds / 3600,
        "by_kind_hours": {k: v / 3600 for k, v in by_kind.items()},
        "reference": ref,
    }


def format_estimate(preset: str, filters: list[str] | None = None, study: str | None = None) -> str:
    est = estimate(preset, filters, study)
    ref = est["reference"]
    parts = ", ".join(f"{k} {v:.1f}" for k, v in est["by_kind_hours"].items())
    return (
        f"estimate: {est['cells']} cells on {est['parents']} dense parents, about "
        f"{est['gpu_hours']:.1f} GPU hours ({parts}); reference {ref['reference_arch']} "
        f"{ref['seconds_per_epoch']:.2f} s/epoch ({ref['source']})"
    )


def write_calibration(device: str = "cuda") -> str:
    """Measure the reference epoch time on ``device`` and rewrite the calibration file."""
    import torch

    from benchmarks.gpu_timing import epoch_seconds

    if device.startswith("cuda") and not torch.cuda.is_available():
        from benchmarks.matrix import PresetError

        raise PresetError(f"calibrate-gpu --device {device}: no CUDA GPU is available on this machine")
    ref = calibration()
    seconds = epoch_seconds(ref["reference_arch"], REFERENCE_SHAPE, 10, REFERENCE_EXAMPLES, device=device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    text = CALIBRATION.read_text().split("reference_arch")[0]
    text += (
        f'reference_arch = "{ref["reference_arch"]}"\n'
        f"seconds_per_epoch = {seconds:.3f}\n"
        f'source = "measured by harness calibrate-gpu, synthetic CIFAR-shaped data, batch 128, bf16"\n'
        f'device = "{name}"\n'
    )
    atomic_write_text(CALIBRATION, text)
    return f"{ref['reference_arch']}: {seconds:.3f} s per epoch on {name}; wrote {CALIBRATION}"
