"""The demo: synthesise a song, bake it into Latent Walk curves, save a .blend.

    scripts/demo.sh            (sets up .venv, then runs this)

Leaves out/demo/song.wav and out/demo/demo.blend. Rendering the video comes with
the render issue; for now the demo stops after the bake.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from demo_song import synthesise_song  # noqa: E402

OUT = os.path.join(ROOT, "out", "demo")


def main():
    os.makedirs(OUT, exist_ok=True)
    song = os.path.join(OUT, "song.wav")
    blend = os.path.join(OUT, "demo.blend")
    synthesise_song(song, seconds=20.0)
    print(f"demo song: {song}")
    command = [sys.executable, os.path.join(HERE, "bake.py"), "--", "--audio", song, "--fps", "30",
               "--beat-markers", "--save", blend]
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(f"curves: scene.latentwalk.* in {blend} (Graph Editor group 'Latent Walk')")
    print(f"open it: blender {os.path.relpath(blend, ROOT)}  then Sequencer or Graph Editor sidebar (N) > Latent Walk")


if __name__ == "__main__":
    main()
