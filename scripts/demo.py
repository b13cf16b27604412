"""The demo: synthesise a song, bake it into curves, preview the BigGAN walk, save a .blend.

    scripts/demo.sh            (sets up .venv, then runs this)

Leaves out/demo/song.wav, out/demo/preview/frame_*.png and out/demo/demo.blend (the
song and the preview on the sequencer). The img2img render and the encoded video
come with the render issue. Pretrained BigGAN weights are used when they are in
pytorch-pretrained-biggan's cache; otherwise the demo says so and uses an
untrained tiny stand-in, whose frames are noise.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from demo_song import synthesise_song  # noqa: E402

OUT = os.path.join(ROOT, "out", "demo")


def biggan_for_demo(name="biggan-deep-256"):
    """The pretrained model if it is cached, else the tiny stand-in, said plainly."""
    sys.path.insert(0, ROOT)
    from blender_latentwalk.engine import LatentWalkError, biggan

    try:
        biggan.resolve(name)
        return name
    except LatentWalkError as error:
        print(f"note: {error}")
        print("note: the demo continues with an UNTRAINED tiny BigGAN stand-in: its frames are noise, "
              "but every step (curves, walk, preview, sequencer) is the real one.")
        return biggan.make_tiny_model(os.path.join(OUT, "models", "biggan-tiny-UNTRAINED"))


def main():
    os.makedirs(OUT, exist_ok=True)
    song = os.path.join(OUT, "song.wav")
    blend = os.path.join(OUT, "demo.blend")
    synthesise_song(song, seconds=20.0)
    print(f"demo song: {song}")
    model = biggan_for_demo()
    command = [sys.executable, os.path.join(HERE, "bake.py"), "--", "--audio", song, "--fps", "30",
               "--beat-markers", "--preview", "--biggan", model, "--preview-folder",
               os.path.join(OUT, "preview"), "--save", blend]
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(f"curves: scene.latentwalk.* in {blend} (Graph Editor group 'Latent Walk')")
    print(f"open it: blender {os.path.relpath(blend, ROOT)}  then Sequencer or Graph Editor sidebar (N) > Latent Walk")


if __name__ == "__main__":
    main()
