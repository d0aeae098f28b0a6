"""Image primitives shared by the corruptions (``cifar_c``, ``mnist_c``), vectorised over a batch.

Every function takes images ``x`` of shape ``(N, C, H, W)`` (float64 pixels) and returns the
same shape: resampling through ``torch.nn.functional.grid_sample`` (affine maps, translation,
zoom), blurs (Gaussian, one-sided motion, a disk kernel), fractal noise, luminance, and the
distance maps and strokes of drawn lines.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def to_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def grid_sample(x: np.ndarray, grid: torch.Tensor, padding: str) -> np.ndarray:
    out = F.grid_sample(to_torch(x), grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.double().numpy()


def affine(x: np.ndarray, theta: np.ndarray, padding: str = "zeros") -> np.ndarray:
    """Resample with per-image affine maps ``theta`` (N, 2, 3) from output to input coordinates
    (normalised to [-1, 1]); ``padding`` fills samples from outside the image."""
    grid = F.affine_grid(torch.from_numpy(theta).float(), list(x.shape), align_corners=False)
    return grid_sample(x, grid, padding)


def identity(n: int) -> np.ndarray:
    return np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (n, 1, 1))


def translate(x: np.ndarray, dx: np.ndarray, dy: np.ndarray, padding: str = "border") -> np.ndarray:
    """Move the content by (dx, dy) pixels (arrays of length N)."""
    theta = identity(x.shape[0])
    theta[:, 0, 2] = -2.0 * dx / x.shape[-1]
    theta[:, 1, 2] = -2.0 * dy / x.shape[-2]
    return affine(x, theta, padding)


def zoom(x: np.ndarray, z: float | np.ndarray, padding: str = "border") -> np.ndarray:
    """Magnify about the centre by ``z`` (z < 1 shrinks, filling with ``padding``)."""
    theta = identity(x.shape[0])
    z = np.broadcast_to(np.asarray(z, dtype=float), (x.shape[0],))
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / z
    return affine(x, theta, padding)


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return x
    return ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest")


def gray(x: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601), shape (N, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    return np.tensordot(np.array([0.299, 0.587, 0.114]), x, axes=([0], [1]))[:, None]


def motion(x: np.ndarray, sigma: float, angles: np.ndarray) -> np.ndarray:
    """One-sided motion blur: a line kernel along ``angles`` (radians, one per image) with
    Gaussian weights ``exp(-t^2 / 2 sigma^2)`` for t = 0, 0.5, ..., 3 sigma pixels."""
    if sigma <= 0:
        return x
    taps = np.arange(0.0, 3.0 * sigma + 1e-9, 0.5)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    out = np.zeros_like(x)
    for t, w in zip(taps, weights, strict=True):
        out += w * translate(x, t * np.cos(angles), t * np.sin(angles))
    return out


def plasma(n: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Fractal noise in [0, 1], (n, 1, size, size): octaves of uniform noise on 2^k + 1 grids,
    bilinearly upsampled and weighted ``decay^-k`` (a larger decay gives smoother fog)."""
    out = torch.zeros(n, 1, size, size)
    levels = max(1, math.ceil(math.log2(size)))
    for k in range(levels + 1):
        side = 2**k + 1
        noise = torch.from_numpy(rng.uniform(-1, 1, (n, 1, side, side))).float()
        out += F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=True) * decay**-k
    arr = out.double().numpy()
    lo, hi = arr.min(axis=(2, 3), keepdims=True), arr.max(axis=(2, 3), keepdims=True)
    return (arr - lo) / (hi - lo + 1e-12)


def disk(radius: float, alias_sigma: float) -> np.ndarray:
    half = max(1, math.ceil(radius))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = (xx**2 + yy**2 <= radius**2).astype(float)
    kernel = ndimage.gaussian_filter(kernel / kernel.sum(), alias_sigma)
    return kernel / kernel.sum()


def segments_distance(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Distance (N, H, W) from every pixel centre to the nearest segment of each polyline
    ``points`` (N, P, 2) in pixel coordinates (x, y)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    pix = np.stack([xx.ravel(), yy.ravel()], -1)[None, None]  # (1, 1, HW, 2)
    a, b = points[:, :-1, None, :], points[:, 1:, None, :]  # (N, P-1, 1, 2)
    ab = b - a
    t = np.clip(((pix - a) * ab).sum(-1) / np.maximum((ab**2).sum(-1), 1e-12), 0.0, 1.0)
    d = np.linalg.norm(pix - (a + t[..., None] * ab), axis=-1)  # (N, P-1, HW)
    return d.min(1).reshape(-1, h, w)


def stroke(distance: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased stroke of ``width`` pixels from a distance map (1 inside, 0 outside)."""
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)
