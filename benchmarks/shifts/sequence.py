"""Generic sequence shifts at severities 1-5 (family ``sequence``), for inputs ``(N, C, L)``.

They act on the standardised clean test sequences: Gaussian noise, impulse noise and dropout
of positions (set to the mean, 0); their parameters are in ``severities.toml``. MNIST-1D's
own generator knobs (family ``mnist1d``) live with the dataset, ``benchmarks/datasets/mnist1d.py``.
"""

from __future__ import annotations

import numpy as np

from benchmarks.shifts.base import register_family


def gaussian_noise_seq(x, c, rng):
    """Additive Gaussian noise of standard deviation c (data standardised to unit std)."""
    return x + rng.normal(0.0, c, x.shape)


def impulse_noise_seq(x, c, rng):
    """Impulse noise: a fraction c[0] of the positions set to +-c[1] standard deviations."""
    hit = rng.random(x.shape) < c[0]
    return np.where(hit, rng.choice([-c[1], c[1]], x.shape), x)


def dropout_seq(x, c, rng):
    """Dropout of positions: a fraction c of the positions set to 0 (the data mean)."""
    return np.where(rng.random(x.shape) < c, 0.0, x)


register_family("sequence", (gaussian_noise_seq, impulse_noise_seq, dropout_seq))
