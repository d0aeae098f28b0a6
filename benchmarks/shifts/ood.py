"""Out-of-distribution sets of the embedded datasets (OOD detection, Hendrycks & Gimpel 2017).

``far_*`` sets differ from the training data in low-level statistics as well as in
content; ``near_*`` sets keep the data's format and statistics and change the content.
Every function returns inputs standardised like the dataset's (``(n, *input_shape)``).
The CIFAR/SVHN/MNIST pairs are registered by ``benchmarks.real_datasets``.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.shifts.base import register_ood

LETTERS = "ACEFHKLMNPRTUVWXY"  # letters that do not resemble a digit (no B D G I J O Q S Z)


def normalise(data, pixels: np.ndarray) -> np.ndarray:
    mean, std = (np.asarray(v, dtype=np.float64)[None, :, None, None] for v in data.pixel_stats)
    return ((pixels - mean) / std).astype(np.float32)


def _block_mean(img: np.ndarray, k: int) -> np.ndarray:
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))


@register_ood("far_photo_patches", ("digits",), "far", "scikit-learn sample images (china, flower)")
def far_photo_patches(data, n, rng):
    """Random 8x8 patches of scikit-learn's two photographs, grey, 4x4 block means, each
    stretched to [0, 1] (the digits' 32x32 -> 8x8 sampling of a natural image)."""
    from sklearn.datasets import load_sample_images

    photos = [
        _block_mean(img.astype(np.float64) @ [0.299, 0.587, 0.114], 4) for img in load_sample_images().images
    ]
    h, w = data.input_shape[-2:]
    patches = []
    for i in range(n):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - h + 1), rng.integers(0, photo.shape[1] - w + 1)
        p = photo[top : top + h, left : left + w]
        patches.append((p - p.min()) / max(p.max() - p.min(), 1e-9))
    return normalise(data, np.stack(patches)[:, None])


@register_ood("near_letters", ("digits",), "near", "rendered like UCI optdigits (Alpaydin & Kaynak 1998)")
def near_letters(data, n, rng):
    """Capital letters rendered by Pillow's built-in font as 32x32 bitmaps with random size,
    stroke, rotation and position, reduced to 8x8 by counting ink per 4x4 block, the way the
    UCI digits were made: the same generator with content outside the ten classes."""
    from PIL import Image, ImageDraw, ImageFont

    out = np.empty((n, 1, 8, 8))
    fonts = {size: ImageFont.load_default(size=size) for size in range(20, 31)}
    for i in range(n):
        canvas = Image.new("L", (48, 48), 0)
        draw = ImageDraw.Draw(canvas)
        letter = LETTERS[rng.integers(len(LETTERS))]
        draw.text(
            (24, 24),
            letter,
            fill=255,
            font=fonts[int(rng.integers(20, 31))],
            anchor="mm",
            stroke_width=int(rng.integers(1, 3)),
            stroke_fill=255,
        )
        canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
        bitmap = np.asarray(canvas) > 127
        ys, xs = np.nonzero(bitmap)
        box = bitmap[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]  # fit the box like UCI
        side = max(box.shape)
        square = np.zeros((side, side), bool)
        top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
        square[top : top + box.shape[0], left : left + box.shape[1]] = box
        resized = (
            np.asarray(Image.fromarray(square.astype(np.uint8) * 255).resize((32, 32), Image.NEAREST)) > 127
        )
        out[i, 0] = _block_mean(resized.astype(np.float64), 4)
    return normalise(data, out)


def _shuffled_templates(seed: int) -> dict:
    """MNIST-1D's ten templates with their 10 inner values permuted (ends kept at zero)."""
    from mnist1d.data import get_templates

    templates = get_templates()
    rng = np.random.default_rng(seed)
    x = templates["x"].copy()
    for row in x:
        row[1:-1] = row[1:-1][rng.permutation(len(row) - 2)]
    return {**templates, "x": x}


@register_ood("near_shuffled_templates", ("mnist1d", "mnist1d_hard"), "near", "Greydanus & Kobak 2020")
def near_shuffled_templates(data, n, rng):
    """Sequences from the MNIST-1D generator (the variant's own knobs) with every template's
    values shuffled: the same process and value range, ten shapes that are not digits."""
    from benchmarks.mnist1d import MNIST1D_VARIANTS
    from benchmarks.shifts.sequence import regenerate

    x, _ = regenerate(MNIST1D_VARIANTS[data.name], n, int(rng.integers(2**31)), _shuffled_templates(7))
    return x.astype(np.float32)


@register_ood("near_shuffled_sequences", ("mnist1d", "mnist1d_hard"), "near", "Greydanus & Kobak 2020")
def near_shuffled_sequences(data, n, rng):
    """Test sequences with their 40 positions permuted by one fixed permutation (the
    generator's ``shuffle_seq`` option): every value is kept (so the value statistics are
    the data's: near OOD), the shapes are destroyed."""
    x = data.x_test.numpy()
    idx = rng.permutation(len(x))[: min(n, len(x))]
    return np.ascontiguousarray(x[idx][..., rng.permutation(x.shape[-1])])


@register_ood("far_smooth_noise", ("mnist1d", "mnist1d_hard"), "far", "Greydanus & Kobak 2020")
def far_smooth_noise(data, n, rng):
    """Smooth random walks (cumulative Gaussian steps, standardised): signals with no template."""
    from scipy.ndimage import gaussian_filter1d

    length = data.input_shape[-1]
    x = gaussian_filter1d(np.cumsum(rng.normal(0, 1, (n, length)), axis=1), math.sqrt(2), axis=1)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-9)
    return x[:, None, :].astype(np.float32)
