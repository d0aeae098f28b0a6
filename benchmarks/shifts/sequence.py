"""Sequence shifts for MNIST-1D at severities 1-5.

Generator knobs (domain ``mnist1d``): test examples are regenerated with the ``mnist1d``
package's own ``transform`` (Greydanus & Kobak 2020), the same loop as its ``make_dataset``
but with one argument turned up: i.i.d. noise, correlated noise, shear, scale or the
translation range. Noise and shear are multiples of the variant's own value
(``mnist1d_hard`` starts noisier); scale and translation are absolute. Each set draws its
examples from one seed per (dataset, shift), the same at every severity, and is
standardised with the clean dataset's raw mean and standard deviation, so only the knob
differs from clean data. Generic shifts (domain ``sequence``) act on the standardised clean
test sequences: Gaussian noise, impulse noise, dropout of positions (set to the mean, 0).
"""

from __future__ import annotations

import functools
import random

import numpy as np

from benchmarks.shifts.base import register_corruption

GREYDANUS = "Greydanus & Kobak 2020 (MNIST-1D generator)"
CLEAN_SAMPLES = 6000  # the embedded datasets' total (4000 + 1000 + 1000)


def generator_args(variant: dict[str, float], **changes: float):
    """The mnist1d generator arguments of an embedded variant, with ``changes`` applied."""
    from mnist1d.data import get_dataset_args

    from benchmarks.mnist1d import MNIST1D_TEST, MNIST1D_TRAIN, MNIST1D_VAL

    args = get_dataset_args()
    args.num_samples = MNIST1D_TRAIN + MNIST1D_VAL + MNIST1D_TEST
    args.train_split = 1.0 - (MNIST1D_VAL + MNIST1D_TEST) / args.num_samples
    for key, value in {**variant, **changes}.items():
        if not hasattr(args, key):
            raise KeyError(f"mnist1d has no generator argument {key!r}")
        setattr(args, key, value)
    return args


def generate_raw(
    args, per_class: int, seed: int, templates: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unstandardised sequences, ``per_class`` of each label, made as ``make_dataset`` does
    (seeded global RNG, class-major loop of ``transform``, then a shuffle); numpy's and
    Python's global random states are restored afterwards."""
    from mnist1d.data import get_templates
    from mnist1d.transform import transform

    templates = get_templates() if templates is None else templates
    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        xs, ys = [], []
        for label in range(len(templates["y"])):
            for _ in range(per_class):
                x, _ = transform(templates["x"][label], templates["t"], args)
                xs.append(x)
                ys.append(templates["y"][label])
        order = np.random.permutation(len(ys))
        x_out, y_out = np.stack(xs)[order], np.stack(ys)[order]
        if args.shuffle_seq:
            x_out = x_out[..., np.random.permutation(args.final_seq_length)]
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return x_out, y_out.astype(np.int64)


@functools.cache
def clean_stats(variant_items: tuple[tuple[str, float], ...]) -> tuple[float, float]:
    """Raw mean and standard deviation that ``make_dataset`` standardised the variant with."""
    args = generator_args(dict(variant_items))
    x, _ = generate_raw(args, CLEAN_SAMPLES // 10, args.seed)
    return float(x.mean()), float(x.std())


def regenerate(variant: dict[str, float], n: int, seed: int, templates: dict | None = None, **changes):
    """``n`` standardised examples (n/10 per class) of the variant with ``changes`` to its knobs."""
    mean, std = clean_stats(tuple(sorted(variant.items())))
    x, y = generate_raw(generator_args(variant, **changes), max(1, n // 10), seed, templates)
    return ((x - mean) / std)[:, None, :], y


def _base(variant: dict[str, float], key: str) -> float:
    return float(variant.get(key, getattr(generator_args({}), key)))


@register_corruption("iid_noise", "mnist1d", (1.5, 2.5, 4.0, 6.0, 9.0), GREYDANUS)
def iid_noise(variant, n, c, seed):
    """Generator i.i.d. noise: ``iid_noise_scale`` c times the variant's value."""
    return regenerate(variant, n, seed, iid_noise_scale=c * _base(variant, "iid_noise_scale"))


@register_corruption("corr_noise", "mnist1d", (1.2, 1.5, 2.0, 2.75, 4.0), GREYDANUS)
def corr_noise(variant, n, c, seed):
    """Generator correlated background noise: ``corr_noise_scale`` c times the variant's value."""
    return regenerate(variant, n, seed, corr_noise_scale=c * _base(variant, "corr_noise_scale"))


@register_corruption("shear_knob", "mnist1d", (2.0, 3.0, 4.0, 5.5, 7.0), GREYDANUS)
def shear_knob(variant, n, c, seed):
    """Generator shear (a random linear trend): ``shear_scale`` c times the variant's value."""
    return regenerate(variant, n, seed, shear_scale=c * _base(variant, "shear_scale"))


@register_corruption("scale_knob", "mnist1d", (0.8, 1.1, 1.4, 1.7, 1.95), GREYDANUS)
def scale_knob(variant, n, c, seed):
    """Generator amplitude scaling: ``scale_coeff`` = c (default 0.4: factors 1 +- c/2)."""
    return regenerate(variant, n, seed, scale_coeff=c)


@register_corruption("translate_knob", "mnist1d", (56, 60, 64, 68, 72), GREYDANUS)
def translate_knob(variant, n, c, seed):
    """Generator circular translation: ``max_translation`` = c positions (default 48 of 72)."""
    return regenerate(variant, n, seed, max_translation=int(c))


@register_corruption(
    "gaussian_noise_seq", "sequence", (0.1, 0.2, 0.35, 0.5, 0.75), "Hendrycks & Dietterich 2019"
)
def gaussian_noise_seq(x, c, rng):
    """Additive Gaussian noise of standard deviation c (data standardised to unit std)."""
    return x + rng.normal(0.0, c, x.shape)


@register_corruption(
    "impulse_noise_seq",
    "sequence",
    ((0.01, 2.5), (0.025, 2.5), (0.05, 2.5), (0.1, 2.5), (0.2, 2.5)),
    "Hendrycks & Dietterich 2019",
)
def impulse_noise_seq(x, c, rng):
    """Impulse noise: a fraction c[0] of the positions set to +-c[1] standard deviations."""
    hit = rng.random(x.shape) < c[0]
    return np.where(hit, rng.choice([-c[1], c[1]], x.shape), x)


@register_corruption("dropout_seq", "sequence", (0.03, 0.07, 0.12, 0.2, 0.35), "Srivastava et al. 2014")
def dropout_seq(x, c, rng):
    """Dropout of positions: a fraction c of the positions set to 0 (the data mean)."""
    return np.where(rng.random(x.shape) < c, 0.0, x)
