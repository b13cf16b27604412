"""Frame lists as text: ``1-240``, ``7``, and the chunks a farm's frame chunker makes, which
may be non-contiguous (``1-3,5``, ``10-19,25``; Blender's ``10..19`` is read too).

One parser for the headless script (Blender frames) and the engine CLI (plan indices), so
both read a chunk the same way; ranges are kept as ``[[first, last], ...]`` (inclusive) so a
long song is never spelled out frame by frame.
"""

import re

from ..errors import LatentWalkError

EXAMPLE = "e.g. 1-240, or 1-3,5 for a chunk with a gap"
_PART = re.compile(r"\s*(\d+)\s*(?:(?:-|\.\.)\s*(\d+)\s*)?")  # digits only: int() would read '1_120' as 1120


def to_ranges(numbers):
    """[[first, last], ...] of sorted whole numbers (inclusive ranges), duplicates merged."""
    ranges = []
    for number in sorted(set(int(n) for n in numbers)):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ranges


def describe(ranges):
    """'1-3, 5' for [[1, 3], [5, 5]] (messages)."""
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges)


def format_ranges(ranges):
    """'1-3,5' for [[1, 3], [5, 5]]: the form `parse` reads back (command lines)."""
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges)


def parse(text, what="--frames", unit="frame"):
    """'A-B', 'A', or comma-separated parts of those -> merged [[first, last], ...] in order.

    Overlapping parts count once. Raises `LatentWalkError` naming the part that is wrong. ``what`` names
    the flag, ``unit`` what a number is ("frame": a Blender frame; "index": a 0-based plan index).
    """
    parts = str(text).split(",")
    ranges = []
    for part in parts:
        if not part.strip():
            raise LatentWalkError(f"{what} '{text}' has an empty part between commas ({EXAMPLE}).")
        match = _PART.fullmatch(part)
        if match is None:
            raise LatentWalkError(f"{what} '{text}': '{part.strip()}' is not {'an' if unit[0] in 'aeiou' else 'a'} {unit} or a range A-B ({EXAMPLE}).")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise LatentWalkError(f"{what} '{text}': '{part.strip()}' ends before it starts.")
        ranges.append([first, last])
    merged = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


def check_inside(ranges, low, high, text, what="--frames", inside="the plan's", unit="frame"):
    """Raise `LatentWalkError` unless every range lies in low..high, naming the first part outside."""
    for first, last in ranges:
        if first < low or last > high:
            bad = first if first < low else last
            raise LatentWalkError(f"{what} '{text}': {unit} {bad} is outside {inside} {low}-{high}.")


def numbers(ranges):
    """Every whole number of the ranges, in order (a range object per range, chained)."""
    return [n for first, last in ranges for n in range(first, last + 1)]


CPU_BATCH_SIZE, GPU_BATCH_SIZE = 4, 16


def default_batch_size(devices):
    """Batch Size 0's value for ``devices`` ("cpu", "cuda:1", ...): 4 when they are all the CPU, else 16.

    A GPU needs batches to be busy. On a CPU batch 1 and batch 4 measured alike with full-size models,
    and batch 4 faster with the tiny stand-ins (docs/performance.md), so the CPU keeps 4.
    """
    return CPU_BATCH_SIZE if all(str(device).split(":")[0] == "cpu" for device in devices) else GPU_BATCH_SIZE


def interleave_batches(ranges, batch_size, count):
    """Deal the frames of ``ranges`` out to ``count`` workers in whole aligned batches, in turn
    (batch k = frames k * batch_size ... k * batch_size + batch_size - 1 goes to worker k % count),
    so every worker works along the whole range and computes each frame inside its own batch.

    Returns one [[first, last], ...] per worker that gets frames (at most ``count``).
    """
    shares = [[] for _ in range(count)]
    for number in numbers(ranges):
        shares[(number // batch_size) % count].append(number)
    return [to_ranges(share) for share in shares if share]
