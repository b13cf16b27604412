"""Benchmark: the engine's batched img2img vs a per-frame loop, and the full render.

    .venv/bin/python scripts/bench_render.py [--unet small|sd-turbo|sd15] [--size 256] [--frame-count 16]
        [--steps 2] [--strength 0.5] [--guidance 0] [--batch-sizes 4,8] [--tiny-vae] [--device auto]
        [--half auto] [--full] [--fps 30] [--repeats 2] [--workers]

The img2img models are built with random weights in the real architectures
(``sd-turbo``: Stable Diffusion 2.1's UNet, VAE and a 1024-wide 23-layer CLIP text
encoder; ``sd15``: Stable Diffusion 1.5's UNet, VAE and 12-layer CLIP text encoder;
``small``: a reduced UNet that a CPU runs in seconds), saved with
save_pretrained and loaded through the engine's own loader, as a user's model is.
Their compute is the real compute; pretrained weights cannot be downloaded here.

Both sides run the same frames, prompt, strength, steps and seed on the same
pipeline, in one run:
- per-frame loop: one pipeline call per frame with the prompt text, as per-frame
  add-ons do it (the text encoder runs for every frame);
- engine: the prompt encoded once, frames batched (``img2img.run``, what the render uses).
Prints frames/s, the ratio and the largest pixel difference between the two.

``--full`` also times the whole render (engine/render/run.py: BigGAN biggan-deep-256 with random
weights at full size, img2img, PNG writing) at the last of --batch-sizes, side by side in
interleaved rounds: with PNGs on the writer pool, with PNGs written in the loop, and compute
alone (frames to the CPU, no PNG); the share of time the device is busy; each stage alone; a
typical add-on's per-frame loop; and the FLOP bound (FLOPs a frame counted by torch's
FlopCounterMode, over this device's measured matmul rate, and on a GPU the data sheet's peak).
``--workers`` instead times the whole render by one and by two engine worker processes over
interleaved aligned batches (the add-on's Devices setting): on cuda:0 and cuda:1 where there
are two GPUs, else two workers on the CPU (it says which), and checks that both give the same bytes.
Not a test: the machines are shared and noisy; interleaved rounds, best of each.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmarking import timed  # noqa: E402

from blender_latentwalk.engine.generators import biggan  # noqa: E402
from blender_latentwalk.engine.diffusion import img2img

PROMPT = "an oil painting of a volcano at night, glowing lava"


def build_pipeline(folder, unet_kind, size):
    """Write a random-weight SD img2img pipeline of the given UNet kind with save_pretrained."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    torch.manual_seed(0)
    tokenizer = img2img.byte_level_tokenizer(77)  # CLIP's context length
    token_ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)

    def autoencoder(widths, layers_per_block):
        return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                             block_out_channels=widths, layers_per_block=layers_per_block, latent_channels=4,
                             sample_size=size)
    if unet_kind == "sd15":  # Stable Diffusion 1.5's architecture (diffusers' defaults are its UNet)
        unet = UNet2DConditionModel(sample_size=size // 8, cross_attention_dim=768, attention_head_dim=8)
        vae = autoencoder((128, 256, 512, 512), 2)  # Stable Diffusion's VAE
        text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072,
                              num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                              projection_dim=768, hidden_act="quick_gelu", **token_ids)
    elif unet_kind == "sd-turbo":  # Stable Diffusion 2.1 (sd-turbo's architecture)
        unet = UNet2DConditionModel(
            sample_size=size // 8, block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
            cross_attention_dim=1024, use_linear_projection=True, layers_per_block=2,
        )
        vae = autoencoder((128, 256, 512, 512), 2)  # Stable Diffusion's VAE
        text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=4096,
                              num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77,
                              projection_dim=1024, hidden_act="gelu", **token_ids)
    else:  # small: the same block layout, narrow, for CPUs
        unet = UNet2DConditionModel(
            sample_size=size // 8, block_out_channels=(64, 128, 128, 128), attention_head_dim=(2, 4, 4, 4),
            cross_attention_dim=256, use_linear_projection=True, layers_per_block=1, norm_num_groups=32,
        )
        vae = autoencoder((32, 64, 64, 64), 1)
        text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024,
                              num_hidden_layers=6, num_attention_heads=4, max_position_embeddings=77,
                              projection_dim=256, hidden_act="gelu", **token_ids)
    return img2img.save_untrained_pipeline(folder, unet, vae, text, tokenizer)


def build_tiny_vae(folder):
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(folder)  # taesd's architecture
    return folder


def per_frame_loop(pipeline, images, strength, steps, seed, device):
    """One pipeline call per frame with the prompt text, as per-frame add-ons do."""
    outputs = []
    for image in images:
        generator = torch.Generator(device).manual_seed(seed)
        with torch.inference_mode():
            result = pipeline(prompt=PROMPT, image=image, strength=strength, guidance_scale=0.0,
                              num_inference_steps=steps, generator=generator, output_type="np")
        outputs.append((np.clip(result.images[0], 0, 1) * 255).round().astype(np.uint8))
    return outputs


def engine_batched(pipeline, images, strength, steps, seed, device, batch_size):
    embeddings = img2img.PromptEmbeddings(pipeline, "", device)
    condition = embeddings.blend({PROMPT: 1.0}, False)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        images = img2img.run(pipeline, img2img.images_from_pictures(batch, device), [condition] * len(batch),
                             strength, 0.0, steps, [seed] * len(batch), device)
        outputs += img2img.pictures_from_images(images)
    return outputs


def random_biggan(out):
    """biggan-deep-256's architecture with random weights, saved as a model folder."""
    folder = os.path.join(out, "biggan-deep-256-random")
    if not os.path.isdir(folder):
        biggan.save_untrained_model(folder, biggan.architecture(256))
    return folder


def bench_plan(frames, strength=0.5, steps=2, guidance=0.0):
    from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan

    rng = np.random.default_rng(0)
    return RenderPlan(frame_start=1, fps=30, fps_base=1, seed=0, band_names=["a"], bands=rng.random((1, frames)),
                      band_weights=np.ones((1, frames)), onset=rng.random(frames), chroma=rng.random((frames, 12)),
                      truncation=np.full(frames, 0.4), pulse=np.ones(frames), speed=np.ones(frames),
                      jitter=np.zeros(frames), strength=np.full(frames, strength), steps=np.full(frames, float(steps)),
                      guidance=np.full(frames, guidance), noise_seed=np.zeros(frames),
                      settings=dict(DEFAULT_SETTINGS, prompts=[PROMPT]))


def workers_render(sd_folder, tiny_vae, size, frames, batch_size, devices, out):
    """Seconds for one render of ``frames`` frames by one engine worker process per device, over
    interleaved aligned batches (what the add-on's Devices setting does), timed from the models
    loaded in every worker to the last frame written. Returns (seconds, frames folder)."""
    import subprocess

    from blender_latentwalk.engine.render import frame_ranges
    from blender_latentwalk.engine.worker import messages

    plan_path = os.path.join(out, "plan.npz")
    if not os.path.isfile(plan_path):
        bench_plan(frames).save(plan_path)
    base = dict(plan_path=plan_path, generator=random_biggan(out), batch_size=batch_size,
                img2img={"model": sd_folder, "width": size, "height": size, "tiny_vae": tiny_vae or ""})
    environment = dict(os.environ, PYTHONPATH=ROOT)
    workers = [subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"], cwd=ROOT,
                                env=environment, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL) for _ in devices]

    def send(worker, request):
        worker.stdin.write(messages.encode(request) + "\n")
        worker.stdin.flush()

    def wait_done(worker):
        while True:
            event = messages.decode_event(worker.stdout.readline())
            if isinstance(event, (messages.RequestFailed, messages.Fatal)):
                sys.exit(f"error: a render worker failed: {event.message}")
            if isinstance(event, messages.RenderDone):
                return event

    for worker in workers:
        assert isinstance(messages.decode_event(worker.stdout.readline()), messages.Ready)
    for number, (worker, device) in enumerate(zip(workers, devices)):  # load and warm up, all at once
        warm_folder = os.path.join(out, f"warm-{len(devices)}-{number}")
        send(worker, messages.RenderRequest(id=1, device=device, out_folder=warm_folder,
                                            plan_index_ranges=[[0, batch_size - 1]], **base))
    for worker in workers:
        wait_done(worker)
    folder = os.path.join(out, f"frames-{len(devices)}-workers")
    shares = frame_ranges.interleave_batches([[0, frames - 1]], batch_size, len(devices))
    start = time.perf_counter()
    for worker, device, share in zip(workers, devices, shares):
        send(worker, messages.RenderRequest(id=2, device=device, out_folder=folder, plan_index_ranges=share, **base))
    for worker in workers[:len(shares)]:
        wait_done(worker)
    seconds = time.perf_counter() - start
    for worker in workers:
        send(worker, messages.QuitRequest())
        worker.wait(60)
    return seconds, folder


def worker_devices():
    """(devices for two workers, what they are): two GPUs, else two workers on the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
        return ["cuda:0", "cuda:1"], f"2 GPUs ({torch.cuda.get_device_name(0)}, {torch.cuda.get_device_name(1)})"
    return ["cpu", "cpu"], f"the CPU ({os.cpu_count()} cores shared by both workers: no two GPUs here)"


def bench_workers(args, sd_folder, tiny_vae, work):
    """--workers: frames/s of one render by 1 and by 2 worker processes, and whether the frames agree."""
    devices, described = worker_devices()
    batch_size = int(args.batch_sizes.split(",")[-1])
    print(f"workers: {args.frame_count} frames, batch {batch_size}, {args.size}x{args.size}, on {described}")
    folders = {}
    for count in (1, 2):
        seconds, folders[count] = workers_render(sd_folder, tiny_vae, args.size, args.frame_count, batch_size,
                                                 devices[:count], work)
        print(f"{count} worker{'s' if count > 1 else ' '} ({','.join(devices[:count])}): "
              f"{args.frame_count / seconds:8.2f} frames/s")
    same = all(open(os.path.join(folders[1], name), "rb").read() == open(os.path.join(folders[2], name), "rb").read()
               for name in sorted(os.listdir(folders[1])) if name.endswith(".png"))
    print(f"frames of 2 workers byte-identical to 1 worker: {'yes' if same else 'NO'}")


# Dense fp16/bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s), for the FLOP bound's second line.
DATASHEET_TFLOPS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("A100", 312),
                    ("L40S", 362), ("RTX 4090", 165), ("A10", 125))


def best_seconds(function, device, repeats):
    return min(timed(function, device)[1] for _ in range(repeats))


def measured_matmul_rate(device, dtype):
    """FLOP/s of this device on a large square matmul in ``dtype``: the fastest its FLOPs run."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    return 2 * n**3 / best_seconds(lambda: torch.matmul(a, b), device, 5)


def flops_per_frame(renderer):
    """FLOPs of one frame as the render computes it (BigGAN, resize, img2img with its steps, VAE), counted
    by torch's FlopCounterMode (matrix products and convolutions: what dominates)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        renderer.compute([0], [0])
    return counter.get_total_flops()


def addon_biggan(folder, renderer):
    """BigGAN as a typical add-on runs it: pytorch-pretrained-biggan's model as loaded (spectral norm
    computed on every forward), in the render's device and precision."""
    model = biggan.load_weights(*biggan.resolve(folder)).eval()
    return model.to(device=renderer.torch_device, dtype=renderer.dtype)


def per_frame_addon(renderer, model, plan, frames, size, out):
    """A typical add-on's loop: one frame at a time through BigGAN (``model``, as loaded), to the CPU as a
    PIL image, fitted by Pillow, one pipeline call with the prompt text (the text encoder runs every
    frame), PNG saved in the loop."""
    from PIL import Image, ImageOps

    os.makedirs(out, exist_ok=True)
    z, classes, truncation = renderer.inputs
    for index in range(frames):
        with torch.inference_mode():
            picture = model(torch.from_numpy(z[index:index + 1]).to(renderer.torch_device, renderer.dtype),
                                     torch.from_numpy(classes[index:index + 1]).to(renderer.torch_device,
                                                                                   renderer.dtype),
                                     float(truncation[index]))
        pixels = ((picture[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        image = ImageOps.fit(Image.fromarray(pixels), (size, size), method=Image.BICUBIC)
        if renderer.pipeline is not None:
            generator = torch.Generator("cpu" if renderer.torch_device.type == "mps" else renderer.torch_device)
            with torch.inference_mode():
                image = renderer.pipeline(prompt=PROMPT, image=image, strength=float(plan.strength[index]),
                                          guidance_scale=float(plan.guidance[index]),
                                          num_inference_steps=int(plan.steps[index]),
                                          generator=generator.manual_seed(0)).images[0]
        image.save(os.path.join(out, f"frame_{index:06d}.png"))


def stage_rates(renderer, plan, batch_size, repeats, out):
    """Frames/s of each stage alone on one aligned batch (the device waited for after each)."""
    from blender_latentwalk.engine.render import compute
    from blender_latentwalk.engine.render import png_writer
    from blender_latentwalk.engine.imaging import resize

    device, batch = renderer.torch_device, list(range(batch_size))
    z, classes, truncation = renderer.inputs

    def run_biggan():
        return [images for _, images in biggan.generate_images(renderer.loaded.model, device, renderer.dtype, z, classes,
                                                               truncation, batch, batch_size)][0]

    generated = run_biggan()
    size = (renderer.settings.width, renderer.settings.height)
    resizes = resize.fit_resizes((generated.shape[-1], generated.shape[-2]), size)
    fitted = resize.apply(generated, resizes)
    seconds = {"BigGAN": best_seconds(run_biggan, device, repeats),
               "scale and crop": best_seconds(lambda: resize.apply(generated, resizes), device, repeats)}
    output = fitted
    if renderer.pipeline is not None:
        (steps, effective, guidance), members = compute.diffusion_groups(plan, batch)[0]
        conditions = [renderer.embeddings.blend(plan.frame_prompts(i), guidance > 1) for i in members]

        def run_img2img():
            return img2img.run(renderer.pipeline, fitted, conditions, img2img.pipeline_strength(steps, effective),
                               guidance, steps, [0] * len(members), device)

        output = run_img2img()
        seconds["img2img"] = best_seconds(run_img2img, device, repeats)
    pixels = compute.HostCopy(output).pixels()
    os.makedirs(out, exist_ok=True)
    seconds["PNG (1 thread)"] = best_seconds(
        lambda: [png_writer.write_png(os.path.join(out, f"{k}.png"), frame) for k, frame in enumerate(pixels)], device,
        repeats)
    return {stage: batch_size / value for stage, value in seconds.items()}


def bench_full(args, sd_folder, tiny_vae, work):
    """--full: the whole render (PNG writing included) against compute alone, a typical add-on's per-frame
    loop and the FLOP bound, on one device, interleaved rounds, best of each."""
    from blender_latentwalk.engine.render import compute
    from blender_latentwalk.engine.render import png_writer
    from blender_latentwalk.engine.render import run as render

    batch_size = int(args.batch_sizes.split(",")[-1])
    plan = bench_plan(args.frame_count, args.strength, args.steps, args.guidance)
    settings = render.Img2ImgSettings(model=sd_folder, width=args.size, height=args.size, tiny_vae=tiny_vae or "")
    biggan_folder = random_biggan(work)
    models = compute.Models()
    renderer = compute.batch_renderer(plan, biggan_folder, settings, args.device, models)
    device = renderer.torch_device
    batches = [list(range(start, min(start + batch_size, args.frame_count))) for start in range(0, args.frame_count, batch_size)]

    def compute_only():
        for batch in batches:
            compute.HostCopy(renderer.compute(batch, batch)).pixels()

    runs = {"pool": 0, "serial": 0}

    def whole(threads, label):
        runs[label] += 1
        folder = os.path.join(work, f"render-{label}-{runs[label]}")
        render.render(plan, biggan_folder, settings, folder, None, batch_size, args.device, models=models,
                      png_threads=threads)

    threads = png_writer.writer_threads()
    compute_only()  # warm-up: kernels chosen, caches filled
    best = {}
    for _ in range(args.repeats):  # interleaved: the machine's other load hits every variant alike
        for name, function in (("compute", compute_only), ("pool", lambda: whole(None, "pool")),
                               ("serial", lambda: whole(0, "serial"))):
            best[name] = min(best.get(name, float("inf")), best_seconds(function, device, 1))
    addon_frames = min(args.frame_count, 8)
    loaded = addon_biggan(biggan_folder, renderer)
    per_frame_addon(renderer, loaded, plan, 1, args.size, os.path.join(work, "addon-warm"))
    addon = min(timed(per_frame_addon, device, renderer, loaded, plan, addon_frames, args.size,
                      os.path.join(work, f"addon-{k}"))[1] for k in range(args.repeats))
    del loaded
    stages = stage_rates(renderer, plan, batch_size, args.repeats, os.path.join(work, "stage-png"))
    flops = flops_per_frame(renderer)
    rate = measured_matmul_rate(device, renderer.dtype)

    fps = {name: args.frame_count / seconds for name, seconds in best.items()}
    described = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nwhole render: {args.frame_count} frames {args.size}x{args.size}, batch {batch_size}, biggan-deep-256 + "
          f"{args.unet} UNet + {'tiny VAE' if tiny_vae else 'full VAE'} (random weights), {args.steps} steps at "
          f"strength {args.strength}, guidance {args.guidance:g}, {str(renderer.dtype).replace('torch.', '')}, {described}")
    print(f"  {'typical add-on (a frame a call, model as loaded, PIL between)':56s} {addon_frames / addon:8.2f} frames/s")
    print(f"  {'engine, PNGs written in the loop (png_threads=0)':56s} {fps['serial']:8.2f} frames/s")
    pool = f"engine, PNGs on the writer pool ({threads} thread{'s' if threads > 1 else ''})"
    print(f"  {pool:56s} {fps['pool']:8.2f} frames/s  "
          f"= {100 * fps['pool'] / fps['compute']:.0f}% of compute only, {fps['pool'] / args.fps:.2f}x the "
          f"song's {args.fps:g} fps")
    print(f"  {'engine, compute only (frames to the CPU, no PNG)':56s} {fps['compute']:8.2f} frames/s")
    print(f"  device busy, estimated as compute-only time / whole-render time (over 100%: noise): "
          f"{100 * fps['pool'] / fps['compute']:.0f}% "
          f"with the pool, {100 * fps['serial'] / fps['compute']:.0f}% with PNGs in the loop")
    print("  stages alone, batch " + str(batch_size) + ": " + ", ".join(f"{stage} {value:.1f}" for stage, value
                                                                    in stages.items()) + " frames/s")
    print(f"  FLOP bound: {flops / 1e9:.1f} GFLOP a frame; at this device's measured matmul rate "
          f"({rate / 1e12:.2f} TFLOP/s) at most {rate / flops:.1f} frames/s")
    peak = None
    if device.type == "cuda":
        peak = next((value for key, value in DATASHEET_TFLOPS if key in torch.cuda.get_device_name(device)), None)
        if peak is not None:
            print(f"  at the data sheet's dense fp16 peak ({peak} TFLOP/s): at most {peak * 1e12 / flops:.0f} frames/s")
    # One row for docs/performance.md's table.
    print(f"table row: | {described} | {args.unet}, {'tiny VAE' if tiny_vae else 'full VAE'}, {args.steps} steps, "
          f"strength {args.strength:g}, guidance {args.guidance:g}, {str(renderer.dtype).replace('torch.', '')} | "
          f"{args.size}x{args.size} | {batch_size} | {fps['pool']:.2f} | {fps['serial']:.2f} | {fps['compute']:.2f} | "
          f"{100 * fps['pool'] / fps['compute']:.0f}% | {addon_frames / addon:.2f} | "
          + ", ".join(f"{stage} {value:.1f}" for stage, value in stages.items())
          + f" | {flops / 1e9:.1f} | {rate / flops:.1f}" + (f" ({peak * 1e12 / flops:.0f} at peak)" if peak else "") + " |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--unet", default="small", choices=("small", "sd-turbo", "sd15"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frame-count", type=int, default=16, help="how many frames to render")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance (above 1: on)")
    parser.add_argument("--batch-sizes", default="4,8")
    parser.add_argument("--tiny-vae", action="store_true", help="decode and encode with AutoencoderTiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--half", default="auto", choices=("auto", "yes", "no"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time the whole render (BigGAN + img2img + PNG)")
    parser.add_argument("--fps", type=float, default=30.0, help="the song's frame rate, for --full")
    parser.add_argument("--workers", action="store_true",
                        help="instead: frames/s of the whole render by 1 and by 2 worker processes over interleaved "
                        "batches (Devices): on two GPUs where there are, else on the CPU")
    args = parser.parse_args()

    device = biggan.pick_device(args.device)
    half = {"auto": device.type == "cuda", "yes": True, "no": False}[args.half]
    dtype = torch.float16 if half else torch.float32
    work = tempfile.mkdtemp(prefix="latentwalk-bench-")
    sd_folder = build_pipeline(os.path.join(work, f"sd-{args.unet}"), args.unet, args.size)
    tiny_vae = build_tiny_vae(os.path.join(work, "taesd")) if args.tiny_vae else None
    if args.workers:
        bench_workers(args, sd_folder, tiny_vae, work)
        return
    pipeline = img2img.load(sd_folder, device, dtype, tiny_vae)
    rng = np.random.default_rng(0)
    from PIL import Image

    images = [Image.fromarray(rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8))
              for _ in range(args.frame_count)]
    generator_device = "cpu" if device.type == "mps" else device
    described = (torch.cuda.get_device_name(device) if device.type == "cuda"
                 else f"{torch.get_num_threads()} threads")
    print(f"img2img {args.unet} UNet (random weights), {args.size}x{args.size}, {args.frame_count} frames, "
          f"{args.steps} steps at strength {args.strength} ({img2img.effective_steps(args.steps, args.strength)} run), "
          f"{'tiny VAE' if tiny_vae else 'full VAE'}, {'fp16' if half else 'fp32'}, device {device} ({described})")

    per_frame_loop(pipeline, images[:1], args.strength, args.steps, 0, generator_device)  # warm-up
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    best, differences = {}, {}
    for _ in range(args.repeats):  # interleaved rounds: the machine's other load hits all alike
        expected, seconds = timed(per_frame_loop, device, pipeline, images, args.strength, args.steps, 0,
                                  generator_device)
        best["loop"] = min(best.get("loop", float("inf")), seconds)
        for batch_size in batch_sizes:
            outputs, seconds = timed(engine_batched, device, pipeline, images, args.strength, args.steps, 0,
                                     device, batch_size)
            best[batch_size] = min(best.get(batch_size, float("inf")), seconds)
            differences[batch_size] = max(int(np.abs(a.astype(int) - b.astype(int)).max())
                                          for a, b in zip(outputs, expected))
    print(f"{'per-frame loop (one call a frame)':36s} {args.frame_count / best['loop']:8.2f} frames/s")
    for batch_size in batch_sizes:
        print(f"{f'engine (batch {batch_size})':36s} {args.frame_count / best[batch_size]:8.2f} frames/s  "
              f"{best['loop'] / best[batch_size]:5.2f}x  max pixel difference {differences[batch_size]}")
    if args.full:
        del pipeline
        bench_full(args, sd_folder, tiny_vae, work)


if __name__ == "__main__":
    main()
