"""The music's structure on synthesised songs whose form is known (`songs_with_form`): downbeats, sections with
their labels, drops, tempo, and the beat, bar, section and drop curves. Every song starts after a lead-in of
random length, so its events fall at random positions inside their video frames."""

import numpy as np
import pytest

import songs_with_form
from blender_latentwalk.engine.analysis import pipeline, structure
from blender_latentwalk.engine.analysis.features import Features

FRAME_RATES = [(24, 1.0), (30, 1.001), (30, 1.0), (60, 1.0)]


def f_measure(found_s, truth_s, tolerance_s):
    """Share of true events found within ``tolerance_s`` (each match used once), as an F-measure."""
    found, used, hits = list(found_s), set(), 0
    for time in truth_s:
        near = [i for i, each in enumerate(found) if abs(each - time) <= tolerance_s and i not in used]
        if near:
            used.add(near[0])
            hits += 1
    precision, recall = hits / max(len(found), 1), hits / max(len(truth_s), 1)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


@pytest.fixture(scope="module")
def form_song(tmp_path_factory):
    return songs_with_form.form_song(tmp_path_factory.mktemp("form") / "abac.wav", seed=3)


@pytest.mark.parametrize("fps, fps_base", FRAME_RATES)
def test_a_b_a_c_with_a_drop_is_found_within_a_beat_on_bar_lines(form_song, fps, fps_base):
    path, truth = form_song
    features = pipeline.analyze(path, fps, fps_base)
    rate = fps / fps_base
    beat_s = 60.0 / truth.bpm[0]
    assert features.section_labels == ["A", "B", "A", "C"]
    assert features.section_starts[0] == 0
    found_s = features.section_starts[1:] / rate
    np.testing.assert_allclose(found_s, truth.section_starts_s[1:], atol=beat_s)
    assert len(features.drops) == 1 and abs(features.drops[0] / rate - truth.drops_s[0]) <= beat_s
    assert set(features.section_starts[1:]) <= set(features.downbeats)  # sections start on bar lines
    assert f_measure(features.downbeats / rate, truth.downbeats_s, 1.0 / rate + 0.02) >= 0.95
    assert features.meta["tempo_bpm"] == pytest.approx(truth.bpm[0], rel=0.02)
    assert features.meta["beats_per_bar"] == 4
    # The section curve holds the label's number over each section; the drop curve is 1 on the drop's frame.
    letters = {"A": 0, "B": 1, "C": 2}
    for start, label in zip(features.section_starts, features.section_labels):
        assert features.section[start] == letters[label]
    assert features.drop[features.drops[0]] == 1.0 and features.drop.max() == 1.0
    assert np.all(features.bar[features.downbeats] == 1.0) and np.all(features.beat[features.beats] == 1.0)


@pytest.mark.parametrize("name, bpm_stretches, options", [
    ("swing", [110], {"swing": True}),  # the off-beat eighths two thirds into the beat
    ("pad", [96], {"pad": True}),  # a loud pad swelling through every bar; hats on every eighth
    ("tempo change", [100, 120], {}),  # 100 BPM, then 120 BPM from about 30 s on (not 4/3: see beats.py)
])
def test_the_tapped_tempo_beats_and_bars_of_a_groove(tmp_path, name, bpm_stretches, options):
    path, truth = songs_with_form.groove_song(tmp_path / "groove.wav", bpm_stretches, 30, seed=5, **options)
    features = pipeline.analyze(path, 60)
    beat_times_s = features.beats / 60.0
    for bpm, (start_s, end_s) in zip(bpm_stretches, [(0, 28), (34, 60)]):  # each tempo, away from the change
        inside = beat_times_s[(beat_times_s > start_s) & (beat_times_s < end_s)]
        assert 60.0 / np.median(np.diff(inside)) == pytest.approx(bpm, rel=0.02), name
    assert f_measure(beat_times_s, truth.beats_s, 1.5 / 60) >= 0.9
    assert f_measure(features.downbeats / 60.0, truth.downbeats_s, 1.5 / 60) >= 0.85


def test_pulses_fall_from_each_event_to_the_next():
    curve = structure.pulse([2, 6], 12)
    np.testing.assert_allclose(curve, [0, 0, 1, 0.75, 0.5, 0.25, 1, 0.75, 0.5, 0.25, 0, 0])
    drop = structure.pulse([4], 12, until=[0, 4, 8])  # a drop's pulse lasts its bar
    np.testing.assert_allclose(drop, [0, 0, 0, 0, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0])


def test_a_song_without_beats_is_one_section_without_bars():
    levels = np.full((50, 7 + 13), 1e-3)
    form = structure.analyse(levels, np.zeros(50), np.zeros(0, np.int64), [60, 250, 500, 2000, 4000, 6000, 11000])
    assert list(form.section_starts) == [0] and form.section_labels == ["A"] and not len(form.downbeats)
    assert not form.section.any() and not form.bar.any() and not form.drop.any()


def test_the_structure_survives_the_features_file_and_a_version_2_file_reads_as_one_section(form_song, tmp_path):
    features = pipeline.analyze(form_song[0], 24)
    features.save_npz(str(tmp_path / "f.npz"))
    loaded = Features.load_npz(str(tmp_path / "f.npz"))
    assert loaded.section_labels == features.section_labels
    for name in ("downbeats", "section_starts", "drops", "beat", "bar", "section", "drop"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(features, name))
    old = Features(band_names=loaded.band_names, band_low_hz=loaded.band_low_hz, band_high_hz=loaded.band_high_hz,
                   bands=loaded.bands, onset=loaded.onset, rms=loaded.rms, chroma=loaded.chroma, beats=loaded.beats,
                   meta=loaded.meta)
    old.check_shapes()
    assert old.section_labels == ["A"] and not old.section.any() and not len(old.drops)


@pytest.mark.parametrize("bpm, fps", [(120, 25), (124, 30), (125, 24)])
def test_a_steady_tempo_between_whole_frames_is_one_stretch_of_right_bars(tmp_path, bpm, fps):
    """A beat of 12.5 frames is gaps of 12 and 13: still one tempo, its bars counted once (a review found 111
    bars for 30 at 25 fps)."""
    path, truth = songs_with_form.groove_song(tmp_path / "steady.wav", [bpm], 60, seed=2)
    features = pipeline.analyze(path, fps)
    assert len(structure.tempo_stretches(features.beats)) == 1
    assert f_measure(features.downbeats / fps, truth.downbeats_s, 1.0 / fps + 0.02) >= 0.9
    assert features.section_labels == ["A"]  # a loop has no form: one section


def test_a_loop_without_form_is_one_section_and_no_section_is_shorter_than_a_phrase():
    rng = np.random.default_rng(0)
    similarity = 0.5 + 0.05 * rng.standard_normal((46, 46))  # every bar like every other, give or take
    similarity = np.clip((similarity + similarity.T) / 2, 0, 1)
    np.fill_diagonal(similarity, 1.0)
    loud = np.full(46, -20.0) + rng.normal(0, 0.3, 46)
    assert list(structure.section_boundaries(similarity, loud, loud)) == [0]


def test_a_drop_after_the_songs_biggest_build_is_still_a_drop():
    """The build at bar 21 is the highest novelty; the surge at bar 24 (3 bars on) still starts the section."""
    similarity = np.full((40, 40), 0.3)
    for first, stop in ((0, 21), (21, 24), (24, 40)):
        similarity[first:stop, first:stop] = 0.9
    loud = np.concatenate([np.full(21, -20.0), np.full(3, -30.0), np.full(16, -12.0)])
    starts = structure.section_boundaries(similarity, loud, loud)
    assert 24 in starts and 21 not in starts
    assert 24 in structure.surges(loud, loud)


def test_labels_go_on_past_z_as_spreadsheet_columns():
    assert [structure.label_name(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]


def test_a_pulse_does_not_stretch_over_a_long_silence():
    curve = structure.pulse([0, 10, 20, 1000], 1100)
    assert curve[40] == 0.0 and curve[1000] == 1.0  # at most two typical gaps, then 0 until the next


def test_no_beats_in_digital_silence(tmp_path):
    import soundfile

    path, _ = songs_with_form.groove_song(tmp_path / "groove.wav", [120], 20, seed=1)
    samples, rate = soundfile.read(path)
    silent_s = 15.0
    gapped = np.concatenate([samples, np.zeros(int(silent_s * rate)), samples])
    soundfile.write(str(tmp_path / "gapped.wav"), gapped, rate)
    features = pipeline.analyze(str(tmp_path / "gapped.wav"), 30)
    song_s = len(samples) / rate
    in_silence = (features.beats / 30.0 > song_s + 0.5) & (features.beats / 30.0 < song_s + silent_s - 0.5)
    assert not in_silence.any()
    assert features.beat[int((song_s + silent_s / 2) * 30)] == 0.0


def test_a_band_may_be_named_like_a_structure_curve(tmp_path):
    from blender_latentwalk.engine.analysis.bands import Band, check_bands

    check_bands([Band("Drop", 20, 60), Band("Beat", 60, 250)])
    path, _ = songs_with_form.groove_song(tmp_path / "groove.wav", [120], 10, seed=1)
    features = pipeline.analyze(path, 24, bands=[Band("Drop", 20, 60), Band("Beat", 60, 250)])
    features.save_npz(str(tmp_path / "f.npz"))
    loaded = Features.load_npz(str(tmp_path / "f.npz"))
    np.testing.assert_array_equal(loaded.band("Drop"), features.band("Drop"))
    np.testing.assert_array_equal(loaded.drop, features.drop)
