"""MNIST-C corruptions for single-channel images (family ``grayscale``), vectorised over a batch.

MNIST-C (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision"): the
geometric ones (rotate, shear, scale, translate) and the line artefacts (stripe, zigzag,
dotted line), re-implemented for any image size; their parameters (``severities.toml``) are
relative: degrees and fractions of the side. Same calling convention as ``cifar_c``.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.shifts import image_ops as ops
from benchmarks.shifts.base import register_family


def rotate(x, c, rng):
    """Rotation by c degrees, clockwise or anticlockwise at random."""
    a = np.deg2rad(c) * rng.choice([-1.0, 1.0], x.shape[0])
    theta = np.zeros((x.shape[0], 2, 3))
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = (
        np.cos(a),
        -np.sin(a),
        np.sin(a),
        np.cos(a),
    )
    return ops.affine(x, theta, "zeros")


def shear(x, c, rng):
    """Horizontal shear x' = x + s y with s = +-c (random sign)."""
    theta = ops.identity(x.shape[0])
    theta[:, 0, 1] = c * rng.choice([-1.0, 1.0], x.shape[0])
    return ops.affine(x, theta, "zeros")


def scale(x, c, rng):
    """Shrink about the centre to c times the size (background fills the border)."""
    return ops.zoom(x, c, "zeros")


def translate(x, c, rng):
    """Translation by c times the side in a random direction (background fills in)."""
    n, _, h, w = x.shape
    a = rng.uniform(0, 2 * math.pi, n)
    return ops.translate(x, c * w * np.cos(a), c * h * np.sin(a), "zeros")


def stripe(x, c, rng):
    """A bright band (width c[0] of the side, intensity c[1]), vertical or horizontal, at random."""
    n, _, h, w = x.shape
    width = max(1, round(c[0] * w))
    start = rng.integers(0, w - width + 1, n)
    band = (np.arange(w)[None] >= start[:, None]) & (np.arange(w)[None] < start[:, None] + width)
    vertical = np.broadcast_to(band[:, None, :], (n, h, w))
    horizontal = np.broadcast_to(band[:, :, None], (n, h, w))
    mask = np.where(rng.random(n)[:, None, None] < 0.5, vertical, horizontal)[:, None]
    return np.where(mask, np.maximum(x, c[1]), x)


def zigzag(x, c, rng):
    """A zigzag line of c[0] segments across the image, width c[1] of the side, intensity c[2]."""
    segments, width, intensity = c
    n, _, h, w = x.shape
    xs = np.linspace(-0.5, w - 0.5, int(segments) + 1)[None].repeat(n, 0)
    ys = rng.uniform(-0.5, h - 0.5, (n, int(segments) + 1))
    points = np.stack([xs, ys], -1)
    transpose = rng.random(n) < 0.5  # half of the lines run top to bottom
    points[transpose] = points[transpose][..., ::-1]
    line = ops.stroke(ops.segments_distance(points, h, w), width * w)[:, None]
    return np.maximum(x, intensity * line)


def dotted_line(x, c, rng):
    """c[0] dotted lines across the image: one-pixel dots every c[1] of the side, intensity c[2]."""
    lines, spacing, intensity = c
    n, _, h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    out = x.copy()
    for _ in range(int(lines)):
        a, b = rng.uniform(0, 1, (n, 2)) * [w - 1, h - 1], rng.uniform(0, 1, (n, 2)) * [w - 1, h - 1]
        direction = (b - a) / np.maximum(np.linalg.norm(b - a, axis=1, keepdims=True), 1e-9)
        steps = np.arange(-2 * max(h, w), 2 * max(h, w), spacing * w)
        dots = a[:, None, :] + steps[None, :, None] * direction[:, None, :]  # (n, D, 2)
        d = np.sqrt(
            (xx[None, None] - dots[..., 0, None, None]) ** 2
            + (yy[None, None] - dots[..., 1, None, None]) ** 2
        )
        out = np.maximum(out, intensity * np.clip(1.0 - d.min(1), 0, 1)[:, None])
    return out


register_family("grayscale", (rotate, shear, scale, translate, stripe, zigzag, dotted_line))
