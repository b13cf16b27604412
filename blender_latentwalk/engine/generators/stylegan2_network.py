"""Our own StyleGAN2 generator in plain PyTorch, laid out as NVIDIA's StyleGAN2-ADA networks are.

The module tree, the parameter and buffer names and the constructors' arguments are those of NVIDIA's
``training/networks.py`` (StyleGAN2-ADA) and ``training/networks_stylegan2.py`` (StyleGAN3's copy), so the
weights read from an NVIDIA pickle (`stylegan_files.load_records`) load here with a strict key check
(`from_state`). The arithmetic is the same, op for op where it matters for rounding: fp32 outputs agree
with NVIDIA's to fp32 rounding (tests/engine/test_stylegan2_network.py checks them against numbers NVIDIA's
code produced). No custom CUDA ops: resampling and bias + activation are a few standard torch ops each.

Also here: rosinality ``.pt`` checkpoints (stylegan2-pytorch) converted into the same modules
(`from_rosinality`), and a seeded random generator for benchmarks (`random_generator`).

Precision: fp32 unless asked (`SynthesisNetwork.forward`'s ``dtype``, or ``.half()`` for NVIDIA's mixed
precision). As in NVIDIA's code, ``conv_clamp`` clamps every synthesis layer's output (whatever its
dtype), which is what keeps the fp16 blocks finite.

Shapes: N batch, C channels, H x W pixels, L = ``num_ws`` (one w per layer), D = ``w_dim``.
"""

import copy
import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentWalkError

ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
DEFAULT_RESAMPLE_FILTER = [1, 3, 3, 1]  # a list, as NVIDIA's constructors record it

# (function, NVIDIA's default gain): the gain keeps the activations' magnitude through a layer.
_ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: torch.sigmoid(x) * x, math.sqrt(2)),
}

# StyleGAN2-ADA's Generator takes the synthesis arguments as one dict, and its own defaults differ from
# StyleGAN3's copy for these two (published files always set both).
_ADA_SYNTHESIS_DEFAULTS = {"num_fp16_res": 0, "conv_clamp": None}

# Every argument NVIDIA's Generator passes on without failing, by where it goes.
_GENERATOR_ARGS = frozenset({"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                             "synthesis_kwargs"})
_SYNTHESIS_ARGS = frozenset({"channel_base", "channel_max", "num_fp16_res", "architecture", "resample_filter",
                             "conv_clamp", "fp16_channels_last", "fused_modconv_default", "kernel_size",
                             "use_noise", "activation"})
_MAPPING_ARGS = frozenset({"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier",
                           "w_avg_beta"})
_REQUIRED_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


# ---------------------------------------------------------------- the arithmetic: filters, resampling, modulation

def setup_filter(taps):
    """The FIR filter buffer NVIDIA keeps as ``resample_filter``, from ``taps`` (a list, 1-D or 2-D).

    Returns float32, normalised to sum 1: shape (k, k) for a 1-D list of fewer than 8 taps (its outer
    product, e.g. [1, 3, 3, 1] -> (4, 4)) or a 2-D list, shape (k,) for 8 or more taps (kept separable).
    """
    f = torch.as_tensor(1 if taps is None else taps, dtype=torch.float32).clone()
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def _filter_size(f):
    """(height, width) in taps of a filter made by `setup_filter`."""
    return f.shape[0], f.shape[-1]


def upfirdn2d(x, f, up=1, pad=(0, 0, 0, 0), gain=1.0):
    """Upsample by inserting zeros, pad, then filter with ``f`` (a true convolution), per channel.

    x : (N, C, H, W). f : (k, k) or separable (k,). pad : (left, right, top, bottom) pixels of the
    upsampled image (negative crops). gain : overall scale (``up ** 2`` keeps a constant's level when
    upsampling). Returns (N, C, H * up + top + bottom - k + 1, W * up + left + right - k + 1).
    """
    batch, channels, height, width = x.shape
    if up > 1:  # each pixel followed by up - 1 zeros, in both directions
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, list(pad))
    # conv2d correlates, so a flipped filter convolves; the gain goes on the filter (exact: a power of 2)
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, f[None, None].repeat(channels, 1, 1, 1), groups=channels)
    x = F.conv2d(x, f[None, None, None].repeat(channels, 1, 1, 1), groups=channels)  # along rows
    return F.conv2d(x, f[None, None, :, None].repeat(channels, 1, 1, 1), groups=channels)  # along columns


def upsample2d(x, f, up=2):
    """``x`` (N, C, H, W) -> (N, C, H * up, W * up), interpolated with ``f`` (the skip images' path)."""
    fh, fw = _filter_size(f)
    pad = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, pad=pad, gain=up * up)


def conv2d_resample(x, w, f=None, up=1, padding=0, groups=1):
    """Correlate ``x`` (N, I * groups, H, W) with ``w`` (O, I, kh, kw), upsampled by ``up`` (1 or 2...).

    Up: a strided transposed convolution, then ``f`` smooths away its checkerboard (NVIDIA's order and
    padding, so results agree to rounding). ``padding`` is in pixels of the upsampled image.
    Returns (N, O, H * up, W * up) for ``padding = k // 2``.
    """
    out_channels, in_per_group, kh, kw = w.shape
    if up == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    fh, fw = _filter_size(f)
    px0, px1 = padding + (fw + up - 1) // 2, padding + (fw - up) // 2
    py0, py1 = padding + (fh + up - 1) // 2, padding + (fh - up) // 2
    if kh == 1 and kw == 1:  # a 1x1 convolution commutes with upsampling: convolve the small image
        x = F.conv2d(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, pad=(px0, px1, py0, py1), gain=up * up)
    # conv_transpose2d wants (in, out / groups, kh, kw) per group
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
    crop_x, crop_y = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)  # what the transpose can crop itself
    x = F.conv_transpose2d(x, w, stride=up, padding=[crop_y, crop_x], groups=groups)
    return upfirdn2d(x, f, pad=(px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y), gain=up * up)


def bias_act(x, b=None, activation="linear", gain=None, clamp=None):
    """``x`` (N, C, ...) plus the bias ``b`` (C,), through ``activation``, times ``gain`` (None = the
    activation's default), clamped to [-clamp, clamp] (None = not clamped)."""
    function, default_gain = _ACTIVATIONS[activation]
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    x = function(x)
    gain = float(default_gain if gain is None else gain)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-float(clamp), float(clamp))
    return x


def _noise_for(x, noise, noise_scale):
    """``noise`` (H, W) or (N, 1, H, W), scaled per sample by ``noise_scale`` (N,) when given."""
    if noise is None or noise_scale is None:
        return noise
    return noise * noise_scale.to(noise.dtype).reshape(-1, 1, 1, 1)


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None, demodulate=True,
                     fused=True):
    """StyleGAN2's convolution: ``weight`` scaled per input channel by ``styles``, then (demodulate)
    normalised per output channel so the output has unit variance; ``noise`` added after.

    x : (N, I, H, W) in the block's dtype. weight : (O, I, k, k). styles : (N, I) float32.
    noise : None, (H', W') or (N, 1, H', W'). Returns (N, O, H', W') with H' = H * up.
    fused : one grouped convolution with per-sample weights (NVIDIA at fp32 and for single samples);
    else scale the activations before and after one shared convolution (NVIDIA's fp16 batches).
    """
    batch, in_channels = styles.shape
    out_channels, _, kh, kw = weight.shape
    weight = weight.to(torch.float32)
    if x.dtype == torch.float16 and demodulate:  # keep the products in fp16's range; demodulation undoes it
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3],
                                                                                keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if demodulate or fused:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)  # (N, O, I, k, k)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (N, O)
    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        return x if noise is None else x + noise.to(x.dtype)
    if demodulate:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])  # the batch becomes groups of channels
    x = conv2d_resample(x, w.reshape(-1, in_channels, kh, kw).to(x.dtype), resample_filter, up=up,
                        padding=padding, groups=batch)
    x = x.reshape(batch, -1, *x.shape[2:])
    return x if noise is None else (x + noise).to(x.dtype)


def normalize_2nd_moment(x, eps=1e-8):
    """``x`` (N, F) scaled so each row's mean square is 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------- the modules, named and built as NVIDIA's

class _Persistent(torch.nn.Module):
    """A module NVIDIA pickles as a persistent record: ``nvidia_class_name`` plus the arguments its
    constructor got, split as NVIDIA's persistence keeps them: ``init_args`` (positional, a tuple) and
    ``init_kwargs`` (keyword, a dict). Deep copies, so later changes cannot alter the record."""

    nvidia_class_name = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def recording_init(self, *args, **init_kwargs):
            init(self, *args, **init_kwargs)
            if type(self) is cls:  # a subclass records its own call
                self.init_args = copy.deepcopy(args)
                self.init_kwargs = copy.deepcopy(init_kwargs)

        cls.__init__ = recording_init


class FullyConnectedLayer(_Persistent):
    """y = activation(x @ (weight * weight_gain).T + bias * bias_gain): x (N, in_features) -> (N, out_features).

    The stored weights are divided by ``lr_multiplier`` and the gains multiply it back at run time
    (equalized learning rate), so they load as they are.
    """

    nvidia_class_name = "FullyConnectedLayer"

    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1, bias_init=0):
        super().__init__()
        _check_activation(activation)
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, activation=self.activation)


class Conv2dLayer(_Persistent):
    """A plain convolution with equalized learning rate, optionally upsampling (the 'resnet'
    architecture's 1x1 skip path): x (N, in_channels, H, W) -> (N, out_channels, H * up, W * up)."""

    nvidia_class_name = "Conv2dLayer"

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1,
                 resample_filter=DEFAULT_RESAMPLE_FILTER, conv_clamp=None, channels_last=False, trainable=True):
        super().__init__()
        _check_activation(activation)
        if down != 1:
            raise LatentWalkError("a StyleGAN2 generator layer asks to downsample (down != 1): that is a "
                                  "discriminator's layer, which this generator does not build.")
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _ACTIVATIONS[activation][1]
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:  # NVIDIA keeps frozen weights as buffers: same names in the state dict
            self.register_buffer("weight", weight)
            if bias is not None:
                self.register_buffer("bias", bias)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, activation=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(_Persistent):
    """z (N, z_dim) and label c (N, c_dim) -> ws (N, num_ws, w_dim): the same w for every layer, pulled
    toward ``w_avg`` (the running mean of w from training) by truncation."""

    nvidia_class_name = "MappingNetwork"

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for index in range(num_layers):
            setattr(self, f"fc{index}", FullyConnectedLayer(features[index], features[index + 1],
                                                            activation=activation, lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        """ws (N, num_ws, w_dim) float32 (or (N, w_dim) when num_ws is None).

        truncation_psi : a float, or a tensor (N,) of one psi per sample; w = lerp(w_avg, w, psi).
        truncation_cutoff : truncate only the first this many ws (None = all). ``w_avg`` never changes.
        """
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this generator is conditional: c must be (N, {self.c_dim})")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        per_sample = isinstance(truncation_psi, torch.Tensor)
        if per_sample or truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise LatentWalkError("this StyleGAN2 generator keeps no average w (w_avg_beta is None): "
                                      "render it with truncation 1.")
            psi = truncation_psi.to(x).reshape(-1, *[1] * (x.ndim - 1)) if per_sample else truncation_psi
            w_avg = self.w_avg.to(x.dtype)
            if self.num_ws is None or truncation_cutoff is None:
                x = w_avg.lerp(x, psi)
            else:
                x[:, :truncation_cutoff] = w_avg.lerp(x[:, :truncation_cutoff], psi)
        return x


class SynthesisLayer(_Persistent):
    """One modulated 3x3 convolution (upsampling for ``up=2``) + noise + bias + leaky ReLU:
    x (N, in_channels, R / up, R / up) and w (N, w_dim) -> (N, out_channels, R, R), R = ``resolution``."""

    nvidia_class_name = "SynthesisLayer"

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
                 activation="lrelu", resample_filter=DEFAULT_RESAMPLE_FILTER, conv_clamp=None,
                 channels_last=False):
        super().__init__()
        _check_activation(activation)
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = _ACTIVATIONS[activation][1]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="const", noise_scale=None, fused=True, gain=1):
        """noise_mode : "const" (the stored noise_const), "random" or "none". noise_scale : None or (N,)."""
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) \
                * self.noise_strength.to(torch.float32)
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const.to(torch.float32) * self.noise_strength.to(torch.float32)
        x = modulated_conv2d(x, self.weight, styles, noise=_noise_for(x, noise, noise_scale), up=self.up,
                             padding=self.padding, resample_filter=self.resample_filter, fused=fused)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, activation=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(_Persistent):
    """A modulated 1x1 convolution to colour, not demodulated: x (N, in_channels, R, R) and w (N, w_dim)
    -> (N, out_channels, R, R)."""

    nvidia_class_name = "ToRGBLayer"

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim, self.conv_clamp = in_channels, out_channels, w_dim, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused=True):
        styles = self.affine(w) * self.weight_gain  # no demodulation: the gain goes on the styles
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(_Persistent):
    """One resolution R: (upsample +) two synthesis layers, and the colour image so far.

    x (N, in_channels, R/2, R/2) or None for the first block (which starts from ``const``), img
    (N, img_channels, R/2, R/2) or None, ws (N, num_conv + num_torgb, w_dim) ->
    x (N, out_channels, R, R) in the block's dtype, img (N, img_channels, R, R) float32 (or None).
    """

    nvidia_class_name = "SynthesisBlock"

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture="skip",
                 resample_filter=DEFAULT_RESAMPLE_FILTER, conv_clamp=256, use_fp16=False, fp16_channels_last=False,
                 fused_modconv_default=True, **layer_kwargs):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise LatentWalkError(f"the StyleGAN2 generator's architecture is '{architecture}'; only "
                                  f"{', '.join(ARCHITECTURES)} exist.")
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last  # a memory layout only: the same numbers
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, dtype=torch.float32, noise_mode="const", noise_scale=None):
        w_iter = iter(ws.unbind(dim=1))
        # NVIDIA's inference choice: per-sample weights unless an fp16 batch (then scale activations)
        layer = {"noise_mode": noise_mode, "noise_scale": noise_scale,
                 "fused": dtype == torch.float32 or ws.shape[0] == 1}
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), **layer)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5))  # sqrt(1/2) on both paths keeps the sum's variance
            x = self.conv0(x, next(w_iter), **layer)
            x = y + self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer)
        else:
            x = self.conv0(x.to(dtype), next(w_iter), **layer)
            x = self.conv1(x, next(w_iter), **layer)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused=layer["fused"]).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(_Persistent):
    """ws (N, num_ws, w_dim) -> images (N, img_channels, img_resolution, img_resolution) float32, about
    [-1, 1]. One block per resolution 4, 8, ... img_resolution, named ``b4``, ``b8``, ..."""

    nvidia_class_name = "SynthesisNetwork"

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=4,
                 **block_kwargs):
        super().__init__()
        if not (isinstance(img_resolution, (int, np.integer)) and img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0):
            raise LatentWalkError(f"a StyleGAN2 generator's resolution is a power of 2 from 4 up, not "
                                  f"{img_resolution!r}.")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)  # torgb shares the next w
            setattr(self, f"b{res}", block)

    def forward(self, ws, noise_mode="const", noise_scale=None, dtype=None):
        """noise_mode : "const" (stored noise: deterministic), "random" (fresh from torch's global RNG) or
        "none". noise_scale : None (NVIDIA's behaviour) or a tensor (N,) multiplying every layer's noise.
        dtype : torch.float32 = fp32 everywhere; torch.float16 = fp16 in every block; None = as the
        parameters are: fp32 parameters run fp32 everywhere (the same frames on every device), fp16 ones
        (after ``.half()``) run NVIDIA's mixed precision, fp16 in the ``num_fp16_res`` highest resolutions
        (their activations clamped to +-conv_clamp, as in every layer) and fp32 below.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode is one of {NOISE_MODES}, not {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), not {tuple(ws.shape)}")
        if noise_scale is not None and tuple(noise_scale.shape) != (ws.shape[0],):
            raise ValueError(f"noise_scale must be ({ws.shape[0]},), not {tuple(noise_scale.shape)}")
        ws = ws.to(torch.float32)
        mixed = dtype is None and self.b4.const.dtype == torch.float16
        x = img = None
        w_index = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_dtype = dtype if dtype is not None else (
                torch.float16 if mixed and block.use_fp16 else torch.float32)
            block_ws = ws.narrow(1, w_index, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, dtype=block_dtype, noise_mode=noise_mode, noise_scale=noise_scale)
            w_index += block.num_conv
        return img


class Generator(_Persistent):
    """z (N, z_dim) and c (N, c_dim) -> images (N, img_channels, img_resolution, img_resolution) float32.

    Takes the synthesis arguments as keywords (StyleGAN3's copy) or as one ``synthesis_kwargs`` dict
    (StyleGAN2-ADA, whose defaults then apply to what it leaves out).
    """

    nvidia_class_name = "Generator"

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={},  # noqa: B006 (NVIDIA's)
                 **synthesis_kwargs):
        super().__init__()
        nested = synthesis_kwargs.pop("synthesis_kwargs", None)
        if nested is not None:
            synthesis_kwargs = {**_ADA_SYNTHESIS_DEFAULTS, **nested, **synthesis_kwargs}
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", noise_scale=None,
                dtype=None):
        """Images (N, img_channels, H, W) float32, about [-1, 1]; arguments as `MappingNetwork.forward`
        and `SynthesisNetwork.forward`. ``c`` is ignored when c_dim is 0."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise_scale=noise_scale, dtype=dtype)


def _check_activation(activation):
    if activation not in _ACTIVATIONS:
        raise LatentWalkError(f"a StyleGAN2 generator layer uses the activation '{activation}'; known are "
                              f"{', '.join(_ACTIVATIONS)}.")


# ---------------------------------------------------------------- building from NVIDIA's records, or at random

def _listed(keys):
    """Up to 5 of ``keys``, and how many more."""
    keys = list(keys)
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _check_init_kwargs(kwargs):
    """LatentWalkError unless ``kwargs`` (a Generator record's) build a StyleGAN2 generator we know."""
    missing = [name for name in _REQUIRED_ARGS if name not in kwargs]
    if missing:
        raise LatentWalkError(f"the StyleGAN2 Generator record lacks {_listed(missing)}: the file is damaged.")
    for name in ("mapping_kwargs", "synthesis_kwargs"):
        if not isinstance(kwargs.get(name, {}), dict):
            raise LatentWalkError(f"the StyleGAN2 Generator record's {name} is not a dict: the file is damaged.")
    synthesis = {**kwargs.get("synthesis_kwargs", {}), **{k: v for k, v in kwargs.items() if k not in _GENERATOR_ARGS}}
    unknown = sorted(set(synthesis) - _SYNTHESIS_ARGS) + sorted(
        f"mapping_kwargs.{name}" for name in set(kwargs.get("mapping_kwargs", {})) - _MAPPING_ARGS)
    if unknown:
        raise LatentWalkError(f"the generator in the file takes {_listed(unknown)}, which a StyleGAN2 generator "
                              "does not (a StyleGAN3 network, or another code's): it cannot be rendered as StyleGAN2.")
    architecture = synthesis.get("architecture", "skip")
    if architecture not in ARCHITECTURES:
        raise LatentWalkError(f"the StyleGAN2 generator's architecture is '{architecture}'; we render "
                              f"{', '.join(ARCHITECTURES)}.")


def load_state_strict(module, state_dict, what="the StyleGAN2 weights"):
    """Load ``state_dict`` ({name: tensor}) into ``module``, all of it or nothing: a missing or unexpected
    key or a wrong shape raises LatentWalkError naming up to 5 of each."""
    expected = module.state_dict()
    try:
        state = {name: torch.as_tensor(value) for name, value in state_dict.items()}
    except (TypeError, ValueError, RuntimeError) as error:
        raise LatentWalkError(f"{what} hold something that is not a tensor ({error}).") from None
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [f"{name} (file {tuple(state[name].shape)}, network {tuple(expected[name].shape)})"
             for name in sorted(set(expected) & set(state)) if state[name].shape != expected[name].shape]
    parts = ([f"missing {_listed(missing)}"] if missing else []) + (
        [f"unexpected {_listed(unexpected)}"] if unexpected else []) + (
        [f"wrong shape {_listed(wrong)}"] if wrong else [])
    if parts:
        raise LatentWalkError(f"{what} do not match the network their init arguments describe: "
                              f"{'; '.join(parts)}. The file is damaged or not a StyleGAN2 generator.")
    with torch.no_grad():
        module.load_state_dict(state, strict=True)


def _built(init_kwargs, seed=None):
    """Generator(**init_kwargs), leaving torch's global RNG as it was (construction draws NVIDIA's
    random initial weights); a construction error becomes LatentWalkError."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            return Generator(**init_kwargs)
        except (TypeError, ValueError, KeyError, ZeroDivisionError) as error:
            raise LatentWalkError(f"cannot build the StyleGAN2 generator from its init arguments ({error}).") from None


def from_state(init_kwargs, state_dict):
    """Our Generator, in eval mode without gradients, from an NVIDIA Generator record's ``init_kwargs``
    (NVIDIA's defaults for what they leave out) and its ``state_dict`` ({name: tensor}, strict)."""
    kwargs = dict(init_kwargs)
    _check_init_kwargs(kwargs)
    generator = _built(kwargs)
    load_state_strict(generator, state_dict)
    return generator.eval().requires_grad_(False)


def random_generator(seed=0, **init_kwargs):
    """A Generator with NVIDIA's random initial weights drawn from ``seed`` (its images are noise), for
    benchmarks and tiny stand-ins. Absent init arguments: z_dim = w_dim = 512, c_dim 0, 256x256 RGB.
    ``w_avg`` is the mean w of 256 random z."""
    kwargs = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 256, "img_channels": 3, **init_kwargs}
    _check_init_kwargs(kwargs)
    generator = _built(kwargs, seed).eval().requires_grad_(False)
    mapping = generator.mapping
    if hasattr(mapping, "w_avg"):
        draw = torch.Generator().manual_seed(seed)
        z = torch.randn([256, mapping.z_dim], generator=draw)
        c = torch.nn.functional.one_hot(torch.randint(mapping.c_dim, [256], generator=draw), mapping.c_dim) \
            if mapping.c_dim else None
        with torch.no_grad():
            mapping.w_avg.copy_(mapping(z, c)[:, 0].mean(dim=0))
    return generator


# ---------------------------------------------------------------- rosinality's stylegan2-pytorch checkpoints

# rosinality's blur and upsample kernels: [1, 3, 3, 1] made 2-D, normalised, times 4 (its upsampling gain).
_ROSINALITY_KERNEL_GAIN = 4
W_AVG_SAMPLES = 4096  # z drawn to estimate w_avg when a checkpoint saves none (as rosinality's generate.py)


class _Taken:
    """Reads a rosinality state dict once per key, and says what was missing and what was never read."""

    def __init__(self, state):
        self.state, self.read, self.missing = state, set(), []

    def __call__(self, key):
        if key not in self.state:
            self.missing.append(key)
            return None
        self.read.add(key)
        return self.state[key]

    def check(self, what):
        unexpected = sorted(set(self.state) - self.read)
        parts = ([f"missing {_listed(self.missing)}"] if self.missing else []) + (
            [f"unexpected {_listed(unexpected)}"] if unexpected else [])
        if parts:
            raise LatentWalkError(f"{what} is not a rosinality StyleGAN2 generator as we know it: {'; '.join(parts)}.")


def _channel_table(channels):
    """(channel_base, channel_max) with min(channel_base // res, channel_max) == channels[res] for every
    resolution of ``channels`` ({res: count}); None when NVIDIA's formula cannot give that table."""
    channel_max = max(channels.values())
    channel_base = max(count * res for res, count in channels.items())
    if all(min(channel_base // res, channel_max) == count for res, count in channels.items()):
        return channel_base, channel_max
    return None


def _rosinality_kwargs(state, size, what):
    """Our Generator's init kwargs for rosinality weights ``state``: size, mapping depth, w size and the
    channels per resolution, all read from the shapes."""
    mapping = sorted(int(key.split(".")[1]) for key in state if key.startswith("style.") and key.endswith(".weight"))
    if "style.1.weight" not in state or "input.input" not in state or mapping != list(range(1, len(mapping) + 1)):
        raise LatentWalkError(f"{what} has no mapping layers style.1... or no input.input: it is not a "
                              "rosinality StyleGAN2 generator.")
    log_size = 2 + sum(1 for key in state if key.startswith("to_rgbs.") and key.endswith(".conv.weight"))
    if size is not None and size != 2 ** log_size:
        raise LatentWalkError(f"{what} is a {2 ** log_size}-pixel generator, not {size}.")
    channels = {4: state["input.input"].shape[1]}
    for i in range(3, log_size + 1):
        weight = state.get(f"convs.{2 * (i - 3)}.conv.weight")
        if weight is None:
            raise LatentWalkError(f"{what} lacks convs.{2 * (i - 3)}.conv.weight: the file is damaged.")
        channels[2 ** i] = weight.shape[1]
    table = _channel_table(channels)
    if table is None:
        raise LatentWalkError(f"{what} has channels {channels} per resolution, which NVIDIA's layout (min(base / "
                              "resolution, max)) cannot express: it cannot be converted.")
    style_dim = state["style.1.weight"].shape[1]
    return {"z_dim": style_dim, "c_dim": 0, "w_dim": style_dim, "img_resolution": 2 ** log_size,
            "img_channels": state["to_rgb1.conv.weight"].shape[1] if "to_rgb1.conv.weight" in state else 3,
            "mapping_kwargs": {"num_layers": len(mapping)}, "channel_base": table[0], "channel_max": table[1],
            "num_fp16_res": 0, "conv_clamp": None}


def _check_kernel(kernel, key, what):
    """rosinality's resampling kernel must be the [1, 3, 3, 1] ours are built with."""
    expected = setup_filter(DEFAULT_RESAMPLE_FILTER) * _ROSINALITY_KERNEL_GAIN
    if kernel is not None and (kernel.shape != expected.shape or not torch.allclose(kernel.float(), expected)):
        raise LatentWalkError(f"{what} resamples with another kernel than [1, 3, 3, 1] ({key}): not supported.")


def _rosinality_layer(take, ours, theirs, noise, what):
    """{our name: tensor} of one rosinality StyledConv ``theirs`` as our SynthesisLayer ``ours``."""
    weight = take(f"{theirs}.conv.weight")
    converted = {f"{ours}.affine.weight": take(f"{theirs}.conv.modulation.weight"),
                 f"{ours}.affine.bias": take(f"{theirs}.conv.modulation.bias"),
                 f"{ours}.bias": take(f"{theirs}.activate.bias")}
    if weight is not None:  # rosinality scales by 1/sqrt(fan-in) before modulating; NVIDIA keeps it in the weight
        converted[f"{ours}.weight"] = weight[0] * (1 / math.sqrt(weight[0][0].numel()))
    strength, noise_const = take(f"{theirs}.noise.weight"), take(noise)
    if strength is not None:
        converted[f"{ours}.noise_strength"] = strength.reshape([])
    if noise_const is not None:
        converted[f"{ours}.noise_const"] = noise_const.reshape(noise_const.shape[-2:])
    if f"{theirs}.conv.blur.kernel" in take.state:
        _check_kernel(take(f"{theirs}.conv.blur.kernel"), f"{theirs}.conv.blur.kernel", what)
    return converted


def _rosinality_torgb(take, ours, theirs, what):
    """{our name: tensor} of one rosinality ToRGB ``theirs`` as our ToRGBLayer ``ours`` (both scale the
    styles' product by 1/sqrt(fan-in) at run time, so the weight is copied as it is)."""
    weight, bias = take(f"{theirs}.conv.weight"), take(f"{theirs}.bias")
    converted = {f"{ours}.affine.weight": take(f"{theirs}.conv.modulation.weight"),
                 f"{ours}.affine.bias": take(f"{theirs}.conv.modulation.bias")}
    if weight is not None:
        converted[f"{ours}.weight"] = weight[0]
    if bias is not None:
        converted[f"{ours}.bias"] = bias.reshape(-1)
    if f"{theirs}.upsample.kernel" in take.state:
        _check_kernel(take(f"{theirs}.upsample.kernel"), f"{theirs}.upsample.kernel", what)
    return converted


def _rosinality_converted(take, kwargs, what):
    """{our state-dict name: tensor} of every rosinality weight (``take`` reads them), w_avg aside."""
    converted = {}
    for index in range(kwargs["mapping_kwargs"]["num_layers"]):
        for part in ("weight", "bias"):
            converted[f"mapping.fc{index}.{part}"] = take(f"style.{index + 1}.{part}")
    const = take("input.input")
    converted["synthesis.b4.const"] = const[0] if const is not None else None
    converted.update(_rosinality_layer(take, "synthesis.b4.conv1", "conv1", "noises.noise_0", what))
    converted.update(_rosinality_torgb(take, "synthesis.b4.torgb", "to_rgb1", what))
    for j in range(int(math.log2(kwargs["img_resolution"])) - 2):  # blocks 8, 16, ...
        block = f"synthesis.b{2 ** (j + 3)}"
        converted.update(_rosinality_layer(take, f"{block}.conv0", f"convs.{2 * j}", f"noises.noise_{2 * j + 1}", what))
        converted.update(_rosinality_layer(take, f"{block}.conv1", f"convs.{2 * j + 1}", f"noises.noise_{2 * j + 2}",
                                           what))
        converted.update(_rosinality_torgb(take, f"{block}.torgb", f"to_rgbs.{j}", what))
    return {key: value for key, value in converted.items() if value is not None}


def from_rosinality(state_dict, latent_avg=None, size=None, what="the rosinality checkpoint"):
    """Our Generator (eval, no gradients) computing what rosinality's stylegan2-pytorch ``Generator`` with
    these weights computes (``randomize_noise=False`` is our noise_mode "const"; its ``truncation`` with
    ``truncation_latent=latent_avg`` is our truncation_psi).

    state_dict : its ``g_ema`` ({name: tensor}; a "latent_avg" entry, as `load_rosinality` adds, is used
    when ``latent_avg`` is None). latent_avg : (w_dim,), (1, w_dim) or (L, w_dim) (rows averaged), or None:
    then w_avg is the mean w of 4096 z drawn from seed 0. size : the expected resolution, or None.
    Size, mapping depth, w size and channels are read from the shapes; rosinality's 0.01 mapping learning
    rate and [1, 3, 3, 1] kernels are assumed (the kernels are checked).
    """
    state = {key: torch.as_tensor(value).to(torch.float32) for key, value in state_dict.items()}
    saved_avg = state.pop("latent_avg", None)
    latent_avg = saved_avg if latent_avg is None else torch.as_tensor(latent_avg).to(torch.float32)
    kwargs = _rosinality_kwargs(state, size, what)
    take = _Taken(state)
    converted = _rosinality_converted(take, kwargs, what)
    take.check(what)
    generator = _built(kwargs)
    # the filters (checked equal to rosinality's kernels) stay as our constructor made them
    converted.update({key: value for key, value in generator.state_dict().items() if key.endswith("resample_filter")})
    if latent_avg is not None:
        converted["mapping.w_avg"] = latent_avg.reshape(-1, kwargs["w_dim"]).mean(dim=0)
    else:
        converted["mapping.w_avg"] = torch.zeros([kwargs["w_dim"]])
    load_state_strict(generator, converted, what=f"{what}'s weights")
    generator = generator.eval().requires_grad_(False)
    if latent_avg is None:
        z = torch.randn([W_AVG_SAMPLES, kwargs["z_dim"]], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            generator.mapping.w_avg.copy_(generator.mapping(z)[:, 0].mean(dim=0))
    return generator
