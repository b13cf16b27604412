"""docs/architecture.png, shown in docs/architecture.md, is what scripts/draw_architecture.py draws of the
code now: the engine's stage folders with the first line of their __init__ docstring and their "May
import:" lines as arrows, beside the data flow from the song to the video."""

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from draw_architecture import DEFAULT_OUT, ENGINE, ROOT, draw, named_paths, stages  # noqa: E402

OUT_OF_DATE = "docs/architecture.png is out of date: run .venv/bin/python scripts/draw_architecture.py"


def _pixels(path):
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), np.int16)


def test_the_committed_architecture_picture_is_what_the_script_draws(tmp_path):
    fresh, committed = _pixels(draw(str(tmp_path / "architecture.png"))), _pixels(DEFAULT_OUT)
    assert fresh.shape == committed.shape, OUT_OF_DATE
    assert np.abs(fresh - committed).max() == 0, OUT_OF_DATE


def test_every_folder_and_file_the_picture_names_exists():
    missing = [path for path in named_paths() if not os.path.exists(os.path.join(ROOT, path))]
    assert missing == [], f"scripts/draw_architecture.py names {missing}, which are not in the repository"


def test_a_new_stage_folder_shows_up_without_editing_the_script(tmp_path):
    engine = tmp_path / "engine"
    for name, _, _ in stages():
        (engine / name).mkdir(parents=True)
        shutil.copy(os.path.join(ENGINE, name, "__init__.py"), engine / name / "__init__.py")
    (engine / "upscaling").mkdir()
    (engine / "upscaling" / "__init__.py").write_text(
        '"""Upscaling: frames in, larger frames out.\n\nMay import: imaging, diffusion.\n"""\n')
    assert ("upscaling", "Upscaling: frames in, larger frames out.", ["imaging", "diffusion"]) in stages(str(engine))
    before = _pixels(draw(str(tmp_path / "before.png")))
    after = _pixels(draw(str(tmp_path / "after.png"), engine=str(engine)))
    assert after.shape[0] > before.shape[0]  # one more box: a taller picture
