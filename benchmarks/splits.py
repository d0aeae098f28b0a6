"""The splits of a dataset as in-memory tensors (``benchmarks.datasets`` builds and registers them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.shifts.profile import NO_SHIFTS, ShiftProfile


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    description: str = ""
    # Per-channel (mean, std) with x = (pixel - mean) / std for images whose pixels lie in
    # [0, 1]; shift sets corrupt images in pixel space through it. None for sequences.
    pixel_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # The shift and OOD sets the dataset declares (``benchmarks.datasets`` attaches them on load).
    shifts: ShiftProfile = NO_SHIFTS

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise KeyError(f"unknown split {name!r}; valid: train, val, test")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
