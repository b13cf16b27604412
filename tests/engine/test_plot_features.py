"""docs/features.png, shown in the README, is what scripts/plot_features.py draws of the analysis now."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from plot_features import DEFAULT_OUT, DEFAULT_STRUCTURE_OUT, plot, plot_structure  # noqa: E402


def test_the_committed_features_picture_is_what_the_script_draws(tmp_path):
    fresh = plot(str(tmp_path / "features.png"))
    with Image.open(fresh) as new, Image.open(DEFAULT_OUT) as committed:
        assert new.size == committed.size, "docs/features.png is out of date: run scripts/plot_features.py"
        difference = np.abs(np.asarray(new.convert("RGB"), np.int16) - np.asarray(committed.convert("RGB"), np.int16))
    assert difference.max() == 0, "docs/features.png is out of date: run .venv/bin/python scripts/plot_features.py"


def test_the_committed_structure_picture_is_what_the_script_draws(tmp_path):
    fresh = plot_structure(str(tmp_path / "structure.png"))
    with Image.open(fresh) as new, Image.open(DEFAULT_STRUCTURE_OUT) as committed:
        assert new.size == committed.size, "docs/structure.png is out of date: run scripts/plot_features.py"
        difference = np.abs(np.asarray(new.convert("RGB"), np.int16) - np.asarray(committed.convert("RGB"), np.int16))
    assert difference.max() == 0, "docs/structure.png is out of date: run .venv/bin/python scripts/plot_features.py"
