"""docs/features.png and docs/structure.png, shown in the README, are what scripts/plot_features.py draws of the analysis now."""

import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from plot_features import DEFAULT_OUT, DEFAULT_STRUCTURE_OUT, plot, plot_structure  # noqa: E402


def assert_same_picture(fresh, committed):
    name = os.path.relpath(committed, os.path.dirname(os.path.dirname(committed)))
    with Image.open(fresh) as new, Image.open(committed) as old:
        assert new.size == old.size, f"{name} is out of date: run scripts/plot_features.py"
        difference = np.abs(np.asarray(new.convert("RGB"), np.int16) - np.asarray(old.convert("RGB"), np.int16))
    assert difference.max() == 0, f"{name} is out of date: run .venv/bin/python scripts/plot_features.py"


def test_the_committed_features_picture_is_what_the_script_draws(tmp_path):
    assert_same_picture(plot(str(tmp_path / "features.png")), DEFAULT_OUT)


def test_the_committed_structure_picture_is_what_the_script_draws(tmp_path):
    assert_same_picture(plot_structure(str(tmp_path / "structure.png")), DEFAULT_STRUCTURE_OUT)
