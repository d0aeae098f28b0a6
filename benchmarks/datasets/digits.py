"""scikit-learn's 8x8 handwritten digits (UCI optdigits), with its two OOD sets.

A fixed stratified 60/20/20 split (seed 0) of the 1797 images, pixels scaled to [0, 1] then
standardised with train statistics. Shift sets: every image corruption (CIFAR-10-C, family
``image``) and the MNIST-C ones (family ``grayscale``) at the ``tiny`` severity table (CIFAR's
pixel sizes would be a no-op on 8x8 images), and two OOD sets defined here: natural-image
patches (far) and letters rendered the way the digits were (near).
"""

from __future__ import annotations

import numpy as np

from benchmarks.datasets.base import DIGIT_NAMES, image_splits, register_dataset
from benchmarks.shifts import ShiftProfile, register_ood
from benchmarks.splits import DatasetSplits

PROFILE = ShiftProfile(
    corruptions=("image", "grayscale"),
    tables=("tiny_gray", "tiny"),
    ood=("far_photo_patches", "near_letters"),
    shift_size=60,  # 6 per class: 26 types x 5 severities stay one fast forward pass
    ood_size=200,
)
LETTERS = "ACEFHKLMNPRTUVWXY"  # letters that do not resemble a digit (no B D G I J O Q S Z)


@register_dataset("digits", (1078, 359, 360), PROFILE)
def digits() -> DatasetSplits:
    """scikit-learn 8x8 digits (1797 images), stratified 60/20/20 split, 10 classes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=0)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    return image_splits("digits", x, y, (train_idx, val_idx, test_idx), DIGIT_NAMES, digits.__doc__)


# -- OOD sets ---------------------------------------------------------------------------------
def normalise(data, pixels: np.ndarray) -> np.ndarray:
    mean, std = (np.asarray(v, dtype=np.float64)[None, :, None, None] for v in data.pixel_stats)
    return ((pixels - mean) / std).astype(np.float32)


def _block_mean(img: np.ndarray, k: int) -> np.ndarray:
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))


@register_ood("far_photo_patches", "far", "scikit-learn sample images (china, flower)")
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


@register_ood("near_letters", "near", "rendered like UCI optdigits (Alpaydin & Kaynak 1998)")
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
