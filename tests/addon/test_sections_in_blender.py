"""The song's structure in Blender: the beat, bar, section and drop curves, the `section: A` and `drop` markers
(replaced while unchanged, kept once the artist changed them), section looks (a prompt and a seed per label),
Snap Markers to Bars, and a modulation that follows the drop.

The analysis is the real one of the test song; its structure (downbeats, sections, drops and their curves) is
made here by hand and added to it, so each test knows where every bar and section is.
"""

import dataclasses

import bpy
import numpy as np
import pytest

from blender_latentwalk.blender import compat, engine_client, operators, sampling, sections
from blender_latentwalk.engine.errors import LatentWalkError
from blender_latentwalk.engine.walk import prompts

N_FRAMES = 120  # the 4 s test song at 30 fps
# Bars of 30 frames (1 s); sections A B A B of one bar each; a drop where the second A comes back.
SONG = {"downbeats": [0, 30, 60, 90], "section_starts": [0, 30, 60, 90], "section_labels": ["A", "B", "A", "B"],
        "drops": [60]}
# The same song as another analysis sees it: sections A C of two bars, no drop.
OTHER = {"downbeats": [0, 30, 60, 90], "section_starts": [0, 60], "section_labels": ["A", "C"], "drops": []}


def pulse(events, length, n=N_FRAMES):
    """1 on each event's frame, falling linearly to 0 over ``length`` frames."""
    curve = np.zeros(n, np.float32)
    for event in events:
        span = min(length, n - event)
        curve[event:event + span] = np.maximum(curve[event:event + span], 1.0 - np.arange(span) / length)
    return curve


def with_structure(features, structure):
    """``features`` with the structure ``structure`` (frame indices at 30 fps, scaled to the features' rate) and
    its curves."""
    n = features.n_frames
    scale = n // N_FRAMES

    def frames(name):
        return [scale * frame for frame in structure[name]]

    starts, labels = frames("section_starts"), structure["section_labels"]
    section = np.zeros(n, np.float32)
    for start, label in zip(starts, labels):
        section[start:] = ord(label) - ord("A")
    beats = np.arange(0, n, 15 * scale)
    return dataclasses.replace(
        features, beats=beats, downbeats=np.array(frames("downbeats")), section_starts=np.array(starts),
        section_labels=list(labels), drops=np.array(frames("drops"), dtype=np.int64),
        beat=pulse(beats, 15 * scale, n), bar=pulse(frames("downbeats"), 30 * scale, n), section=section,
        drop=pulse(frames("drops"), 30 * scale, n))


def new_marker(scene, name, frame, select=False):
    """A marker added by hand (unselected unless ``select``: Snap Markers to Bars moves the selected ones)."""
    added = scene.timeline_markers.new(name, frame=frame)
    added.select = select
    return added


@pytest.fixture
def analysed(monkeypatch):
    """The bake's analysis with a structure; set ``analysed["structure"]`` to change it for the next bake."""
    state = {"structure": SONG, "features": None}
    analyze = engine_client.analyze

    def analyze_with_structure(request, python=""):
        state["features"] = with_structure(analyze(request, python), state["structure"])
        return state["features"]

    monkeypatch.setattr(engine_client, "analyze", analyze_with_structure)
    return state


@pytest.fixture
def baked(scene, song, analysed):
    scene.latentwalk.audio_path = song
    operators.bake(scene)
    scene.latentwalk.ensure_default_classes()
    return scene


def curve(scene, name):
    return compat.find_fcurve(scene, f"latentwalk.{name}", 0)


def values(scene, name, first_frame=1):
    fcurve = curve(scene, name)
    return np.array([fcurve.evaluate(first_frame + k) for k in range(N_FRAMES)])


def structure_markers(scene):
    return sorted((m.frame, m.name) for m in scene.timeline_markers if prompts.is_structure_marker(m.name))


def marker(scene, name, frame):
    return next(m for m in scene.timeline_markers if m.name == name and m.frame == frame)


# --- the curves -----------------------------------------------------------------------------------------

def test_structure_curves_are_baked_like_the_others_and_the_section_holds(baked, analysed):
    features = analysed["features"]
    for name in ("beat", "bar", "drop"):
        fcurve = curve(baked, name)
        assert fcurve.group.name == "Latent Walk" and len(fcurve.keyframe_points) == N_FRAMES
        np.testing.assert_allclose(values(baked, name), getattr(features, name), atol=1e-6, err_msg=name)
    section = curve(baked, "section")
    assert section.group.name == "Latent Walk"
    # One constant key per section start: the value is held, and moving one key moves the section.
    assert [tuple(k.co) for k in section.keyframe_points] == [(1, 0), (31, 1), (61, 0), (91, 1)]
    assert {k.interpolation for k in section.keyframe_points} == {"CONSTANT"}
    np.testing.assert_array_equal(values(baked, "section"), features.section)
    assert section.evaluate(30.9) == 0.0 and section.evaluate(31.0) == 1.0
    # The property follows its curve, so drivers can read it.
    baked.frame_set(61)
    assert baked.latentwalk.drop == pytest.approx(1.0) and baked.latentwalk.bar == pytest.approx(1.0)
    assert "4 section(s) (A B A B), 1 drop(s)" in baked.latentwalk.last_bake_summary


def test_edited_and_locked_structure_curves_are_kept_on_a_rebake(baked, analysed):
    settings = baked.latentwalk
    curve(baked, "bar").keyframe_points[45].co.y = 1.0  # a bar added by hand
    settings.lock_drop = True
    analysed["structure"] = OTHER

    result = operators.bake(baked)

    assert [t.label for t in result.kept] == ["Bar"]
    assert "kept 1 curve(s) edited by hand: Bar" in result.messages()
    assert values(baked, "bar")[45] == 1.0  # the edit
    np.testing.assert_allclose(values(baked, "drop"), pulse([60], 30))  # locked: the first bake's drop
    np.testing.assert_allclose(values(baked, "section"), analysed["features"].section)  # re-baked: A then C
    assert [tuple(k.co) for k in curve(baked, "section").keyframe_points] == [(1, 0), (61, 2)]
    labels = [t.label for t in result.written]
    assert "Section" in labels and "Beat" in labels and "Drop" not in labels and "Bar" not in labels


def test_a_rebake_at_another_frame_rate_retimes_a_kept_section_curve(baked, analysed):
    section = curve(baked, "section")
    section.keyframe_points[1].co.x = 36  # section B starts 5 frames later, by hand
    baked.render.fps = 60
    result = operators.bake(baked)
    assert "Section" in [t.label for t in result.kept] and "Section" in result.retimed
    assert [k.co.x for k in section.keyframe_points] == [1, 71, 121, 181]  # 1 + (frame - 1) x 2


# --- the markers ----------------------------------------------------------------------------------------

def test_markers_at_each_section_start_and_drop_from_the_songs_first_frame(scene, song, analysed):
    scene.frame_start = 11  # the song strip starts here, and so do the markers
    scene.latentwalk.audio_path = song
    operators.bake(scene)
    assert structure_markers(scene) == [(11, "section: A"), (41, "section: B"), (71, "drop"), (71, "section: A"),
                                        (101, "section: B")]
    assert not any(m.select for m in scene.timeline_markers)
    assert [look.label for look in scene.latentwalk.section_looks] == ["A", "B"]


def test_no_section_markers_when_switched_off(scene, song, analysed):
    scene.latentwalk.audio_path = song
    scene.latentwalk.add_section_markers = False
    operators.bake(scene)
    assert structure_markers(scene) == []


def test_unchanged_markers_are_replaced_and_changed_ones_kept(baked, analysed):
    analysed["structure"] = OTHER
    result = operators.bake(baked)  # untouched since the last bake: the new analysis's markers
    assert structure_markers(baked) == [(1, "section: A"), (61, "section: C")]
    assert result.kept_markers is None

    marker(baked, "section: C", 61).frame = 55  # moved by the artist
    new_marker(baked, "drop", 91)  # and one added
    analysed["structure"] = SONG
    result = operators.bake(baked)
    assert structure_markers(baked) == [(1, "section: A"), (55, "section: C"), (91, "drop")]
    assert "kept the section and drop markers as you changed them (3 marker(s))" in result.messages()
    assert [look.label for look in baked.latentwalk.section_looks] == ["A", "B", "C"]  # C's marker is kept

    # Kept markers move with the curves when the frame rate changes: at the same time in the song.
    baked.render.fps = 60
    result = operators.bake(baked)
    assert structure_markers(baked) == [(1, "section: A"), (109, "section: C"), (181, "drop")]
    assert "3 section and drop marker(s)" in result.retimed

    # Overwrite Edited Curves replaces them with the song's.
    operators.bake(baked, overwrite_edited=True)
    assert structure_markers(baked) == [(1, "section: A"), (61, "section: B"), (121, "drop"), (121, "section: A"),
                                        (181, "section: B")]


def test_kept_markers_move_with_the_song_strip(baked):
    marker(baked, "drop", 61).frame = 64  # moved by hand: kept
    strip = next((s for s in compat.all_strips(baked) if s.type == "SOUND"), None)
    if strip is None:
        pytest.skip("this bpy build has no audio (Audaspace): no song strip to move")
    strip.frame_start += 10  # the artist slides the song 10 frames later
    result = operators.bake(baked)
    assert structure_markers(baked) == [(11, "section: A"), (41, "section: B"), (71, "section: A"), (74, "drop"),
                                        (101, "section: B")]
    assert "5 section and drop marker(s)" in result.retimed


def test_unchanged_markers_follow_a_new_frame_rate(baked):
    baked.render.fps = 60
    result = operators.bake(baked)
    assert result.kept_markers is None
    assert structure_markers(baked) == [(1, "section: A"), (61, "section: B"), (121, "drop"), (121, "section: A"),
                                        (181, "section: B")]


def test_a_deleted_marker_stays_deleted(baked):
    baked.timeline_markers.remove(marker(baked, "drop", 61))
    result = operators.bake(baked)
    assert (61, "drop") not in structure_markers(baked) and len(structure_markers(baked)) == 4
    assert result.kept_markers == 4


def test_markers_made_by_hand_before_any_bake_are_kept(scene, song, analysed):
    new_marker(scene, "section: Verse", 20)
    scene.latentwalk.audio_path = song
    result = operators.bake(scene)
    assert structure_markers(scene) == [(20, "section: Verse")] and result.kept_markers == 1
    assert [look.label for look in scene.latentwalk.section_looks] == ["A", "B", "Verse"]


def test_markers_put_back_exactly_are_the_bakes_again(baked):
    marker(baked, "section: B", 31).frame = 33
    assert sections.markers_edited(baked)
    marker(baked, "section: B", 33).frame = 31
    assert not sections.markers_edited(baked)  # put back exactly: the bake's again


def test_marker_names():
    assert prompts.marker_section("section: A") == "A"
    assert prompts.marker_section("Section:Chorus ") == "Chorus"
    assert prompts.marker_section("section:") is None and prompts.marker_section("prompt: a") is None
    assert prompts.section_marker_name("B") == "section: B"
    assert prompts.is_drop_marker("drop") and prompts.is_drop_marker(" Drop ") and not prompts.is_drop_marker("drops")
    assert prompts.marker_prompt("section: A") is None  # a section marker is no prompt marker


# --- the looks ------------------------------------------------------------------------------------------

def test_looks_get_a_row_per_label_and_keep_the_artists(baked, analysed):
    looks = baked.latentwalk.section_looks
    assert [look.label for look in looks] == ["A", "B"] and not any(look.prompt or look.use_seed for look in looks)
    looks[1].prompt = "a forest"  # B filled in
    analysed["structure"] = {**OTHER, "section_labels": ["A", "C"]}
    operators.bake(baked)
    # B has no section any more but the artist filled it in: kept; C is new. A is the song's still.
    assert [(look.label, look.prompt) for look in looks] == [("A", ""), ("B", "a forest"), ("C", "")]
    looks[1].prompt = ""
    operators.bake(baked)
    assert [look.label for look in looks] == ["A", "C"]  # an empty look of no section goes


def test_look_add_and_remove_operators(baked):
    settings = baked.latentwalk
    new_marker(baked, "section: Bridge", 100)
    assert bpy.ops.latentwalk.section_look_add() == {"FINISHED"}
    assert settings.section_looks[-1].label == "Bridge"  # the marker without a look first
    assert bpy.ops.latentwalk.section_look_add() == {"FINISHED"}
    assert settings.section_looks[-1].label == "C" and settings.section_looks[-1].name == "C"
    settings.active_section_look_index = 0
    assert bpy.ops.latentwalk.section_look_remove() == {"FINISHED"}
    assert [look.label for look in settings.section_looks] == ["B", "Bridge", "C"]


# --- the plan -------------------------------------------------------------------------------------------

def _prompt_per_frame(plan):
    return [max(plan.frame_prompts(k).items(), key=lambda item: item[1])[0] for k in range(plan.n_frames)]


def test_a_look_prompt_switches_exactly_at_its_section_marker(baked):
    settings = baked.latentwalk
    settings.diffusion.prompt, settings.diffusion.prompt_blend_ms = "a volcano", 0.0
    plan = sampling.sample_plan(baked)
    assert plan.settings["prompts"] == ["a volcano"]  # no look has a prompt: the markers change nothing

    settings.section_looks[1].prompt = "a forest"  # B; A has none
    plan = sampling.sample_plan(baked)
    assert plan.settings["prompts"] == ["a volcano", "a forest"]
    got = _prompt_per_frame(plan)
    # B at frames 31 and 91 (indices 30, 90); A in between goes back to the base prompt.
    assert got == ["a volcano"] * 30 + ["a forest"] * 30 + ["a volcano"] * 30 + ["a forest"] * 30
    assert plan.frame_prompts(29) == {"a volcano": 1.0} and plan.frame_prompts(30) == {"a forest": 1.0}

    # The artist moves B's first marker: the switch moves with it; a prompt marker still works, by frame.
    marker(baked, "section: B", 31).frame = 41
    new_marker(baked, "prompt: a city at night", 71)
    got = _prompt_per_frame(sampling.sample_plan(baked))
    assert got == (["a volcano"] * 40 + ["a forest"] * 20 + ["a volcano"] * 10 + ["a city at night"] * 20
                   + ["a forest"] * 30)


def test_a_prompt_marker_on_a_section_marker_wins(baked):
    settings = baked.latentwalk
    settings.diffusion.prompt, settings.diffusion.prompt_blend_ms = "a volcano", 0.0
    settings.section_looks[1].prompt = "a forest"
    new_marker(baked, "prompt: the sea", 31)
    plan = sampling.sample_plan(baked)
    assert plan.frame_prompts(30) == {"the sea": 1.0} and plan.frame_prompts(60) == {"a volcano": 1.0}


def test_a_prompt_marker_on_a_section_marker_wins_through_the_blend_too(baked):
    """The section's own prompt gets none of the mix while a prompt marker on its frame fades in."""
    settings = baked.latentwalk
    settings.diffusion.prompt, settings.diffusion.prompt_blend_ms = "a volcano", 500.0
    settings.section_looks[1].prompt = "a forest"
    new_marker(baked, "prompt: the sea", 31)
    plan = sampling.sample_plan(baked)
    for index in range(30, 60):
        assert "a forest" not in plan.frame_prompts(index), index


def test_the_walk_seed_per_frame_follows_the_looks_with_their_own_seed(baked):
    settings = baked.latentwalk
    settings.walk.seed = 3
    plan = sampling.sample_plan(baked)
    np.testing.assert_array_equal(plan.walk_seed, 3)
    settings.section_looks[0].use_seed, settings.section_looks[0].seed = True, 7  # A
    settings.section_looks[1].seed = 11  # B's seed, not used
    plan = sampling.sample_plan(baked)
    assert plan.seed == 3 and plan.walk_seed.dtype.kind == "i"
    np.testing.assert_array_equal(plan.walk_seed, [7] * 30 + [3] * 30 + [7] * 30 + [3] * 30)
    # Frames before the first section marker keep the walk's seed.
    marker(baked, "section: A", 1).frame = 11
    np.testing.assert_array_equal(sampling.sample_plan(baked).walk_seed[:12], [3] * 10 + [7] * 2)


# --- snapping -------------------------------------------------------------------------------------------

def test_snap_markers_to_bars_moves_all_then_only_the_selected(baked):
    moved_b = marker(baked, "section: B", 31)
    moved_b.frame = 40
    new_marker(baked, "prompt: a city", 50)
    beat = new_marker(baked, "beat", 44)  # not a prompt or section marker: stays
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"FINISHED"}
    assert moved_b.frame == 31 and marker(baked, "prompt: a city", 61).frame == 61 and beat.frame == 44

    city = marker(baked, "prompt: a city", 61)
    city.frame, moved_b.frame = 80, 80
    city.select = True  # only the selected one moves
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"FINISHED"}
    assert city.frame == 91 and moved_b.frame == 80


def test_snap_reads_the_bar_curve_as_the_artist_edited_it(baked):
    bar = curve(baked, "bar")
    bar.keyframe_points[75].co.y = 1.0  # a bar at frame 76, keyed by hand
    bar.keyframe_points[90].co.y = 0.5  # and the one at frame 91 taken away
    city = new_marker(baked, "prompt: a city", 88)
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"FINISHED"}
    assert city.frame == 76
    assert marker(baked, "section: B", 76).frame == 76  # B's second marker (frame 91) too: 91 is no bar now


def test_snap_finds_no_bars_before_the_songs_first_key(baked):
    """The Bar curve's first key is 1 (the song starts on a bar line): the frames before the song only hold
    that value and are no bars; a prompt marker there goes to the song's first bar."""
    strip = next((s for s in compat.all_strips(baked) if s.type == "SOUND"), None)
    if strip is None:
        pytest.skip("this bpy build has no audio (Audaspace): no song strip to move")
    strip.frame_start = 101
    baked.frame_start = 1
    operators.bake(baked)
    city = new_marker(baked, "prompt: a city", 40)
    assert sections.bar_frames(baked)[0] == 101
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"FINISHED"}
    assert city.frame == 101


def test_snap_without_bars_says_so(baked):
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"FINISHED"}  # the markers are on bars: nothing to move
    bar = curve(baked, "bar")
    bar.keyframe_points.foreach_set("co", np.zeros(2 * len(bar.keyframe_points), np.float32))  # flattened by hand
    bar.update()
    city = new_marker(baked, "prompt: a city", 50)
    assert bpy.ops.latentwalk.snap_markers_to_bars() == {"CANCELLED"}
    assert city.frame == 50


# --- modulation -----------------------------------------------------------------------------------------

def test_a_drop_modulation_is_a_strength_burst_at_the_drop(baked):
    settings = baked.latentwalk
    settings.diffusion.strength = 0.2
    assert bpy.ops.latentwalk.modulation_add() == {"FINISHED"}
    item = settings.modulations[-1]
    item.target, item.curve_choice, item.amount = "strength", "drop", 0.5
    assert item.curve == "drop"
    plan = sampling.sample_plan(baked)
    np.testing.assert_allclose(plan.strength, 0.2 + 0.5 * pulse([60], 30), atol=1e-6)
    assert plan.strength[59] == pytest.approx(0.2) and plan.strength[60] == pytest.approx(0.7)
    # A scene baked before the structure curves existed has no Drop curve: refused, not a silent 0.
    compat.remove_fcurve(baked, curve(baked, "drop"))
    with pytest.raises(LatentWalkError, match="Drop curve.*Bake Curves"):
        sampling.sample_plan(baked)
    # The beat and the bar are in the menu too.
    for key in ("beat", "bar"):
        item.curve_choice = key
        assert item.curve == key
