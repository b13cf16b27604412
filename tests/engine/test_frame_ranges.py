"""Frame ranges as a farm writes them: Flamenco's chunks (`1-3,5`), read the same by the headless
script's --frames (Blender frames) and the engine CLI's --plan-indices, and a message naming the wrong part."""

import random

import pytest

from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.render import frame_ranges


@pytest.mark.parametrize("text, expected", [
    ("7", [[7, 7]]),
    ("1-240", [[1, 240]]),
    ("1-3,5", [[1, 3], [5, 5]]),
    ("10-19,25", [[10, 19], [25, 25]]),
    (" 3 , 1 - 2 ", [[1, 3]]),  # adjacent parts merge, order and spaces do not matter
    ("1..4,9", [[1, 4], [9, 9]]),  # Blender's own notation
    ("5-8,6-10,1", [[1, 1], [5, 10]]),  # overlapping parts count once
])
def test_chunks_parse_into_merged_ranges(text, expected):
    assert frame_ranges.parse(text) == expected


def test_random_chunkings_round_trip_through_the_text():
    rng = random.Random(7)
    for _ in range(200):
        frames = sorted(rng.sample(range(60), rng.randint(1, 30)))
        text = frame_ranges.format_ranges(frame_ranges.to_ranges(frames))
        assert frame_ranges.numbers(frame_ranges.parse(text)) == frames


@pytest.mark.parametrize("text, expected", [
    ("1-3,x", "--frames '1-3,x': 'x' is not a frame or a range A-B"),
    ("1_120", "'1_120' is not a frame or a range A-B"),  # Python's int() would read 1120
    ("1-3,,5", "has an empty part between commas"),
    ("1-3,9-4", "'9-4' ends before it starts"),
    ("-5", "'-5' is not a frame"),
    ("", "has an empty part"),
])
def test_a_bad_part_is_named(text, expected):
    with pytest.raises(LatentWalkError, match=None) as error:
        frame_ranges.parse(text)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_frame_outside_is_named():
    with pytest.raises(LatentWalkError) as error:
        frame_ranges.check_inside([[0, 3], [70, 80]], 0, 71, "0-3,70-80")
    assert str(error.value) == "--frames '0-3,70-80': frame 80 is outside the plan's 0-71."


def test_batches_are_dealt_out_whole_and_in_turn():
    assert frame_ranges.interleave_batches([[0, 21]], 4, 2) == [[[0, 3], [8, 11], [16, 19]],
                                                               [[4, 7], [12, 15], [20, 21]]]
    assert frame_ranges.interleave_batches([[2, 5], [9, 9]], 4, 3) == [[[2, 3]], [[4, 5]], [[9, 9]]]
    assert frame_ranges.interleave_batches([[0, 2]], 4, 2) == [[[0, 2]]]  # one batch: one worker
    rng = random.Random(3)
    for _ in range(50):
        frames = sorted(rng.sample(range(200), rng.randint(1, 120)))
        batch, count = rng.randint(1, 9), rng.randint(1, 4)
        shares = [frame_ranges.numbers(share) for share in
                  frame_ranges.interleave_batches(frame_ranges.to_ranges(frames), batch, count)]
        assert sorted(n for share in shares for n in share) == frames  # every frame once
        batches = [{n // batch for n in share} for share in shares]
        assert all(not a & b for i, a in enumerate(batches) for b in batches[i + 1:])  # no batch split
