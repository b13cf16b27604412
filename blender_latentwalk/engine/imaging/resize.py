"""Scaling and cropping frames on the device, as Pillow does it on the CPU.

The render scales each BigGAN frame to fill the output size and crops the centre
(`PIL.ImageOps.fit`, bicubic), and diffusers works in multiples of 8 pixels
(a Lanczos resize in, and one back out to the output size). Doing that with Pillow means a trip to
the CPU and back for every frame; here the same filters are resampling matrices,
built once per size from Pillow's own coefficient formula (Resample.c:
`precompute_coeffs`), and applied on the device as two matrix products per batch.

The results match Pillow's to within rounding: Pillow computes in fixed point and
rounds to 8 bits between its two passes; here it rounds to 8 bits between the
passes too, in the same order, in float32 on the device, so a level can differ by a step of
rounding (tests/engine/test_resize.py states the tolerance).
"""

import functools

import numpy as np

BICUBIC_SUPPORT, LANCZOS_SUPPORT = 2.0, 3.0


def _bicubic(x):
    """Pillow's bicubic kernel (a = -0.5). x : np.ndarray of offsets in source pixels."""
    a, x = -0.5, np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _lanczos(x):
    """Pillow's Lanczos kernel (3 lobes)."""
    return np.where((-3.0 <= x) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


_FILTERS = {"bicubic": (_bicubic, BICUBIC_SUPPORT), "lanczos": (_lanczos, LANCZOS_SUPPORT)}


def axis_weights(in_size, out_size, box_start=0.0, box_end=None, kind="bicubic"):
    """Resampling matrix of one axis: out = weights @ in, as Pillow resamples the source span
    [box_start, box_end) (fractional pixels allowed) onto ``out_size`` pixels.

    Returns np.ndarray (out_size, in_size), float64, rows summing to 1.
    """
    kernel, kernel_support = _FILTERS[kind]
    box_end = in_size if box_end is None else box_end
    scale = (box_end - box_start) / out_size
    filter_scale = max(scale, 1.0)  # shrinking widens the kernel (antialiasing)
    support = kernel_support * filter_scale
    weights = np.zeros((out_size, in_size))
    for out_index in range(out_size):
        centre = box_start + (out_index + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)  # int() truncates toward zero, as C's cast does
        last = min(int(centre + support + 0.5), in_size)
        row = kernel((np.arange(first, last) - centre + 0.5) / filter_scale)
        total = row.sum()
        weights[out_index, first:last] = row / total if total != 0.0 else row
    return weights


def fit_box(in_width, in_height, out_width, out_height):
    """(left, top, right, bottom) of the centred source span `PIL.ImageOps.fit` scales to fill the output."""
    in_ratio, out_ratio = in_width / in_height, out_width / out_height
    if in_ratio == out_ratio:
        width, height = in_width, in_height
    elif in_ratio >= out_ratio:  # wider than the output: the sides are cropped
        width, height = out_ratio * in_height, in_height
    else:  # taller: the top and bottom are cropped
        width, height = in_width, in_width / out_ratio
    left, top = (in_width - width) * 0.5, (in_height - height) * 0.5
    return left, top, left + width, top + height


def multiple_of(size, factor):
    """The largest multiple of ``factor`` not above ``size`` (diffusers' working size)."""
    return size - size % factor


def fit_resizes(in_size, out_size):
    """The resize that scales a (in_width, in_height) frame to fill ``out_size`` (width, height) and crops
    its centre, as `PIL.ImageOps.fit` with bicubic does: a one-item tuple of (rows (H, h) float64,
    columns (W, w) float64, whether the vertical pass comes first), for `apply`."""
    box = fit_box(*in_size, *out_size)
    return (_resize(tuple(in_size), tuple(out_size), box, "bicubic"),)


def lanczos_resize(in_size, out_size):
    """The resize (as a one-item tuple for `apply`) of a (width, height) picture to ``out_size`` with
    Lanczos, as `PIL.Image.resize` does it; empty when the sizes are equal."""
    if tuple(in_size) == tuple(out_size):
        return ()
    box = (0.0, 0.0, float(in_size[0]), float(in_size[1]))
    return (_resize(tuple(in_size), tuple(out_size), box, "lanczos"),)


def vertical_first(in_size, out_size, box, kind):
    """Whether Pillow resamples the columns before the rows for this resize.

    Which pass comes first decides where Pillow rounds and clips to 8 bits between them. Pillow 12 and
    older always go horizontal first; Pillow 13 (python-pillow/Pillow#9549) goes vertical first when
    the height shrinks clearly more than the width, by a rule of its own. So the first resize of each
    size asks the installed Pillow (`_resize`).

    in_size, out_size : (width, height); box : (left, top, right, bottom); kind : "bicubic" or "lanczos".
    """
    return _resize(tuple(in_size), tuple(out_size), tuple(box), kind)[2]


@functools.lru_cache(maxsize=16)
def _resize(in_size, out_size, box, kind):
    """(rows, columns, vertical pass first) of one resize, built once per size: a render asks for the same
    few batch after batch. The order comes from one Pillow resize of a noise picture, compared with both."""
    from PIL import Image

    rows = axis_weights(in_size[1], out_size[1], box[1], box[3], kind)
    columns = axis_weights(in_size[0], out_size[0], box[0], box[2], kind)
    probe = np.random.default_rng(0).integers(0, 256, (in_size[1], in_size[0]), dtype=np.uint8)
    filters = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
    pillows = np.asarray(Image.fromarray(probe).resize(out_size, filters[kind], box=box), dtype=float)

    def in_8_bits(values):
        return np.clip(np.floor(values + 0.5), 0, 255)  # Pillow rounds halves up

    horizontal_first = in_8_bits(rows @ in_8_bits(probe @ columns.T))
    rows_first = in_8_bits(in_8_bits(rows @ probe) @ columns.T)
    return rows, columns, bool(np.abs(rows_first - pillows).sum() < np.abs(horizontal_first - pillows).sum())


def apply(images, resizes):
    """Resample a batch of 8-bit pictures on their device, as Pillow does each resize: one pass (see
    `vertical_first`), rounded and clipped to 8 bits, then the other, rounded and clipped again.

    images : torch tensor (n, channels, h, w), float32 holding 0..255; resizes : from `fit_resizes` or
    `lanczos_resize`. Returns (n, channels, H, W) float32 holding whole numbers 0..255.
    """
    import torch

    for rows, columns, vertical_pass_first in resizes:
        columns = _on_device(columns, images).transpose(0, 1)
        rows = _on_device(rows, images)
        if vertical_pass_first:
            images = torch.matmul(rows, images).add_(0.5).floor_().clamp_(0, 255)
            images = torch.matmul(images, columns).add_(0.5).floor_().clamp_(0, 255)
        else:
            images = torch.matmul(images, columns).add_(0.5).floor_().clamp_(0, 255)
            images = torch.matmul(rows, images).add_(0.5).floor_().clamp_(0, 255)
    return images


_DEVICE_COPIES = {}  # (id of a cached matrix, device, dtype) -> (the matrix, its copy on the device)


def _on_device(matrix, like):
    """``matrix`` (float64 numpy, from the caches above) as a tensor on ``like``'s device and dtype, copied
    once: a copy from ordinary memory to a GPU would wait for all the device's queued work every batch."""
    import torch

    key = (id(matrix), str(like.device), like.dtype)
    if key not in _DEVICE_COPIES:
        if len(_DEVICE_COPIES) > 64:  # sizes changed many times: start over
            _DEVICE_COPIES.clear()
        _DEVICE_COPIES[key] = (matrix, torch.as_tensor(matrix, dtype=like.dtype, device=like.device))
    return _DEVICE_COPIES[key][1]


def to_pixels(images):
    """Images (n, 3, height, width), whole numbers 0..255 -> uint8 pixels (n, height, width, 3), contiguous,
    on the same device."""
    import torch

    return images.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
