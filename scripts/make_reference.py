"""Write docs/parameters.md, the parameter reference, from the add-on's property definitions.

    .venv/bin/python scripts/make_reference.py [--check]

Every setting on ``scene.latentwalk`` (and its walk, render and band groups): name, Python
path, type, default, range, unit, whether it can be animated, and its description, read
from Blender's RNA after registering the add-on, so the reference cannot drift from the
code. ``--check`` exits 1 when the committed file differs (tests/addon/test_reference.py).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
REFERENCE = os.path.join(ROOT, "docs", "parameters.md")

# (heading, PropertyGroup class name in blender/properties.py, Python path of one instance)
GROUPS = (
    ("Song and bake", "LatentWalkSettings", "scene.latentwalk"),
    ("Bands", "LatentWalkBand", "scene.latentwalk.bands[i]"),
    ("Chroma", "LatentWalkPitch", "scene.latentwalk.chroma[i]"),
    ("Walk", "LatentWalkWalk", "scene.latentwalk.walk"),
    ("Render (img2img)", "LatentWalkDiffusion", "scene.latentwalk.diffusion"),
    ("Modulation", "LatentWalkModulation", "scene.latentwalk.modulations[i]"),
    ("Section looks", "LatentWalkSectionLook", "scene.latentwalk.section_looks[i]"),
)
UNITS = (("_ms", "ms"), ("_hz", "Hz"), ("_s", "s"))


def _value(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f"`{value}`" if value else "(empty)"
    return f"`{value}`"


def _row(prop, path, sampled):
    kind = {"FLOAT": "number", "INT": "whole number", "BOOLEAN": "on/off", "STRING": "text", "ENUM": "choice",
            "COLLECTION": "list", "POINTER": "group"}[prop.type]
    default, limits = "", ""
    if prop.type in ("FLOAT", "INT"):
        default = _value(prop.default)
        low = prop.hard_min if -1e30 < prop.hard_min and prop.hard_min > -2**31 else prop.soft_min
        high = prop.hard_max if prop.hard_max < 1e30 and prop.hard_max < 2**31 - 1 else prop.soft_max
        limits = " .. ".join("" if abs(v) >= 2**31 - 1 else _value(v) for v in (low, high))
    elif prop.type in ("BOOLEAN", "STRING"):
        default = _value(prop.default)
    elif prop.type == "ENUM":
        default = _value(prop.default)
        limits = ", ".join(f"`{item.identifier}`" for item in prop.enum_items)
    unit = next((unit for suffix, unit in UNITS if prop.identifier.endswith(suffix)), "")
    animatable = "every frame" if prop.identifier in sampled else ""
    description = " ".join(prop.description.split()).replace("|", "/")
    return (f"| {prop.name or prop.identifier} | `{path}.{prop.identifier}` | {kind} | {default} | {limits} | "
            f"{unit} | {animatable} | {description} |")


def _listed(prop):
    """Settings an artist sets (not the collections themselves, list cursors or bookkeeping)."""
    return not (prop.identifier in ("rna_type", "name") or prop.identifier.startswith("active_") or prop.is_hidden
                or prop.type in ("POINTER", "COLLECTION"))


def reference_text():
    """The whole reference as Markdown (registers the add-on in this Python's bpy)."""
    import bpy

    if not hasattr(bpy.types.Scene, "latentwalk"):
        import blender_latentwalk

        blender_latentwalk.register()
    from blender_latentwalk.blender import properties, sampling
    lines = ["# Parameter reference", "",
             "Written by `scripts/make_reference.py` from the add-on's property definitions; "
             "`tests/addon/test_reference.py` fails when it is out of date. *Sampled*: the render reads the "
             "setting on every frame (keys, modifiers and drivers count), so animate it to change it over the "
             "song; the other settings hold for the whole bake or render.", ""]
    for heading, struct, path in GROUPS:
        rna = getattr(properties, struct).bl_rna
        lines += [f"## {heading}", "", "| setting | Python path | type | default | range | unit | sampled | what it does |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        sampled = sampling.SAMPLED_PER_FRAME.get(struct, ())
        lines += [_row(prop, path, sampled) for prop in rna.properties if _listed(prop)]
        lines.append("")
    return "\n".join(lines)


def main():
    text = reference_text()
    if "--check" in sys.argv:
        with open(REFERENCE, encoding="utf-8") as stream:
            if stream.read() != text:
                sys.exit(f"error: {REFERENCE} is out of date: run .venv/bin/python scripts/make_reference.py")
        print(f"{REFERENCE} is current")
        return
    os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
    with open(REFERENCE, "w", encoding="utf-8") as stream:
        stream.write(text)
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
