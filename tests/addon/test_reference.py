"""docs/parameters.md is what scripts/make_reference.py makes of the property definitions now."""

import os

from make_reference import REFERENCE, reference_text


def test_the_committed_parameter_reference_is_current(addon):
    with open(REFERENCE, encoding="utf-8") as stream:
        committed = stream.read()
    assert committed == reference_text(), (
        f"{os.path.relpath(REFERENCE)} is out of date: run .venv/bin/python scripts/make_reference.py")
