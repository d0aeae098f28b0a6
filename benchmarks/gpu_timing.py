"""Seconds per training epoch on synthetic data of a dataset's shape: the reference the
GPU-hour estimate of a preset scales (``harness.estimate``).

``epoch_seconds`` trains ``arch`` for ``epochs`` epochs on random inputs of shape
``input_shape`` (N examples, batch B, SGD with momentum, the recipe of the ``full`` preset,
bf16 autocast on CUDA; convolutional archs come channels-last from ``build_arch``) and
returns the median epoch wall time, the first epoch (warm-up, cuDNN autotuning) excluded.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.archs import build_arch


def epoch_seconds(
    arch: str,
    input_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    examples: int = 50_000,
    batch_size: int = 128,
    epochs: int = 3,
    device: str = "cuda",
) -> float:
    torch.manual_seed(0)
    model = build_arch(arch, input_shape, num_classes).to(device)
    cuda = device.startswith("cuda")
    x = torch.randn(examples, *input_shape, device=device)
    y = torch.randint(0, num_classes, (examples,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    times = []
    for _ in range(epochs):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(examples, device=device)
        for b in range(examples // batch_size):
            idx = order[b * batch_size : (b + 1) * batch_size]
            with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] if len(times) > 1 else times)
