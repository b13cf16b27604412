"""Benchmark: StyleGAN2-1024 and StyleGAN3-T-1024 render speed, ours against a per-frame notebook loop.

    .venv/bin/python scripts/bench_stylegan.py [--models sg2,sg3t] [--resolution 1024] [--frames N]
        [--batch-sizes 1,4] [--device auto] [--precision fp32,fp16] [--repeats 1]
        [--channel-base 32768] [--channel-max 512]

The networks are ours (engine/generators/stylegan2_network.py, stylegan3_network.py) with random weights
(`random_generator`) at full size; pretrained weights cannot be downloaded here, and the compute does not
depend on the weights:
- sg2: StyleGAN2 config-f (stylegan2-ada-pytorch's train.py ``--cfg=stylegan2``): z = w = 512, 8 mapping
  layers, channel_base 32768, channel_max 512, num_fp16_res 4, conv_clamp 256;
- sg3t: StyleGAN3-T (stylegan3's train.py ``--cfg=stylegan3-t``): z = w = 512, 2 mapping layers,
  channel_base 32768, channel_max 512, magnitude_ema_beta 0.5 ** (32 / 20000) (batch 32), NVIDIA's
  defaults otherwise (num_fp16_res 4, conv_clamp 256).

Both sides run on the same network object, side by side in one run:
- ours: a RenderPlan of --frames frames (palette seeds, latent space W) through
  ``StyleGANGenerator.generate`` in aligned batches (the render's own path: per-frame psi, palette, band
  offsets, noise strength or input transform; the frames stay on the device as 8-bit values), timed
  until the last batch is synchronised, after one warm-up batch per batch size;
- notebook loop: one frame at a time as NVIDIA's gen_images.py / a Colab notebook does:
  z from ``np.random.RandomState(seed)``, ``G(z, None, truncation_psi=0.7, noise_mode='const')``
  (StyleGAN3's layers have no noise: no noise_mode), then to uint8 on the CPU; fp32, after one warm-up
  frame. On CUDA, NVIDIA's own code runs a published pickle in mixed precision (fp16 in the 4 highest
  resolutions); with --precision fp16 the loop is timed that way too (last columns).

Precision: fp32 everywhere, or fp16 as NVIDIA's mixed precision (CUDA only; skipped on a CPU, saying so):
StyleGAN2 ``.half()`` (our SynthesisNetwork then runs fp16 in the num_fp16_res highest resolutions, fp32
below and in the mapping); StyleGAN3 its layers marked use_fp16 computed in fp16 (parameters stay fp32;
its fp32 variant has every use_fp16 off, as NVIDIA's force_fp32). The render computes StyleGAN3 in fp32
whatever the network says (StyleGANGenerator.generate passes force_fp32), so StyleGAN3's "ours" fp16 row
is an fp32 render next to the loop in NVIDIA's mixed precision.

--repeats interleaves rounds (loop, then ours at each batch size) and keeps the best of each.
Not a test: the machines are shared and noisy.
"""

import argparse
import copy
import os
import platform
import shlex
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from blender_latentwalk.engine.generators import stylegan2_network, stylegan3_network  # noqa: E402
from blender_latentwalk.engine.generators.biggan import pick_device  # noqa: E402
from blender_latentwalk.engine.generators.interface import Loaded  # noqa: E402
from blender_latentwalk.engine.generators.stylegan import StyleGANGenerator  # noqa: E402

NAMES = {"sg2": "StyleGAN2 config-f", "sg3t": "StyleGAN3-T"}
PSI = 0.7  # the notebook's truncation


def build(model, resolution, channel_base, channel_max):
    """Our network of ``model`` ("sg2" or "sg3t") with random weights, eval mode, fp32, on the CPU."""
    common = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": resolution, "img_channels": 3,
              "channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": 4, "conv_clamp": 256}
    if model == "sg2":
        return stylegan2_network.random_generator(0, mapping_kwargs={"num_layers": 8}, **common)
    return stylegan3_network.random_generator(0, mapping_kwargs={"num_layers": 2},
                                              magnitude_ema_beta=0.5 ** (32 / (20 * 1e3)), **common)


def variant(network, model, precision):
    """(the network to run at ``precision``, what that precision is, in words)."""
    if model == "sg2":
        if precision == "fp16":
            return (copy.deepcopy(network).half(),
                    f".half(): fp16 in the {network.synthesis.num_fp16_res} highest resolutions, fp32 below")
        return network, "fp32 everywhere"
    layers = [getattr(network.synthesis, name) for name in network.synthesis.layer_names]
    if precision == "fp16":
        fp16 = sum(layer.use_fp16 for layer in layers)
        return network, f"use_fp16 layers in fp16 ({fp16} of {len(layers)}), params fp32"
    if not any(layer.use_fp16 for layer in layers) or network.mapping.w_avg.device.type == "cpu":
        return network, "fp32 everywhere"  # on a CPU use_fp16 layers compute in fp32 anyway
    fp32 = copy.deepcopy(network)
    for name in fp32.synthesis.layer_names:  # on a GPU these layers would compute in fp16 (NVIDIA's force_fp32)
        getattr(fp32.synthesis, name).use_fp16 = False
    return fp32, "fp32 everywhere (use_fp16 off, as force_fp32)"


def bench_plan(frames):
    """The walk's plan of ``frames`` frames, as tests/engine/test_stylegan_render.py builds it."""
    from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

    rng = np.random.default_rng(7)
    return RenderPlan(frame_start=1, fps=24, fps_base=1.0, seed=5, band_names=["low", "high"],
                      settings=dict(DEFAULT_SETTINGS, mode="displacement", latent_space="w",
                                    palette_seeds=[3, 14, 15, 92]),
                      bands=rng.random((2, frames)), band_weights=np.ones((2, frames)), onset=rng.random(frames),
                      chroma=rng.random((frames, 12)),
                      truncation=np.where(np.arange(frames) % 3 == 0, 0.5, 0.8), pulse=np.ones(frames),
                      speed=np.ones(frames), jitter=np.full(frames, 0.05))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours(generator, loaded, inputs, plan, batches):
    """The render's path: every aligned batch through generate; the frames stay on the device."""
    last = None
    for batch in batches:
        for _, images in generator.generate(loaded, inputs, plan, batch, batch):
            last = images
    synchronize(loaded.torch_device)
    return last


def notebook_loop(network, device, seeds, sg2):
    """One frame a call, as gen_images.py: z from the seed, G with psi 0.7, to uint8 on the CPU."""
    frames = []
    for seed in seeds:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, network.z_dim)).to(device)
        with torch.no_grad():
            img = (network(z, None, truncation_psi=PSI, noise_mode="const") if sg2
                   else network(z, None, truncation_psi=PSI))
        frames.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy())
    return frames


def seconds(function, device, *args):
    synchronize(device)
    start = time.perf_counter()
    function(*args)
    synchronize(device)
    return time.perf_counter() - start


def machine(device):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            cpu = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = (f"machine: CPU {cpu} ({os.cpu_count()} cores), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return text


def bench_model(model, args, device, precisions, rows):
    network = build(model, args.resolution, args.channel_base, args.channel_max).to(device)
    sg2 = model == "sg2"
    generator = StyleGANGenerator(f"random-{model}.pkl")
    plan = bench_plan(args.frames)
    inputs = generator.inputs(plan)
    seeds = list(range(args.frames))
    fp32_network, _ = variant(network, model, "fp32")
    loop_best = {}

    def loop_seconds(key, loop_network):
        value = seconds(notebook_loop, device, loop_network, device, seeds, sg2)
        loop_best[key] = min(loop_best.get(key, float("inf")), value)

    notebook_loop(fp32_network, device, seeds[:1], sg2)  # warm-up frame
    for precision in precisions:
        run_network, described = variant(network, model, precision)
        loaded = Loaded(run_network, device, torch.float32)
        if precision == "fp16":
            notebook_loop(run_network, device, seeds[:1], sg2)
        best = {}
        for _ in range(args.repeats):  # interleaved: the machine's other load hits all alike
            loop_seconds("fp32", fp32_network)
            if precision == "fp16":
                loop_seconds("fp16", run_network)
            for batch_size in args.batch_sizes:
                batches = [list(range(start, min(start + batch_size, args.frames)))
                           for start in range(0, args.frames, batch_size)]
                if batch_size not in best:
                    ours(generator, loaded, inputs, plan, batches[:1])  # warm-up batch
                value = seconds(ours, device, generator, loaded, inputs, plan, batches)
                best[batch_size] = min(best.get(batch_size, float("inf")), value)
        print(f"{NAMES[model]} {args.resolution}x{args.resolution}, {precision}: {described}", flush=True)
        for batch_size in args.batch_sizes:
            rows.append((model, str(device), precision, batch_size, args.frames / best[batch_size],
                         args.frames / loop_best["fp32"],
                         args.frames / loop_best["fp16"] if precision == "fp16" else None))
        if run_network is not network and run_network is not fp32_network:
            del run_network, loaded
    del network, fp32_network
    if device.type == "cuda":
        torch.cuda.empty_cache()


def print_table(rows):
    header = (f"{'model':6s} {'device':7s} {'precision':9s} {'batch':>5s} {'ours f/s':>10s} "
              f"{'loop fp32 f/s':>14s} {'ratio':>7s} {'loop fp16 f/s':>14s} {'ratio':>7s}")
    print(header)
    print("-" * len(header))
    for model, device, precision, batch_size, ours_fps, loop_fps, loop16_fps in rows:
        tail = (f"{loop16_fps:14.3f} {ours_fps / loop16_fps:6.2f}x" if loop16_fps is not None
                else f"{'-':>14s} {'-':>7s}")
        print(f"{model:6s} {device:7s} {precision:9s} {batch_size:5d} {ours_fps:10.3f} {loop_fps:14.3f} "
              f"{ours_fps / loop_fps:6.2f}x {tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="sg2,sg3t", help="comma-separated: sg2, sg3t")
    parser.add_argument("--resolution", type=int, default=1024, help="1024 (the published size); 256/512: quick")
    parser.add_argument("--frames", type=int, default=None, help="frames a side (default: 4 on a CPU, 64 on CUDA)")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="fp32,fp16", help="comma-separated: fp32, fp16 (fp16 on CUDA only)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds, best of each")
    parser.add_argument("--channel-base", type=int, default=32768, help="smaller: a reduced network (for tests)")
    parser.add_argument("--channel-max", type=int, default=512)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in NAMES]
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if unknown or not models or any(p not in ("fp32", "fp16") for p in precisions) or not precisions:
        parser.error("--models takes sg2, sg3t; --precision takes fp32, fp16")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    device = pick_device(args.device)
    if device.type not in ("cpu", "cuda"):
        device = torch.device("cpu")  # MPS is not what this benchmark is for
    if args.frames is None:
        args.frames = 64 if device.type == "cuda" else 4
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as NVIDIA's code sets it
    print(machine(device))
    print("command: " + shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT)
                                    else sys.executable, os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)]
                                   + (sys.argv[1:] if argv is None else list(argv))))
    if "fp16" in precisions and device.type != "cuda":
        print("fp16 skipped: on a CPU the networks compute in fp32 (NVIDIA's code does too); fp16 is CUDA only")
        precisions = [p for p in precisions if p != "fp16"]
    if not precisions:
        return
    print(f"{args.frames} frames a side, {args.resolution}x{args.resolution}, channel_base {args.channel_base}, "
          f"channel_max {args.channel_max}, random weights; ours = StyleGANGenerator.generate in aligned batches "
          f"(frames left on the device); loop = one G(z) call a frame, psi {PSI}, to uint8 on the CPU", flush=True)
    rows = []
    for model in models:
        bench_model(model, args, device, precisions, rows)
    print_table(rows)


if __name__ == "__main__":
    main()
