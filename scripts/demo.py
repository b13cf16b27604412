"""The demo: synthesise a song, bake it, render the latent walk, encode the video.

    scripts/demo.sh            (sets up .venv, then runs this)

Leaves out/demo/demo.mp4 (H.264 + AAC: the video with the song), out/demo/frames/
(the PNG frames and their manifest), out/demo/song.wav and out/demo/demo.blend (the
curves, the prompt markers and both strips on the sequencer; open it in Blender).
Pretrained weights are used when they are on this machine: BigGAN in
pytorch-pretrained-biggan's cache, Stable Diffusion (stabilityai/sd-turbo) in the
Hugging Face cache. Otherwise the demo says so and uses untrained tiny stand-ins,
whose pictures are noise; every step around them is the real one.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from demo_song import synthesise_song  # noqa: E402

OUT = os.path.join(ROOT, "out", "demo")
SECONDS, FPS, SIZE = 16.0, 24, "512x288"


def models_for_demo():
    """(biggan, sd): the pretrained models where they are on disk, else the tiny stand-ins, said plainly."""
    from blender_latentwalk.engine import LatentWalkError
    from blender_latentwalk.engine.generators import biggan
    from blender_latentwalk.engine.diffusion import img2img

    stand_ins = os.path.join(OUT, "models")
    try:
        biggan.resolve("biggan-deep-256")
        biggan_model = "biggan-deep-256"
    except LatentWalkError as error:
        print(f"note: {error}")
        print("note: the demo uses an UNTRAINED tiny BigGAN stand-in instead: its frames are noise.")
        biggan_model = biggan.make_tiny_model(os.path.join(stand_ins, "biggan-tiny-UNTRAINED"))
    sd_model = img2img.DEFAULT_MODEL
    if not img2img.is_available(sd_model):
        print(f"note: Stable Diffusion '{sd_model}' is not in the Hugging Face cache (no network here).")
        print("note: the demo uses an UNTRAINED tiny Stable Diffusion stand-in instead: its frames are noise.")
        sd_model = img2img.make_tiny_pipeline(os.path.join(stand_ins, "sd-tiny-UNTRAINED"))
    return biggan_model, sd_model


def main():
    os.makedirs(OUT, exist_ok=True)
    song = os.path.join(OUT, "song.wav")
    synthesise_song(song, seconds=SECONDS)
    print(f"demo song: {song} ({SECONDS:g} s: kick, bass, chords, hats)")
    biggan_model, sd_model = models_for_demo()
    video = os.path.join(OUT, "demo.mp4")
    half = int(SECONDS * FPS / 2) + 1
    command = [sys.executable, os.path.join(HERE, "render.py"), "--", "--audio", song, "--fps", str(FPS),
               "--size", SIZE, "--biggan", biggan_model, "--sd", sd_model, "--output", os.path.join(OUT, "frames"),
               "--prompt", "an oil painting of a stormy sea, vivid colours",
               "--prompt-change", f"{half}:an oil painting of a volcano at night, glowing lava",
               "--encode", video, "--save", os.path.join(OUT, "demo.blend")]
    result = subprocess.run(command, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(f"the video: {os.path.relpath(video, ROOT)}")
    print(f"open the project: blender {os.path.relpath(os.path.join(OUT, 'demo.blend'), ROOT)}  "
          "(Sequencer or Graph Editor sidebar, N > Latent Walk)")


if __name__ == "__main__":
    main()
