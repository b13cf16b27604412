"""StyleGAN3 ("Alias-Free Generative Adversarial Networks", Karras et al. 2021), configs T and R, as
plain PyTorch: the generator that renders NVIDIA's StyleGAN3 weights without NVIDIA's code.

The module tree, the parameter and buffer names and the constructor arguments are NVIDIA's
(training/networks_stylegan3.py), so ``Generator.state_dict()`` has exactly the keys of NVIDIA's
``Generator.state_dict()`` and `from_state` loads the tensors read from a ``.pkl`` by
`stylegan_files` with a strict check. The math is the paper's; the code is ours:

* Mapping: z (and the embedded label c) normalised, ``num_layers`` equalised-lr fully connected
  layers with leaky ReLU, broadcast to ``num_ws`` copies, optionally truncated towards ``w_avg``.
* Synthesis input: Fourier features (fixed frequencies and phases, rotated and translated by the first
  w and by a user transform), mixed by a learned channel matrix.
* Each layer: modulated (and demodulated) convolution, then the filtered leaky ReLU: upsample with a
  low-pass FIR filter, add bias, leaky ReLU with gain and clamp, low-pass and downsample. Config T
  uses 3x3 convolutions and separable Kaiser filters; config R 1x1 convolutions and radially
  symmetric (jinc) downsampling filters in the non-critically-sampled layers.

Inference only: ``w_avg`` and ``magnitude_ema`` are read, never updated.

Speed on the CPU (same sums, different order): the filtered leaky ReLU runs on channels-last tensors
(depthwise convolutions 3-4x faster there), upsampling is a strided transposed convolution that skips
the inserted zeros and crops inside the convolution, downsampling a strided convolution, and the
modulated convolution scales the input by the styles and runs one convolution for the whole batch.
On a GPU the modulated convolution is NVIDIA's grouped one.

Precision: on the CPU every layer computes in fp32. On a GPU the layers NVIDIA marks ``use_fp16``
(the ``num_fp16_res`` highest resolutions) compute in fp16 as NVIDIA's do, unless ``force_fp32``;
the others, the mapping and the Fourier input always compute in fp32, whatever dtype the parameters
are stored in (a ``.half()`` model only stores its weights in fp16). Every layer clamps its output to
``[-conv_clamp, conv_clamp]`` as NVIDIA's do.

Each module NVIDIA pickles as a persistent object carries ``nvidia_class_name`` (the class name in
NVIDIA's pickle) and ``init_args`` / ``init_kwargs``: the positional and keyword arguments its
constructor received, exactly as NVIDIA's ``torch_utils.persistence`` stores them (``_init_args``,
``_init_kwargs``; the parents build their sub-layers with the same call shapes as NVIDIA's do, so a
``FullyConnectedLayer``'s ``in_features`` and ``out_features`` are positional, in ``init_args``).
"""

import copy
import functools

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from ..errors import LatentWalkError


def _remembers_init_arguments(cls):
    """Class decorator: each instance keeps copies of its constructor's arguments as ``init_args`` (tuple)
    and ``init_kwargs`` (dict), which is what NVIDIA's pickles record for a persistent module."""
    build = cls.__init__

    @functools.wraps(build)
    def __init__(self, *args, **kwargs):
        build(self, *args, **kwargs)
        self.init_args = copy.deepcopy(args)
        self.init_kwargs = copy.deepcopy(kwargs)

    cls.__init__ = __init__
    return cls


def _normalize_rows(x, eps=1e-8):
    """x (N, F) scaled so that each row's mean square is 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _compute_dtype(x, use_fp16, force_fp32):
    """fp16 for a layer NVIDIA runs in fp16, on a GPU only; fp32 otherwise."""
    return torch.float16 if (use_fp16 and not force_fp32 and x.device.type != "cpu") else torch.float32


# ---------------------------------------------------------------- low-pass filters and the filtered leaky ReLU

def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """The FIR low-pass filter of one layer, as float32, or None for a single tap (identity).

    Separable (config T, and R's critically sampled layers): a Kaiser-windowed sinc of ``numtaps`` taps
    from ``scipy.signal.firwin``, shape (numtaps,), applied along both axes. Radial (config R): a jinc
    (``J1(2 pi fc r) / (pi r)``) under the outer product of two Kaiser windows, normalised to sum 1,
    shape (numtaps, numtaps). ``cutoff`` and ``width`` (the transition band) are in the units of ``fs``.
    """
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap (got {numtaps})")
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs),
                               dtype=torch.float32)
    taps = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.hypot(*np.meshgrid(taps, taps))
    with np.errstate(divide="ignore", invalid="ignore"):
        jinc = scipy.special.j1(2 * cutoff * (np.pi * radius)) / (np.pi * radius)
    jinc[radius == 0] = cutoff  # the limit at the centre (only reached with an odd number of taps)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    jinc *= np.outer(window, window)
    jinc /= np.sum(jinc)
    return torch.as_tensor(jinc, dtype=torch.float32)


def _depthwise(f, channels, dtype, axis=None):
    """A filter as a depthwise (one per channel) conv weight: (channels, 1, kh, kw); a separable
    filter (taps,) lies along ``axis`` (2: height, 3: width)."""
    f = f.to(dtype)
    if f.ndim == 1:
        f = f[:, None] if axis == 2 else f[None, :]
    return f[None, None].expand(channels, 1, *f.shape)


def _upsample_crops(length, up, taps, pad_lo, pad_hi):
    """(from the start, from the end) to drop from a full transposed convolution of ``length`` samples
    (stride ``up``, ``taps`` taps; (length - 1) * up + taps samples) so that it equals zero insertion,
    padding by (pad_lo, pad_hi) and a valid convolution. Negative: zeros to add instead."""
    start = taps - 1 - pad_lo  # the full output begins taps - 1 - pad_lo samples before the wanted one
    return start, (length - 1) * up + taps - start - (length * up + pad_lo + pad_hi - taps + 1)


def _upsample(x, f, up, padding):
    """Insert ``up - 1`` zeros after each pixel, pad by ``padding`` (px0, px1, py0, py1; negative crops),
    and convolve with ``f`` times ``up`` per axis, keeping only fully overlapped outputs.

    x (N, C, H, W) -> (N, C, H*up + py0 + py1 - kh + 1, W*up + px0 + px1 - kw + 1). Done as a strided
    transposed convolution per axis (no multiplications with the inserted zeros) whose ``padding``
    drops the samples the crop would (StyleGAN3's crops are symmetric), then any remaining shift.
    """
    px0, px1, py0, py1 = padding
    f = torch.ones([1], dtype=torch.float32, device=x.device) if f is None else f
    kh, kw = (f.shape[0], f.shape[0]) if f.ndim == 1 else tuple(f.shape)
    c = x.shape[1]
    top, bottom = _upsample_crops(x.shape[2], up, kh, py0, py1)
    left, right = _upsample_crops(x.shape[3], up, kw, px0, px1)
    trim_y, trim_x = max(min(top, bottom), 0), max(min(left, right), 0)  # dropped inside the convolutions
    if up > 1 or kh > 1 or kw > 1:
        if f.ndim == 1:
            x = F.conv_transpose2d(x, _depthwise(f * up, c, x.dtype, axis=2), stride=(up, 1), padding=(trim_y, 0),
                                   groups=c)
            x = F.conv_transpose2d(x, _depthwise(f * up, c, x.dtype, axis=3), stride=(1, up), padding=(0, trim_x),
                                   groups=c)
        else:
            x = F.conv_transpose2d(x, _depthwise(f * up * up, c, x.dtype), stride=up, padding=(trim_y, trim_x),
                                   groups=c)
    else:
        trim_y = trim_x = 0
    crops = [left - trim_x, right - trim_x, top - trim_y, bottom - trim_y]
    return F.pad(x, [-v for v in crops]) if any(crops) else x


def _downsample(x, f, down):
    """Convolve with ``f`` (valid positions only) and keep every ``down``-th sample: one strided conv per
    axis. x (N, C, H, W) -> (N, C, ceil((H - kh + 1) / down), ceil((W - kw + 1) / down))."""
    c = x.shape[1]
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    f = f.flip(list(range(f.ndim)))  # convolution, not correlation (the filters are symmetric anyway)
    if f.ndim == 1:
        x = F.conv2d(x, _depthwise(f, c, x.dtype, axis=3), stride=(1, down), groups=c)
        return F.conv2d(x, _depthwise(f, c, x.dtype, axis=2), stride=(down, 1), groups=c)
    return F.conv2d(x, _depthwise(f, c, x.dtype), stride=down, groups=c)


def filtered_lrelu(x, up_filter, down_filter, bias, up, down, padding, gain, slope, clamp):
    """Alias-free leaky ReLU: bias, upsample by ``up`` through ``up_filter``, leaky ReLU (``slope``) times
    ``gain`` clamped to [-clamp, clamp] (None: no clamp), then ``down_filter`` and keep every ``down``-th
    pixel. The nonlinearity runs at the higher rate so that the harmonics it makes can be filtered out.

    x (N, C, H, W); bias (C,); filters (taps,) separable, (taps, taps) 2D, or None;
    padding (px0, px1, py0, py1) relative to the upsampled image. Returns (N, C, H', W').
    """
    if x.device.type == "cpu":  # CPU depthwise convolutions run 3-4x faster on channels-last tensors
        x = x.contiguous(memory_format=torch.channels_last)
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x = _upsample(x, up_filter, up, padding)
    if slope != 1:
        x = F.leaky_relu(x, float(slope), inplace=True)
    if gain != 1:
        x = x.mul_(float(gain))
    if clamp is not None:
        x = x.clamp_(-float(clamp), float(clamp))
    return _downsample(x, down_filter, down)


def modulated_conv2d(x, weight, styles, padding, demodulate, input_gain=None, fused=None):
    """Convolution whose weight each sample scales per input channel by its style, then (``demodulate``)
    rescales per output channel to unit expected magnitude.

    x (N, I, H, W); weight (O, I, k, k); styles (N, I); input_gain: a scalar tensor multiplying the input
    (it normalises the input by its running magnitude). Returns (N, O, H + 2p - k + 1, W + 2p - k + 1).
    ``fused`` (default: on a GPU) runs the per-sample weights as one grouped convolution (groups = N), as
    NVIDIA does; otherwise the styles scale the input, one convolution serves the whole batch and the
    demodulation scales its output: the same sums, and faster on the CPU.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    w = weight.to(torch.float32)
    s = styles.to(torch.float32)
    if demodulate:  # pre-scale both so that fp16 weights later stay in range; demodulation undoes it
        w = w * w.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    gain = 1 if input_gain is None else input_gain.to(torch.float32)
    if not (x.device.type != "cpu" if fused is None else fused):
        x = F.conv2d(x * (s * gain).to(x.dtype)[:, :, None, None], w.to(x.dtype), padding=padding)
        if demodulate:  # 1 / the norm of each sample's modulated weight, as (N, O)
            x = x * ((s.square() @ w.square().sum(dim=[2, 3]).t()) + 1e-8).rsqrt().to(x.dtype)[:, :, None, None]
        return x
    w = w.unsqueeze(0) * s[:, None, :, None, None]  # (N, O, I, k, k)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    x = x.reshape(1, n * in_channels, *x.shape[2:])
    w = (w * gain).reshape(n * out_channels, in_channels, kh, kw).to(x.dtype)
    x = F.conv2d(x, w, padding=padding, groups=n)
    return x.reshape(n, out_channels, *x.shape[2:])


# ---------------------------------------------------------------- the modules, named as NVIDIA's

@_remembers_init_arguments
class FullyConnectedLayer(torch.nn.Module):
    """Equalised-learning-rate linear layer (weights stored unit-scale, scaled at run time), optionally
    followed by leaky ReLU (slope 0.2, gain sqrt 2). x (N, in_features) -> (N, out_features)."""

    nvidia_class_name = "FullyConnectedLayer"

    def __init__(self, in_features, out_features, activation="linear", bias=True, lr_multiplier=1,
                 weight_init=1, bias_init=0):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"FullyConnectedLayer activation '{activation}' is not used by StyleGAN3")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight_init, self.lr_multiplier = weight_init, lr_multiplier
        self.weight = torch.nn.Parameter(torch.empty([out_features, in_features]))
        bias_values = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(bias_values / lr_multiplier)) if bias else None
        self.weight_gain = float(lr_multiplier / np.sqrt(in_features))
        self.bias_gain = float(lr_multiplier)
        self.reset_parameters()

    def reset_parameters(self, rng=None):
        """NVIDIA's initial weights: normal, std weight_init / lr_multiplier (rng: a torch.Generator)."""
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=rng) * (self.weight_init / self.lr_multiplier))

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return x.matmul(w.t()) if b is None else torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        if b is not None:
            x = x + b.unsqueeze(0)
        return F.leaky_relu(x, 0.2) * float(np.sqrt(2))

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


@_remembers_init_arguments
class MappingNetwork(torch.nn.Module):
    """z (N, z_dim) and label c (N, c_dim) -> ws (N, num_ws, w_dim)."""

    nvidia_class_name = "MappingNetwork"

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for index in range(num_layers):
            setattr(self, f"fc{index}", FullyConnectedLayer(features[index], features[index + 1], activation="lrelu",
                                                            lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))  # the mean w over training: truncation's centre

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        """ws (N, num_ws, w_dim) float32. truncation_psi: a float, or a tensor (N,) with one psi per
        sample; the first ``truncation_cutoff`` ws (all when None) move to ``w_avg + psi (w - w_avg)``."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (N, {self.z_dim}), got {tuple(z.shape)}")
        x = _normalize_rows(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must be (N, {self.c_dim})")
            x = torch.cat([x, _normalize_rows(self.embed(c.to(torch.float32)))], dim=1)
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        if isinstance(truncation_psi, torch.Tensor) and truncation_psi.ndim > 0:
            psi = truncation_psi.to(device=ws.device, dtype=torch.float32).reshape(-1, 1, 1)
        elif float(truncation_psi) != 1:
            psi = float(truncation_psi)
        else:
            return ws
        ws[:, :cutoff] = self.w_avg.to(torch.float32).lerp(ws[:, :cutoff], psi)
        return ws

    def extra_repr(self):
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def _inverse_rotation_translation(t):
    """From the affine output t = (cos, sin, tx, ty) (N, 4), normalised so cos^2 + sin^2 = 1: the
    (N, 3, 3) matrix inverse-rotation @ inverse-translation that maps image coordinates to input ones."""
    n = t.shape[0]
    m_r = torch.eye(3, device=t.device).repeat([n, 1, 1])
    m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
    m_t = torch.eye(3, device=t.device).repeat([n, 1, 1])
    m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
    return m_r @ m_t


@_remembers_init_arguments
class SynthesisInput(torch.nn.Module):
    """The first feature map: ``channels`` sinusoids of fixed frequencies (a disc of radius ``bandwidth``)
    sampled on a ``size`` x ``size`` grid at ``sampling_rate`` samples per unit, rotated and translated
    by w and by the inverse transform ``transform`` (3, 3), then mixed by ``weight``."""

    nvidia_class_name = "SynthesisInput"

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = np.broadcast_to(np.asarray(size), [2])  # (width, height)
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        self.weight = torch.nn.Parameter(torch.empty([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        # The user's transform, inverse: it maps output-image coordinates to input coordinates.
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", torch.empty([channels, 2]))
        self.register_buffer("phases", torch.empty([channels]))
        self.reset_parameters()

    def reset_parameters(self, rng=None):
        """NVIDIA's initial draws: frequencies in the disc of radius ``bandwidth`` (denser at the centre),
        phases uniform in [-0.5, 0.5), weight standard normal. rng: a torch.Generator or None."""
        freqs = torch.randn([self.channels, 2], generator=rng)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * self.bandwidth
        with torch.no_grad():
            self.freqs.copy_(freqs)
            self.phases.copy_(torch.rand([self.channels], generator=rng) - 0.5)
            self.weight.copy_(torch.randn([self.channels, self.channels], generator=rng))

    def _grid(self, device):
        """Sample positions (H, W, 2) as (x, y), pixel centres, in units where ``sampling_rate`` samples
        span 1 (what ``affine_grid`` gives for this scale)."""
        width, height = int(self.size[0]), int(self.size[1])
        theta = torch.eye(2, 3, device=device)
        theta[0, 0] = 0.5 * width / self.sampling_rate
        theta[1, 1] = 0.5 * height / self.sampling_rate
        return F.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)[0]

    def forward(self, w, transform=None):
        """w (N, w_dim); transform None (the ``transform`` buffer for every sample) or (N, 3, 3) / (3, 3):
        each sample's inverse input transform. Returns (N, channels, height, width) float32."""
        n = w.shape[0]
        user = self.transform if transform is None else transform
        user = user.to(device=w.device, dtype=torch.float32)
        if user.shape[-2:] != (3, 3) or user.ndim not in (2, 3) or (user.ndim == 3 and user.shape[0] not in (1, n)):
            raise ValueError(f"transform must be (3, 3) or ({n}, 3, 3), got {tuple(user.shape)}")
        t = self.affine(w.to(torch.float32))
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        # Rotate the image first, then translate, then the user's transform (all as inverses).
        transforms = _inverse_rotation_translation(t) @ (user if user.ndim == 3 else user.unsqueeze(0))
        freqs = self.freqs.to(torch.float32).unsqueeze(0)  # (1, C, 2)
        phases = self.phases.to(torch.float32).unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]  # (N, C, 2)
        # A transform can push frequencies past the band: fade them out before they alias.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        grid = self._grid(w.device)  # (H, W, 2)
        x = torch.einsum("hwk,nck->nhwc", grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (np.pi * 2)) * amplitudes[:, None, None, :]
        x = x @ (self.weight.to(torch.float32) / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self):
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


@_remembers_init_arguments
class SynthesisLayer(torch.nn.Module):
    """One synthesis layer: modulated conv, then the filtered leaky ReLU that resamples from
    ``in_sampling_rate`` to ``out_sampling_rate`` through ``lrelu_upsampling`` times the higher of them.
    x (N, in_channels, in_h, in_w), w (N, w_dim) -> (N, out_channels, out_h, out_w). The last layer
    (``is_torgb``) is a plain 1x1 modulated conv to the image channels, without demodulation or ReLU."""

    nvidia_class_name = "SynthesisLayer"

    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16, in_channels, out_channels, in_size,
                 out_size, in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width, out_half_width,
                 conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256,
                 magnitude_ema_beta=0.999):
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled = w_dim, is_torgb, is_critically_sampled
        self.use_fp16, self.in_channels, self.out_channels = use_fp16, in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])  # (width, height)
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta

        self.affine = FullyConnectedLayer(self.w_dim, self.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.empty([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))  # the input's mean square over training
        self._design_filters(filter_size, use_radial_filters)
        self.padding = self._padding()
        self.reset_parameters()

    def reset_parameters(self, rng=None):
        """NVIDIA's initial conv weight: standard normal (rng: a torch.Generator or None)."""
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=rng))

    def _design_filters(self, filter_size, use_radial_filters):
        """The up- and downsampling factors and their low-pass filters (buffers; None = one tap)."""
        self.up_factor = int(np.rint(self.tmp_sampling_rate / self.in_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / self.out_sampling_rate))
        if (self.in_sampling_rate * self.up_factor != self.tmp_sampling_rate
                or self.out_sampling_rate * self.down_factor != self.tmp_sampling_rate):
            raise ValueError("StyleGAN3 sampling rates must divide the layer's internal sampling rate")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = use_radial_filters and not self.is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(
            numtaps=self.up_taps, cutoff=self.in_cutoff, width=self.in_half_width * 2, fs=self.tmp_sampling_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            numtaps=self.down_taps, cutoff=self.out_cutoff, width=self.out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial))

    def _padding(self):
        """(px0, px1, py0, py1) around the upsampled image so that the output is ``out_size`` and the
        samples sit where the continuous signal puts them (pixel centres, both resolutions)."""
        total = (self.out_size - 1) * self.down_factor + 1  # output length before downsampling
        total = total - (self.in_size + self.conv_kernel - 1) * self.up_factor  # the upsampled conv output
        total = total + self.up_taps + self.down_taps - 2  # what the two valid convolutions take away
        low = (total + self.up_factor) // 2
        high = total - low
        return [int(low[0]), int(high[0]), int(low[1]), int(high[1])]

    def forward(self, x, w, force_fp32=False):
        """x (N, in_channels, in_h, in_w), w (N, w_dim) -> (N, out_channels, out_h, out_w) in the layer's
        compute dtype (fp16 for a ``use_fp16`` layer on a GPU unless ``force_fp32``, else fp32)."""
        expected = (self.in_channels, int(self.in_size[1]), int(self.in_size[0]))
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"SynthesisLayer expects (N, {expected}) input, got {tuple(x.shape)}")
        dtype = _compute_dtype(x, self.use_fp16, force_fp32)
        styles = self.affine(w.to(torch.float32))
        if self.is_torgb:  # no demodulation: scale as an equalised-lr conv instead
            styles = styles * float(1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))
        input_gain = self.magnitude_ema.to(torch.float32).rsqrt()
        x = modulated_conv2d(x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
                             demodulate=not self.is_torgb, input_gain=input_gain)
        x = filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, self.up_factor, self.down_factor,
                           self.padding, gain=1 if self.is_torgb else np.sqrt(2), slope=1 if self.is_torgb else 0.2,
                           clamp=self.conv_clamp)
        return x

    def extra_repr(self):
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
                f"use_fp16={self.use_fp16}, in_sampling_rate={self.in_sampling_rate:g}, "
                f"out_sampling_rate={self.out_sampling_rate:g}, in_size={list(self.in_size)}, "
                f"out_size={list(self.out_size)}, in_channels={self.in_channels}, out_channels={self.out_channels}")


def _layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                    first_cutoff, first_stopband, last_stopband_rel, margin_size):
    """Per layer 0..num_layers (numpy arrays, the paper's geometric progression): cutoffs f_c, stopbands
    f_t, sampling rates s, transition half-widths f_h, sizes (with margin; the last two exactly the
    image) and channel counts (the last one the image channels)."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return cutoffs, sampling_rates, half_widths, sizes, channels


@_remembers_init_arguments
class SynthesisNetwork(torch.nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, img_channels, img_resolution, img_resolution), roughly in
    [-1, 1]. Layers ``L{index}_{size}_{channels}`` as NVIDIA names them, then ``output_scale``."""

    nvidia_class_name = "SynthesisNetwork"

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_layers=14,
                 num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3, margin_size=10,
                 output_scale=0.25, num_fp16_res=4, **layer_kwargs):
        super().__init__()
        self.w_dim, self.num_ws = w_dim, num_layers + 2
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_layers, self.num_critical, self.margin_size = num_layers, num_critical, margin_size
        self.output_scale, self.num_fp16_res = output_scale, num_fp16_res
        cutoffs, rates, half_widths, sizes, channels = _layer_schedule(
            img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical, first_cutoff,
            first_stopband, last_stopband_rel, margin_size)
        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for index in range(num_layers + 1):
            prev = max(index - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(index == num_layers), is_critically_sampled=(index >= num_layers - num_critical),
                use_fp16=(rates[index] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[index]),
                in_size=int(sizes[prev]), out_size=int(sizes[index]),
                in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[index]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[index],
                in_half_width=half_widths[prev], out_half_width=half_widths[index], **layer_kwargs)
            name = f"L{index}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, transform=None, force_fp32=False):
        """ws (N, num_ws, w_dim); transform None (the ``input.transform`` buffer, as NVIDIA) or (N, 3, 3):
        each sample's inverse input transform (see `input_transform`). Returns float32 images
        (N, img_channels, img_resolution, img_resolution)."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=transform)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self):
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}, "
                f"margin_size={self.margin_size}, num_fp16_res={self.num_fp16_res}")


@_remembers_init_arguments
class Generator(torch.nn.Module):
    """z (N, z_dim), c (N, c_dim) -> images (N, img_channels, img_resolution, img_resolution) float32,
    roughly in [-1, 1]: ``mapping`` then ``synthesis``."""

    nvidia_class_name = "Generator"

    # NVIDIA's signature, mutable default included (never mutated: it is only unpacked).
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={},  # noqa: B006
                 **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, transform=None, force_fp32=False):
        """Images (N, img_channels, H, W) float32. truncation_psi: float or tensor (N,); transform: None
        (the buffer) or (N, 3, 3) per-sample inverse input transforms (`input_transform`)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, transform=transform, force_fp32=force_fp32)


# ---------------------------------------------------------------- building: transforms, loading, random weights

def input_transform(rotation_deg, translate_x, translate_y, dtype=torch.float32, device=None):
    """Per-sample input transforms (N, 3, 3) for ``transform=``: the inverse of rotate-then-translate.

    As NVIDIA's gen_images.py (``make_transform`` then ``np.linalg.inv``) and visualizer do, the
    forward matrix is [[cos a, sin a, tx], [-sin a, cos a, ty], [0, 0, 1]] and the network gets its
    inverse (it maps image coordinates to input coordinates). Seen in the image (x right, y down):
    the content turns by ``rotation_deg`` counter-clockwise about the image centre, then moves by
    (translate_x, translate_y) image widths (1.0 = the whole image; +x right, +y down). Each argument is
    a number or a sequence / array / tensor of N values (broadcast). Computed in float64, then cast.
    """
    angle, tx, ty = np.broadcast_arrays(*(np.atleast_1d(np.asarray(
        v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)) for v in
        (rotation_deg, translate_x, translate_y)))
    radians = angle / 360.0 * np.pi * 2
    cos, sin = np.cos(radians), np.sin(radians)
    m = np.zeros([angle.shape[0], 3, 3])
    # Inverse of [R t; 0 1] with R = [[c, s], [-s, c]]: [R^T, -R^T t; 0 1].
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cos, -sin, -(cos * tx - sin * ty)
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = sin, cos, -(sin * tx + cos * ty)
    m[:, 2, 2] = 1
    return torch.from_numpy(m).to(dtype=dtype, device=device)


def _listed(keys):
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _check_state(model, state_dict, source):
    """Raise LatentWalkError naming (up to 5) missing, unexpected or wrong-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {_listed(missing)}"] if missing else []) + (
            [f"unexpected {_listed(unexpected)}"] if unexpected else [])
        raise LatentWalkError(f"StyleGAN3 weights in {source} do not match its network settings: {'; '.join(parts)}. "
                              "The file is damaged, or not a StyleGAN3 generator.")
    wrong = sorted(f"{key} {tuple(state_dict[key].shape)} (expected {tuple(tensor.shape)})"
                   for key, tensor in expected.items()
                   if not isinstance(state_dict[key], torch.Tensor) or state_dict[key].shape != tensor.shape)
    if wrong:
        raise LatentWalkError(f"StyleGAN3 weights in {source} do not match its network settings: wrong shape "
                              f"{_listed(wrong)}. The file is damaged, or not a StyleGAN3 generator.")


def from_state(init_kwargs, state_dict, source="the StyleGAN3 file"):
    """A `Generator` in eval mode with frozen parameters, built from NVIDIA's Generator record's
    ``init_kwargs`` (NVIDIA's defaults for what is absent) and loaded from ``state_dict`` ({key: tensor},
    NVIDIA's names) with a strict check: a missing, unexpected or wrong-shaped key raises
    LatentWalkError naming it. ``source`` names the file in messages."""
    kwargs = dict(init_kwargs or {})
    try:
        with torch.random.fork_rng(devices=[]):  # the constructor's throwaway draws leave the global RNG alone
            model = Generator(**kwargs)
    except (TypeError, ValueError, KeyError, ZeroDivisionError, RuntimeError) as error:
        raise LatentWalkError(f"The StyleGAN3 network settings in {source} cannot be used ({error}).") from None
    bad = sorted(key for key, value in state_dict.items() if not isinstance(value, torch.Tensor))
    if bad:
        raise LatentWalkError(f"StyleGAN3 weights in {source} hold non-tensors at {_listed(bad)}.")
    _check_state(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    return model.eval().requires_grad_(False)


def random_generator(seed=0, **init_kwargs):
    """A `Generator` (eval mode, frozen) with NVIDIA's initial weight distributions drawn from ``seed``:
    noise images, for benchmarks and tiny stand-ins. ``init_kwargs`` as `Generator`'s; by default the
    published config-T shape (z_dim = w_dim = 512, unconditional, RGB, 1024 x 1024)."""
    kwargs = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3, **init_kwargs}
    with torch.random.fork_rng(devices=[]):
        model = Generator(**kwargs)
    rng = torch.Generator().manual_seed(int(seed))
    for module in model.modules():  # module order is fixed, so the draws are too
        if "reset_parameters" in type(module).__dict__:
            module.reset_parameters(rng)
    return model.eval().requires_grad_(False)
