"""Benchmark: the engine's BigGAN rendering vs a deep-music-visualizer-style loop.

    .venv/bin/python scripts/bench_biggan.py [--size 256] [--frame-count 30] [--device auto]
                                             [--batch-sizes 8,16] [--half auto]

Both render the same frames (the same noise, classes and one truncation) from the
full-size biggan-deep architecture with random weights (its compute is the real
compute; pretrained weights cannot be downloaded here). The reference does it as
deep-music-visualizer does: the model as loaded, fp32, batches of 30, torch.no_grad.
The engine folds spectral norm, trims the RGB conv to 3 channels, uses
inference_mode, and fp16 on a GPU. Prints frames/s of each, the ratio and the
largest pixel difference (fp32 runs must agree to rounding). Not a test.
"""

import argparse
import copy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmarking import timed  # noqa: E402

from blender_latentwalk.engine.generators import biggan  # noqa: E402


def reference_loop(model, z, classes, truncation, device):
    """deep-music-visualizer's loop: batches of 30, fp32, the untouched model."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(z), 30):
            noise = torch.from_numpy(z[start:start + 30]).to(device)
            label = torch.from_numpy(classes[start:start + 30]).to(device)
            output = model(noise, label, truncation)
            outputs.append(((output.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
    return torch.cat(outputs)


def engine_loop(model, device, dtype, z, classes, truncation, batch_size):
    images = biggan.generate(model, device, dtype, z, classes, np.full(len(z), truncation),
                             range(len(z)), batch_size=batch_size)
    return np.stack([image for _, image in images])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256, choices=(128, 256, 512))
    parser.add_argument("--frame-count", type=int, default=30, help="how many frames to generate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="30")
    parser.add_argument("--half", default="auto", choices=("auto", "yes", "no"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = biggan.pick_device(args.device)
    reference = biggan.untrained_model(biggan.architecture(args.size)).to(device)
    rng = np.random.default_rng(0)
    z = (0.4 * np.clip(rng.standard_normal((args.frame_count, 128)), -2, 2)).astype(np.float32)
    classes = np.zeros((args.frame_count, 1000), np.float32)
    classes[np.arange(args.frame_count), rng.integers(0, 1000, args.frame_count)] = 1.0
    truncation = 0.4

    reference_loop(reference, z[:2], classes[:2], truncation, device)  # warm-up
    print(f"biggan-deep-{args.size} (random weights), {args.frame_count} frames, device {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})")
    halves = {"auto": [False, True] if device.type == "cuda" else [False], "yes": [True], "no": [False]}[args.half]
    engines = []
    for half in halves:
        dtype = torch.float16 if half else torch.float32
        model = biggan.prepare_for_inference(copy.deepcopy(reference)).to(device=device, dtype=dtype)
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            engines.append((f"engine ({'fp16' if half else 'fp32'}, batch {batch_size:3d})", model, dtype, batch_size))

    # Interleaved rounds, best of each: the machine's other load hits all alike.
    best = {}
    for _ in range(args.repeats):
        expected, seconds = timed(reference_loop, device, reference, z, classes, truncation, device)
        best["reference"] = min(best.get("reference", float("inf")), seconds)
        expected = expected.permute(0, 2, 3, 1).numpy()
        for name, model, dtype, batch_size in engines:
            images, seconds = timed(engine_loop, device, model, device, dtype, z, classes, truncation, batch_size)
            best[name] = min(best.get(name, float("inf")), seconds)
            difference = int(np.abs(images.astype(int) - expected.astype(int)).max())
            best[name + " diff"] = difference
    print(f"{'reference (fp32, batch 30, full conv)':40s} {args.frame_count / best['reference']:8.2f} frames/s")
    for name, *_ in engines:
        print(f"{name:40s} {args.frame_count / best[name]:8.2f} frames/s  {best['reference'] / best[name]:6.2f}x  "
              f"max pixel difference {best[name + ' diff']}")


if __name__ == "__main__":
    main()
