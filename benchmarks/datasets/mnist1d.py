"""MNIST-1D (Greydanus & Kobak, 2020/2024) and a harder variant, with their own shift and OOD sets.

- ``mnist1d``: generated with the ``mnist1d`` package's ``make_dataset`` (never its
  downloader) with the published arguments and seed 42; 6000 sequences of length 40 split
  4000 train / 1000 validation / 1000 test.
- ``mnist1d_hard``: the same generator with 1.4x the correlated noise (0.35), 2x the i.i.d.
  noise (0.04) and 1.33x the shear (1.0): a harder task of the same shape (dense CNN about
  0.82 instead of 0.97), so task difficulty is a factor of the matrix.

Shift sets: the generic sequence shifts (family ``sequence``) and the generator's own knobs
(family ``mnist1d``, defined here): test examples regenerated with the package's own
``transform`` with one argument turned up: i.i.d. noise, correlated noise, shear, scale or
the translation range. Noise and shear are multiples of the variant's own value
(``mnist1d_hard`` starts noisier); scale and translation are absolute. Each set draws its
examples from one seed per (dataset, shift), the same at every severity, and is
standardised with the clean dataset's raw mean and standard deviation, so only the knob
differs from clean data. Three OOD sets, also defined here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmarks.datasets.base import DIGIT_NAMES, register_dataset
from benchmarks.datasets.mnist1d_generator import (
    MNIST1D_TEST,
    MNIST1D_TRAIN,
    MNIST1D_VAL,
    generator_args,
    mnist1d_arrays,
    regenerate,
)
from benchmarks.shifts import ShiftProfile, register_family, register_ood
from benchmarks.splits import DatasetSplits

MNIST1D_HARD_OVERRIDES = {"corr_noise_scale": 0.35, "iid_noise_scale": 0.04, "shear_scale": 1.0}
# Generator arguments of each variant (the knob shifts and an OOD set regenerate examples from them).
VARIANTS: dict[str, dict[str, float]] = {"mnist1d": {}, "mnist1d_hard": MNIST1D_HARD_OVERRIDES}
PROFILE = ShiftProfile(
    corruptions=("mnist1d", "sequence"),
    ood=("far_smooth_noise", "near_shuffled_sequences", "near_shuffled_templates"),
    shift_size=100,  # 10 per class: a phase's whole evaluation stays one fast forward pass
    ood_size=200,
)
SPLITS = (MNIST1D_TRAIN, MNIST1D_VAL, MNIST1D_TEST)


def _splits(name: str, description: str) -> DatasetSplits:
    x, y = mnist1d_arrays(**VARIANTS[name])
    x_t = torch.from_numpy(x).unsqueeze(1)  # (N, 1, 40)
    y_t = torch.from_numpy(y)
    a, b = MNIST1D_TRAIN, MNIST1D_TRAIN + MNIST1D_VAL
    return DatasetSplits(
        name, x_t[:a], y_t[:a], x_t[a:b], y_t[a:b], x_t[b:], y_t[b:], DIGIT_NAMES, description
    )


@register_dataset("mnist1d", SPLITS, PROFILE)
def mnist1d() -> DatasetSplits:
    """MNIST-1D, 4000/1000/1000 sequences of length 40, 10 classes (Greydanus & Kobak 2020)."""
    return _splits("mnist1d", mnist1d.__doc__)


@register_dataset("mnist1d_hard", SPLITS, PROFILE)
def mnist1d_hard() -> DatasetSplits:
    """MNIST-1D with more correlated and i.i.d. noise and shear: same shape, harder task."""
    return _splits("mnist1d_hard", mnist1d_hard.__doc__)


# -- generator knobs (family mnist1d): fn(data, n, c, seed) -> (x, y) ------------------------
def _base(variant: dict[str, float], key: str) -> float:
    return float(variant.get(key, getattr(generator_args({}), key)))


def iid_noise(data, n, c, seed):
    """Generator i.i.d. noise: ``iid_noise_scale`` c times the variant's value."""
    variant = VARIANTS[data.name]
    return regenerate(variant, n, seed, iid_noise_scale=c * _base(variant, "iid_noise_scale"))


def corr_noise(data, n, c, seed):
    """Generator correlated background noise: ``corr_noise_scale`` c times the variant's value."""
    variant = VARIANTS[data.name]
    return regenerate(variant, n, seed, corr_noise_scale=c * _base(variant, "corr_noise_scale"))


def shear_knob(data, n, c, seed):
    """Generator shear (a random linear trend): ``shear_scale`` c times the variant's value."""
    variant = VARIANTS[data.name]
    return regenerate(variant, n, seed, shear_scale=c * _base(variant, "shear_scale"))


def scale_knob(data, n, c, seed):
    """Generator amplitude scaling: ``scale_coeff`` = c (default 0.4: factors 1 +- c/2)."""
    return regenerate(VARIANTS[data.name], n, seed, scale_coeff=c)


def translate_knob(data, n, c, seed):
    """Generator circular translation: ``max_translation`` = c positions (default 48 of 72)."""
    return regenerate(VARIANTS[data.name], n, seed, max_translation=int(c))


register_family("mnist1d", (iid_noise, corr_noise, shear_knob, scale_knob, translate_knob), regenerates=True)


# -- OOD sets ---------------------------------------------------------------------------------
def _shuffled_templates(seed: int) -> dict:
    """MNIST-1D's ten templates with their 10 inner values permuted (ends kept at zero)."""
    from mnist1d.data import get_templates

    templates = get_templates()
    rng = np.random.default_rng(seed)
    x = templates["x"].copy()
    for row in x:
        row[1:-1] = row[1:-1][rng.permutation(len(row) - 2)]
    return {**templates, "x": x}


@register_ood("near_shuffled_templates", "near", "Greydanus & Kobak 2020")
def near_shuffled_templates(data, n, rng):
    """Sequences from the MNIST-1D generator (the variant's own knobs) with every template's
    values shuffled: the same process and value range, ten shapes that are not digits."""
    x, _ = regenerate(VARIANTS[data.name], n, int(rng.integers(2**31)), _shuffled_templates(7))
    return x.astype(np.float32)


@register_ood("near_shuffled_sequences", "near", "Greydanus & Kobak 2020")
def near_shuffled_sequences(data, n, rng):
    """Test sequences with their 40 positions permuted by one fixed permutation (the
    generator's ``shuffle_seq`` option): every value is kept (so the value statistics are
    the data's: near OOD), the shapes are destroyed."""
    x = data.x_test.numpy()
    idx = rng.permutation(len(x))[: min(n, len(x))]
    return np.ascontiguousarray(x[idx][..., rng.permutation(x.shape[-1])])


@register_ood("far_smooth_noise", "far", "Greydanus & Kobak 2020")
def far_smooth_noise(data, n, rng):
    """Smooth random walks (cumulative Gaussian steps, standardised): signals with no template."""
    from scipy.ndimage import gaussian_filter1d

    length = data.input_shape[-1]
    x = gaussian_filter1d(np.cumsum(rng.normal(0, 1, (n, length)), axis=1), math.sqrt(2), axis=1)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-9)
    return x[:, None, :].astype(np.float32)
