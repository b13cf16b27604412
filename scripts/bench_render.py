"""Benchmark: the engine's batched img2img vs a per-frame loop, and the full render.

    .venv/bin/python scripts/bench_render.py [--unet small|sd-turbo] [--size 256] [--frames 16]
        [--steps 2] [--strength 0.5] [--batch-sizes 4,8] [--tiny-vae] [--device auto] [--half auto]
        [--full] [--fps 30] [--workers]

The img2img models are built with random weights in the real architectures
(``sd-turbo``: Stable Diffusion 2.1's UNet, VAE and a 1024-wide 23-layer CLIP text
encoder; ``small``: a reduced UNet that a CPU runs in seconds), saved with
save_pretrained and loaded through the engine's own loader, as a user's model is.
Their compute is the real compute; pretrained weights cannot be downloaded here.

Both sides run the same frames, prompt, strength, steps and seed on the same
pipeline, in one run:
- per-frame loop: one pipeline call per frame with the prompt text, as per-frame
  add-ons do it (the text encoder runs for every frame);
- engine: the prompt encoded once, frames batched (``img2img.run``, what the render uses).
Prints frames/s, the ratio and the largest pixel difference between the two.

``--full`` also times the whole render (engine/render.py: BigGAN biggan-deep-256
with random weights, img2img, PNG writing) and compares it with the song's --fps.
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

from blender_latentwalk.engine import biggan, img2img  # noqa: E402

PROMPT = "an oil painting of a volcano at night, glowing lava"


def build_pipeline(folder, unet_kind, size):
    """Write a random-weight SD img2img pipeline of the given UNet kind with save_pretrained."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    torch.manual_seed(0)
    tokenizer = img2img.byte_level_tokenizer(77)  # CLIP's context length
    token_ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)
    if unet_kind == "sd-turbo":  # Stable Diffusion 2.1 (sd-turbo's architecture)
        unet = UNet2DConditionModel(
            sample_size=size // 8, block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
            cross_attention_dim=1024, use_linear_projection=True, layers_per_block=2,
        )
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=size,
        )
        text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=4096,
                              num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77,
                              projection_dim=1024, hidden_act="gelu", **token_ids)
    else:  # small: the same block layout, narrow, for CPUs
        unet = UNet2DConditionModel(
            sample_size=size // 8, block_out_channels=(64, 128, 128, 128), attention_head_dim=(2, 4, 4, 4),
            cross_attention_dim=256, use_linear_projection=True, layers_per_block=1, norm_num_groups=32,
        )
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(32, 64, 64, 64), layers_per_block=1, latent_channels=4, norm_num_groups=32,
            sample_size=size,
        )
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
        outputs += img2img.run(pipeline, batch, [condition] * len(batch), strength, 0.0, steps,
                               [seed] * len(batch), device)
    return outputs


def random_biggan(out):
    """biggan-deep-256's architecture with random weights, saved as a model folder."""
    folder = os.path.join(out, "biggan-deep-256-random")
    if not os.path.isdir(folder):
        biggan.save_untrained_model(folder, biggan.architecture(256))
    return folder


def bench_plan(frames):
    from blender_latentwalk.engine.plan import DEFAULT_SETTINGS, RenderPlan

    rng = np.random.default_rng(0)
    return RenderPlan(frame_start=1, fps=30, fps_base=1, seed=0, band_names=["a"], bands=rng.random((1, frames)),
                      band_weights=np.ones((1, frames)), onset=rng.random(frames), chroma=rng.random((frames, 12)),
                      truncation=np.full(frames, 0.4), pulse=np.ones(frames), speed=np.ones(frames),
                      jitter=np.zeros(frames), settings=dict(DEFAULT_SETTINGS, prompts=[PROMPT]))


def workers_render(sd_folder, tiny_vae, size, frames, batch_size, devices, out):
    """Seconds for one render of ``frames`` frames by one engine worker process per device, over
    interleaved aligned batches (what the add-on's Devices setting does), timed from the models
    loaded in every worker to the last frame written. Returns (seconds, frames folder)."""
    import json
    import subprocess

    from blender_latentwalk.engine import frame_ranges

    plan_path = os.path.join(out, "plan.npz")
    if not os.path.isfile(plan_path):
        bench_plan(frames).save(plan_path)
    base = {"command": "render", "version": 2, "plan": plan_path, "biggan": random_biggan(out),
            "img2img": {"model": sd_folder, "width": size, "height": size, "tiny_vae": tiny_vae or ""},
            "batch_size": batch_size}
    environment = dict(os.environ, PYTHONPATH=ROOT)
    workers = [subprocess.Popen([sys.executable, "-m", "blender_latentwalk.engine", "worker"], cwd=ROOT,
                                env=environment, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL) for _ in devices]

    def request(worker, **fields):
        worker.stdin.write(json.dumps(dict(base, **fields)) + "\n")
        worker.stdin.flush()

    def wait_done(worker):
        while True:
            event = json.loads(worker.stdout.readline())
            if event["event"] in ("done", "error", "fatal"):
                if event["event"] != "done":
                    sys.exit(f"error: a render worker failed: {event['message']}")
                return event

    for worker in workers:
        assert json.loads(worker.stdout.readline())["event"] == "ready"
    for number, (worker, device) in enumerate(zip(workers, devices)):  # load and warm up, all at once
        request(worker, id=1, device=device, out=os.path.join(out, f"warm-{len(devices)}-{number}"),
                frames=[[0, batch_size - 1]])
    for worker in workers:
        wait_done(worker)
    folder = os.path.join(out, f"frames-{len(devices)}-workers")
    shares = frame_ranges.interleave_batches([[0, frames - 1]], batch_size, len(devices))
    start = time.perf_counter()
    for worker, device, share in zip(workers, devices, shares):
        request(worker, id=2, device=device, out=folder, frames=share)
    for worker in workers[:len(shares)]:
        wait_done(worker)
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.stdin.write(json.dumps({"command": "quit"}) + "\n")
        worker.stdin.flush()
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
    print(f"workers: {args.frames} frames, batch {batch_size}, {args.size}x{args.size}, on {described}")
    folders = {}
    for count in (1, 2):
        seconds, folders[count] = workers_render(sd_folder, tiny_vae, args.size, args.frames, batch_size,
                                                 devices[:count], work)
        print(f"{count} worker{'s' if count > 1 else ' '} ({','.join(devices[:count])}): "
              f"{args.frames / seconds:8.2f} frames/s")
    same = all(open(os.path.join(folders[1], name), "rb").read() == open(os.path.join(folders[2], name), "rb").read()
               for name in sorted(os.listdir(folders[1])) if name.endswith(".png"))
    print(f"frames of 2 workers byte-identical to 1 worker: {'yes' if same else 'NO'}")


def full_render(sd_folder, tiny_vae, size, frames, batch_size, device_name, out):
    from blender_latentwalk.engine import render

    biggan_folder = random_biggan(out)
    plan = bench_plan(frames)
    settings = render.Img2ImgSettings(model=sd_folder, width=size, height=size, tiny_vae=tiny_vae or "")
    models = render.Models()
    render.render(plan, biggan_folder, settings, os.path.join(out, "warm"), range(min(frames, batch_size)),
                  batch_size, device_name, models=models)  # loads and warms up
    start = time.perf_counter()
    result = render.render(plan, biggan_folder, settings, os.path.join(out, "frames"), None, batch_size,
                           device_name, models=models)
    return len(result.rendered) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--unet", default="small", choices=("small", "sd-turbo"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--strength", type=float, default=0.5)
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
              for _ in range(args.frames)]
    generator_device = "cpu" if device.type == "mps" else device
    described = (torch.cuda.get_device_name(device) if device.type == "cuda"
                 else f"{torch.get_num_threads()} threads")
    print(f"img2img {args.unet} UNet (random weights), {args.size}x{args.size}, {args.frames} frames, "
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
    print(f"{'per-frame loop (one call a frame)':36s} {args.frames / best['loop']:8.2f} frames/s")
    for batch_size in batch_sizes:
        print(f"{f'engine (batch {batch_size})':36s} {args.frames / best[batch_size]:8.2f} frames/s  "
              f"{best['loop'] / best[batch_size]:5.2f}x  max pixel difference {differences[batch_size]}")
    if args.full:
        del pipeline
        fps = full_render(sd_folder, tiny_vae, args.size, args.frames, max(batch_sizes), args.device, work)
        print(f"full render (biggan-deep-256 + img2img + PNG, batch {max(batch_sizes)}): {fps:.2f} frames/s = "
              f"{fps / args.fps:.2f}x the song's {args.fps:g} fps")


if __name__ == "__main__":
    main()
