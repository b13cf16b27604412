"""Picture the architecture: what flows from the song to the video, and the engine's stages.

    .venv/bin/python scripts/draw_architecture.py [--out docs/architecture.png]

Left: the data a frame goes through (song, features, curves, plan, latents, frames, video), each
arrow labelled with the folder that does it and the process it runs in (the table `FLOW` below).
Right: the engine's stage folders, read from the code: every folder of blender_latentwalk/engine/
with an ``__init__.py`` is a box holding the first line of that docstring, and its "May import:"
line gives the arrows (the rule tests/test_layout.py enforces). A new stage folder shows up here
without editing this script. tests/engine/test_architecture_picture.py fails when the committed
docs/architecture.png is not what this script draws now.
"""

import argparse
import ast
import os
import re
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "blender_latentwalk", "engine")
DEFAULT_OUT = os.path.join(ROOT, "docs", "architecture.png")

# Where each step runs: (label, fill colour).
PROCESSES = {
    "blender": ("Blender (bpy)", "#cfe2f3"),
    "cli": ("an analysis worker (UI), the engine CLI or Blender's Python", "#d9ead3"),
    "worker": ("worker process", "#fce5cd"),
}

# The data flow: data, what it is; then the step to the next data: folders (paths from the
# repository's blender_latentwalk/), what they do, and the process they run in.
FLOW = [
    ("song", "a sound file (+ stem files)"),
    (("engine/analysis/",), "analyse: bands, onset, loudness, chroma, beats", "cli"),
    ("features", "one value per video frame (.npz)"),
    (("blender/",), "bake into F-curves (operators.py, curves.py)", "blender"),
    ("curves", "F-curves on scene.latentwalk.*, edited by hand"),
    (("blender/",), "sample every animated value (sampling.py)", "blender"),
    ("plan", "RenderPlan: arrays per frame, settings, seed (plan.npz)"),
    (("engine/walk/",), "walk: noise and class vectors, truncation", "worker"),
    ("latents", "generator inputs per frame"),
    (("engine/generators/", "engine/diffusion/", "engine/render/"),
     "BigGAN, img2img, PNG files and manifest.json", "worker"),
    ("frames", "frame_000001.png ... and their keys"),
    (("blender/",), "check the frames, strip above the song, FFmpeg (encode.py, sequencer.py)", "blender"),
    ("video", "MP4: H.264 + AAC, the song"),
]

FOOTER = (
    "Processes: Blender talks to the worker process in typed, versioned messages (engine/worker/; in the "
    "UI the bake's analysis runs in a worker of its own), and runs the engine CLI for the analysis of "
    "scripts and the frame status (engine/cli.py); Set Up Render "
    "Environment runs engine/setup/ in a process of its own. Headless, scripts/render.py runs the same blender/ "
    "code in \"blender -b\". The engine never imports bpy; each stage "
    "imports only what its \"May import:\" line says, plus engine/errors.py and engine/atomic.py "
    "(tests/test_layout.py)."
)

FONT = 9
LINE_IN = FONT * 1.3 / 72  # one line of text, in inches
WIDTH_IN, MARGIN = 15.0, 0.35
WRAP = 64  # characters a line of a stage box
PILL_W, PILL_H, STEP_H = 1.45, 0.34, 0.62  # the data flow: a datum's box, an arrow's length (inches)


def stages(engine=ENGINE):
    """[(name, first docstring line, [stages it may import])] for every stage folder, sorted by name."""
    found = []
    for name in sorted(os.listdir(engine)):
        init = os.path.join(engine, name, "__init__.py")
        if not os.path.isfile(init):
            continue
        with open(init, encoding="utf-8") as file:
            docstring = ast.get_docstring(ast.parse(file.read(), init)) or ""
        match = re.search(r"^May import:(.*)$", docstring, re.M)
        listed = match.group(1).strip().rstrip(".") if match else ""
        imports = [] if listed in ("", "nothing else") else [part.strip() for part in listed.split(",")]
        found.append((name, docstring.strip().splitlines()[0] if docstring.strip() else "", imports))
    return found


def stage_order(found):
    """Stages top to bottom: a stage above everything it may import, neighbours kept close."""
    imports = {name: [i for i in allowed if i != name] for name, _, allowed in found}
    depth = {}

    def depth_of(name, seen=()):
        if name not in depth:
            below = [depth_of(i, seen + (name,)) for i in imports.get(name, []) if i in imports and i not in seen]
            depth[name] = 1 + max(below, default=-1)
        return depth[name]

    layers = {}
    for name in imports:
        layers.setdefault(depth_of(name), []).append(name)
    order = []
    for level in sorted(layers, reverse=True):
        def closeness(name):
            above = [order.index(o) for o in order if name in imports[o]]
            return (0, sum(above) / len(above), name) if above else (1, 0, name)

        order += sorted(layers[level], key=closeness)
    return order, imports


def _box(axis, x, y, width, height, colour, style="round,pad=0,rounding_size=0.08"):
    from matplotlib.patches import FancyBboxPatch

    axis.add_patch(FancyBboxPatch((x, y), width, height, boxstyle=style, facecolor=colour,
                                  edgecolor="0.3", linewidth=0.8))


def _width(axis, text):
    """How wide a drawn text is, in inches (the figure's renderer measures it: the same on every run)."""
    figure = axis.figure
    return text.get_window_extent(figure.canvas.get_renderer()).width / figure.dpi


def _draw_flow(axis, left, top):
    """The data chain, top to bottom, from `top` down; returns the lowest y used."""
    pill_w, pill_h, step_h = PILL_W, PILL_H, STEP_H
    label_x = left + pill_w / 2 + 0.25
    y = top
    for entry in FLOW:
        if len(entry) == 2:
            data, what = entry
            _box(axis, left, y - pill_h, pill_w, pill_h, "white", "round,pad=0,rounding_size=0.15")
            axis.text(left + pill_w / 2, y - pill_h / 2, data, ha="center", va="center", fontsize=FONT + 2,
                      weight="bold")
            axis.text(left + pill_w + 0.15, y - pill_h / 2, what, ha="left", va="center", fontsize=FONT,
                      color="0.25", style="italic")
            y -= pill_h
        else:
            folders, does, process = entry
            axis.annotate("", xy=(left + pill_w / 2, y - step_h), xytext=(left + pill_w / 2, y),
                          arrowprops=dict(arrowstyle="-|>", color="0.2", linewidth=1.2, shrinkA=1, shrinkB=1))
            texts = [axis.text(label_x + 0.1, y - step_h / 2 + LINE_IN / 2, ", ".join(folders), ha="left",
                               va="center", fontsize=FONT, weight="bold", family="monospace", zorder=3),
                     axis.text(label_x + 0.1, y - step_h / 2 - LINE_IN / 2, does, ha="left", va="center",
                               fontsize=FONT, zorder=3)]
            text_h = 2 * LINE_IN + 0.1
            _box(axis, label_x, y - step_h / 2 - text_h / 2, 0.2 + max(_width(axis, t) for t in texts), text_h,
                 PROCESSES[process][1])
            y -= step_h
    return y


def _stage_boxes(found, order):
    """{stage: (offset of its top below the first box's top, height, text lines)}."""
    first_line = {name: line for name, line, _ in found}
    boxes, offset = {}, 0.0
    for name in order:
        lines = textwrap.wrap(first_line[name], WRAP) or [""]
        height = (len(lines) + 1) * LINE_IN + 0.16
        boxes[name] = (offset, height, lines)
        offset += height + 0.2
    return boxes


def _lanes(edges, row):
    """A lane (0 = nearest the boxes) per edge, so that no two edges share a vertical stretch."""
    lanes, taken = {}, []
    for edge in sorted(edges, key=lambda e: (abs(row[e[0]] - row[e[1]]), row[e[0]], row[e[1]])):
        low, high = sorted((row[edge[0]], row[edge[1]]))
        lane = 0
        while any(low <= end and start <= high for (start, end, used) in taken if used == lane):
            lane += 1
        taken.append((low, high, lane))
        lanes[edge] = lane
    return lanes


def _ports(boxes, edges, lanes, row):
    """Where each edge leaves and enters its boxes' right sides: inner lanes nearest the turn."""
    ends = {name: [] for name in boxes}
    for edge in edges:
        source, target = edge
        ends[source].append((edge, "out", row[target] > row[source]))
        ends[target].append((edge, "in", row[source] > row[target]))
    ports = {}
    for name, attached in ends.items():
        bottom, height, _ = boxes[name]
        up = sorted((e for e in attached if not e[2]), key=lambda e: lanes[e[0]])
        down = sorted((e for e in attached if e[2]), key=lambda e: -lanes[e[0]])
        for index, (edge, end, _) in enumerate(up + down):
            ports[edge, end] = bottom + height - height * (index + 1) / (len(attached) + 1)
    return ports


def _draw_stages(axis, left, top, engine):
    """The stage boxes, stacked from `top` down, and their "May import:" arrows on the right."""
    found = stages(engine)
    order, imports = stage_order(found)
    boxes = _stage_boxes(found, order)
    texts = []
    for name in order:
        y = top - boxes[name][0]
        texts += [axis.text(left + 0.1, y - 0.07, f"engine/{name}/", ha="left", va="top", fontsize=FONT + 1,
                            weight="bold", family="monospace", zorder=3),
                  axis.text(left + 0.1, y - 0.07 - LINE_IN * 1.05, "\n".join(boxes[name][2]), ha="left", va="top",
                            fontsize=FONT, linespacing=1.3, zorder=3)]
    width = 0.25 + max(_width(axis, text) for text in texts)
    boxes = {name: (top - offset - height, height, lines) for name, (offset, height, lines) in boxes.items()}
    for name in order:
        bottom, height, _ = boxes[name]
        _box(axis, left, bottom, width, height, "#f3f3f3")
    row = {name: index for index, name in enumerate(order)}
    edges = [(name, target) for name in order for target in imports[name] if target in row]
    lanes = _lanes(edges, row)
    ports = _ports(boxes, edges, lanes, row)
    for edge in edges:
        x_turn = left + width + 0.2 + 0.17 * lanes[edge]
        y_from, y_to = ports[edge, "out"], ports[edge, "in"]
        axis.plot([left + width, x_turn, x_turn], [y_from, y_from, y_to], color="0.35", linewidth=0.9,
                  solid_capstyle="butt")
        axis.annotate("", xy=(left + width, y_to), xytext=(x_turn, y_to),
                      arrowprops=dict(arrowstyle="-|>", color="0.35", linewidth=0.9, shrinkA=0, shrinkB=0))
    right = left + width + 0.2 + 0.17 * max(lanes.values(), default=0)
    return min(bottom for bottom, _, _ in boxes.values()), right


def _layout_height(engine):
    steps = sum(1 for entry in FLOW if len(entry) == 3)
    flow_h = (len(FLOW) - steps) * PILL_H + steps * STEP_H
    found = stages(engine)
    stage_h = sum((len(textwrap.wrap(line, WRAP) or [""]) + 1) * LINE_IN + 0.16 + 0.2 for _, line, _ in found) - 0.2
    return 0.85 + max(flow_h, stage_h) + 0.5 + len(_footer_lines()) * LINE_IN * 1.3 + 0.2


def _footer_lines():
    return textwrap.wrap(FOOTER, 170)


def draw(out, engine=ENGINE):
    """Draw the picture into `out` (a PNG), with the stages of the engine folder `engine`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    height = _layout_height(engine)
    figure = plt.figure(figsize=(WIDTH_IN, height), dpi=100)
    axis = figure.add_axes([0, 0, 1, 1])
    axis.set_xlim(0, WIDTH_IN)
    axis.set_ylim(0, height)
    axis.axis("off")
    top = height - 0.85
    axis.text(MARGIN, height - 0.3, "blender_latentwalk: the folders and what flows between them",
              ha="left", va="center", fontsize=FONT + 5, weight="bold")
    axis.text(MARGIN, top + 0.2, "What flows (arrows: the folder that does it, coloured by process)",
              ha="left", va="bottom", fontsize=FONT + 1, color="0.2")
    stages_left = 7.9
    header = axis.text(stages_left, top + 0.2, "The engine's stages (first line of each __init__; an arrow points to a "
                       "stage it may import)", ha="left", va="bottom", fontsize=FONT + 1, color="0.2")
    low, right = _draw_stages(axis, stages_left, top, engine)
    low = min(low, _draw_flow(axis, MARGIN, top))
    handles = [Patch(facecolor=colour, edgecolor="0.3", label=label) for label, colour in PROCESSES.values()]
    axis.legend(handles=handles, loc="lower left", bbox_to_anchor=(MARGIN - 0.1, low - 0.45),
                bbox_transform=axis.transData, ncol=3, frameon=False, fontsize=FONT, handlelength=1.5)
    axis.text(MARGIN, low - 0.5, "\n".join(_footer_lines()), ha="left", va="top", fontsize=FONT,
              color="0.2", linespacing=1.3)
    width = max(right, stages_left + _width(axis, header)) + MARGIN  # the stages' arrows, or their heading
    figure.set_size_inches(width, height)
    axis.set_xlim(0, width)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return out


def named_paths():
    """Every folder and file the picture names, from the repository root (the test checks they exist)."""
    named = []
    for entry in FLOW:
        if len(entry) == 3:
            folders, does, _ = entry
            named += list(folders) + [folders[0] + name for name in re.findall(r"\b([a-z_]+\.py)\b", does)]
    named += re.findall(r"\b((?:engine|blender|scripts|tests)/[a-z_/]*(?:\.py)?)", FOOTER)
    in_package = ("engine/", "blender/")
    return sorted({os.path.join("blender_latentwalk", p) if p.startswith(in_package) else p for p in named})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    print(draw(parser.parse_args().out))


if __name__ == "__main__":
    main()
