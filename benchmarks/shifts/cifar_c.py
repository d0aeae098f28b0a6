"""Image corruptions after CIFAR-10-C, vectorised over a batch (family ``image``).

CIFAR-10-C (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations"): 15 types (noise: gaussian, shot, impulse; blur: defocus,
glass, motion, zoom; weather: snow, frost, fog; digital: brightness, contrast, elastic,
pixelate, JPEG) and 4 extra ones (speckle noise, gaussian blur, spatter, saturate), at
severities 1-5; their parameters are in ``severities.toml``.

These are our own implementations (the ``imagecorruptions`` 1.1.2 package refuses images
under 32 pixels and fails on numpy 2 / scikit-image 0.26: ``np.float_``, ``multichannel``).
Every function takes ``x`` of shape ``(N, C, H, W)`` with pixels in [0, 1] (float64), the
severity's parameters and a seeded ``numpy.random.Generator``; the caller clips the result
to [0, 1]. Spatial parameters are in pixels, with two tables: ``cifar`` (images of 16
pixels a side or more; close to the CIFAR-10-C values) and ``tiny`` (the 8x8 digits,
where CIFAR's pixel sizes would be a no-op; chosen so that severity 1 is mild and 5
strong). Differences from the reference code, all deliberate and documented in
``benchmarks/shifts/README.md``: frost uses a texture synthesised from a fixed seed (the
reference crops six photographs); fog's plasma fractal is a sum of random octaves;
motion blur is a one-sided Gaussian-weighted line (ImageMagick's kernel) applied by
translating; glass blur displaces each pixel by a random offset instead of sequential
swaps; elastic's displacement field is normalised to a root-mean-square size.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from benchmarks.shifts import image_ops as ops
from benchmarks.shifts.base import register_family


# -- noise --------------------------------------------------------------------------------
def gaussian_noise(x, c, rng):
    """Additive Gaussian noise, standard deviation c."""
    return x + rng.normal(0.0, c, x.shape)


def shot_noise(x, c, rng):
    """Poisson (shot) noise: Poisson(c x) / c photons per unit intensity."""
    return rng.poisson(np.clip(x, 0, 1) * c) / c


def impulse_noise(x, c, rng):
    """Salt-and-pepper noise: a fraction c of the values set to 0 or 1 (equally likely)."""
    hit = rng.random(x.shape) < c
    return np.where(hit, (rng.random(x.shape) < 0.5).astype(float), x)


def speckle_noise(x, c, rng):
    """Multiplicative noise: x + x * N(0, c^2)."""
    return x + x * rng.normal(0.0, c, x.shape)


# -- blur ---------------------------------------------------------------------------------
def gaussian_blur(x, c, rng):
    """Gaussian blur, standard deviation c pixels."""
    return ops.gaussian(x, c)


def defocus_blur(x, c, rng):
    """Defocus: convolution with a disk of radius c[0] pixels, anti-aliased by a Gaussian c[1]."""
    kernel = ops.disk(*c)
    return ndimage.convolve(x, kernel[None, None], mode="reflect")


def glass_blur(x, c, rng):
    """Frosted glass: blur (sigma c[0]), then c[2] rounds of moving every pixel to a random
    offset of at most c[1] pixels, then blur again; images under 32 pixels are processed
    upsampled to 32 (nearest) and block-averaged back, so offsets are in 32-pixel units."""
    sigma, delta, iterations = c
    factor = max(1, 32 // max(x.shape[-2:]))
    if factor > 1:
        big = glass_blur(x.repeat(factor, axis=2).repeat(factor, axis=3), c, rng)
        n, ch, h, w = x.shape
        return big.reshape(n, ch, h, factor, w, factor).mean((3, 5))
    n, _, h, w = x.shape
    x = ops.gaussian(x, sigma)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    batch = np.arange(n)[:, None, None]
    for _ in range(int(iterations)):
        dy = rng.integers(-delta, delta + 1, (n, h, w))
        dx = rng.integers(-delta, delta + 1, (n, h, w))
        src_r, src_c = np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)
        x = x.transpose(0, 2, 3, 1)[batch, src_r, src_c].transpose(0, 3, 1, 2)
    return ops.gaussian(x, sigma)


def motion_blur(x, c, rng):
    """Motion blur along a random direction, Gaussian weights of sigma c pixels (one-sided)."""
    angles = rng.uniform(-math.pi / 4, math.pi / 4, x.shape[0])
    return ops.motion(x, c, angles)


def zoom_blur(x, c, rng):
    """Zoom blur: the mean of the image and its centre zooms by 1 + k step up to c[0]."""
    top, step = c
    zooms = np.arange(1.0 + step, top + 1e-9, step)
    out = x.copy()
    for z in zooms:
        out += ops.zoom(x, z)
    return out / (len(zooms) + 1)


# -- weather ------------------------------------------------------------------------------
def snow(x, c, rng):
    """Snow: flakes N(c[0], c[1]) magnified c[2]x, kept above c[3], motion-blurred (sigma c[4]);
    the image is blended (weight c[5]) with a brightened grey version, then the flakes added."""
    loc, scale, zoom, threshold, sigma, blend = c
    n, _, h, w = x.shape
    flakes = rng.normal(loc, scale, (n, 1, h, w))
    flakes = ops.zoom(flakes, zoom)
    flakes[flakes < threshold] = 0.0
    flakes = ops.motion(flakes, sigma, rng.uniform(-3 * math.pi / 4, -math.pi / 4, n))
    x = blend * x + (1 - blend) * np.maximum(x, ops.gray(x) * 1.5 + 0.5)
    return x + flakes + flakes[:, :, ::-1, ::-1]


@functools.cache
def frost_texture(side: int) -> np.ndarray:
    """A frost texture synthesised from a fixed seed (no image files), (side, side) in [0, 1].

    Ice-crystal needles (straight strokes with side branches at about 60 degrees) over a
    fractal haze, drawn at 256 x 256 and block-averaged to ``side`` (a pixel of a 32-pixel
    image sees a 1x1 pixel; an 8-pixel image sees 4x4 of it).
    """
    rng = np.random.default_rng(20190328)
    size = 256
    canvas = np.zeros((size, size))

    def needle(x0, y0, angle, length, value):
        t = np.linspace(0, length, int(length * 2) + 2)
        xs = np.clip(np.round(x0 + t * np.cos(angle)).astype(int), 0, size - 1)
        ys = np.clip(np.round(y0 + t * np.sin(angle)).astype(int), 0, size - 1)
        np.maximum.at(canvas, (ys, xs), value)

    for _ in range(900):
        x0, y0 = rng.uniform(0, size, 2)
        angle, length, value = rng.uniform(0, 2 * math.pi), rng.uniform(6, 40), rng.uniform(0.5, 1.0)
        needle(x0, y0, angle, length, value)
        for _ in range(rng.integers(0, 5)):
            s = rng.uniform(0.2, 0.9) * length
            bx, by = x0 + s * np.cos(angle), y0 + s * np.sin(angle)
            side_angle = angle + rng.choice([-1, 1]) * math.pi / 3
            needle(bx, by, side_angle, rng.uniform(0.15, 0.4) * length, value * 0.8)
    canvas = ndimage.gaussian_filter(canvas, 0.6)
    haze = ops.plasma(1, size, 1.6, rng)[0, 0]
    texture = np.clip(0.75 * canvas / canvas.max() + 0.45 * haze, 0, None)
    factor = max(1, size // (side * 8))
    texture = texture.reshape(size // factor, factor, size // factor, factor).mean((1, 3))
    return (texture - texture.min()) / (texture.max() - texture.min())


def frost(x, c, rng):
    """Frost: c[0] x + c[1] frost, the frost a random crop of a synthesised ice texture."""
    n, ch, h, w = x.shape
    texture = frost_texture(max(h, w))
    top = rng.integers(0, texture.shape[0] - h + 1, n)
    left = rng.integers(0, texture.shape[1] - w + 1, n)
    crops = np.stack([texture[t : t + h, s : s + w] for t, s in zip(top, left, strict=True)])[:, None]
    tint = np.array([0.85, 0.92, 1.0])[None, :, None, None] if ch == 3 else 1.0
    return c[0] * x + c[1] * crops * tint


def fog(x, c, rng):
    """Fog: (x + c[0] plasma) * max(x) / (max(x) + c[0]), plasma fractal noise of decay c[1]."""
    n, _, h, w = x.shape
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    return (x + c[0] * ops.plasma(n, max(h, w), c[1], rng)[..., :h, :w]) * peak / (peak + c[0])


# -- digital ------------------------------------------------------------------------------
def brightness(x, c, rng):
    """Brightness: the HSV value V raised by c (hue and saturation kept; plain + c for grey)."""
    if x.shape[1] == 1:
        return x + c
    v = x.max(axis=1, keepdims=True)
    v_new = np.clip(v + c, 0, 1)
    return np.where(v > 0, x * v_new / np.maximum(v, 1e-12), v_new)


def contrast(x, c, rng):
    """Contrast: (x - mean) c + mean, the mean over the image."""
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * c + mean


def elastic_transform(x, c, rng):
    """Elastic: a random affine map (entries within +-c[2]) plus a smooth displacement field
    (Gaussian of c[1] times the side) of root-mean-square c[0] times the side."""
    alpha, sigma, affine = c
    n, _, h, w = x.shape
    theta = ops.identity(n) + rng.uniform(-affine, affine, (n, 2, 3))
    grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 1, h, w], align_corners=False)
    field = ndimage.gaussian_filter(rng.uniform(-1, 1, (n, h, w, 2)), (0, sigma * h, sigma * w, 0))
    field /= field.std(axis=(1, 2, 3), keepdims=True) + 1e-12
    grid = grid + torch.from_numpy(field * 2 * alpha).float()  # alpha x side pixels = 2 alpha normalised
    return ops.grid_sample(x, grid, "reflection")


def pixelate(x, c, rng):
    """Pixelate: box-downsample to c times the side, upsample with nearest neighbour; images
    under 32 pixels are processed upsampled to 32 (nearest) and block-averaged back."""
    factor = max(1, 32 // max(x.shape[-2:]))
    if factor > 1:
        n, ch, h, w = x.shape
        big = pixelate(x.repeat(factor, axis=2).repeat(factor, axis=3), c, rng)
        return big.reshape(n, ch, h, factor, w, factor).mean((3, 5))
    h, w = x.shape[-2:]
    small = F.interpolate(ops.to_torch(x), size=(max(1, round(h * c)), max(1, round(w * c))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest").double().numpy()


def jpeg_compression(x, c, rng):
    """JPEG compression at quality c (Pillow's encoder)."""
    from PIL import Image

    pixels = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    out = np.empty_like(pixels)
    for i, img in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buffer, "JPEG", quality=int(c))
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded[..., None] if decoded.ndim == 2 else decoded
    return out.transpose(0, 3, 1, 2) / 255.0


def spatter(x, c, rng):
    """Spatter: liquid blobs (noise N(c[0], c[1]) blurred by c[2] px, kept above c[3]) of
    opacity c[4]; water (c[5]=0, pale turquoise) or mud (c[5]=1, dark brown)."""
    loc, scale, sigma, threshold, opacity, mud = c
    n, ch, h, w = x.shape
    liquid = ndimage.gaussian_filter(rng.normal(loc, scale, (n, 1, h, w)), (0, 0, sigma, sigma))
    mask = np.clip((liquid - threshold) / 0.02, 0, 1) * opacity
    color = np.array([63, 42, 20]) / 255 if mud else np.array([175, 238, 238]) / 255
    color = (color if ch == 3 else np.array([color @ [0.299, 0.587, 0.114]]))[None, :, None, None]
    return x * (1 - mask) + mask * color


def saturate(x, c, rng):
    """Saturate: HSV saturation S -> clip(S c[0] + c[1]). A grey image has no saturation, so for
    one channel it is sensor saturation instead: clip((x - 1/2) c[0] + 1/2 + c[1])."""
    if x.shape[1] == 1:
        return (x - 0.5) * c[0] + 0.5 + c[1]
    x = np.clip(x, 0, 1)
    v, lo = x.max(axis=1, keepdims=True), x.min(axis=1, keepdims=True)
    s = np.where(v > 0, (v - lo) / np.maximum(v, 1e-12), 0.0)
    s_new = np.clip(s * c[0] + c[1], 0, 1)
    scaled = v - (v - x) * s_new / np.maximum(s, 1e-12)
    grey_to_red = np.concatenate([v, v * (1 - s_new), v * (1 - s_new)], axis=1)  # hue 0 for greys
    return np.where(s > 0, scaled, grey_to_red)


register_family(
    "image",
    (
        gaussian_noise, shot_noise, impulse_noise, speckle_noise,
        gaussian_blur, defocus_blur, glass_blur, motion_blur, zoom_blur,
        snow, frost, fog,
        brightness, contrast, elastic_transform, pixelate, jpeg_compression, spatter, saturate,
    ),
)  # fmt: skip
