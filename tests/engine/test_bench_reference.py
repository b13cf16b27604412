"""scripts/bench_reference.py's metrics on inputs whose answers are known, so that the benchmark's figures cannot
silently be wrong (the benchmark itself needs the reference venvs and real music: it is not run here)."""

import importlib.util
import os

import numpy as np
import pytest

from render_helpers import ROOT


def load_bench():
    path = os.path.join(ROOT, "scripts", "bench_reference.py")
    spec = importlib.util.spec_from_file_location("bench_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_beat_f_measure_counts_one_to_one_matches_within_70_ms_after_the_first_5_s():
    reference = np.arange(5.0, 25.0, 0.5)  # 40 beats at 120 BPM
    assert bench.f_measure(reference, reference) == 1.0
    assert bench.f_measure(reference + 0.069, reference) == 1.0
    assert bench.f_measure(reference + 0.071, reference) == 0.0
    # Every other beat: P = 1, R = 0.5 -> F = 2/3. Double time: P = 0.5, R = 1 -> 2/3.
    assert bench.f_measure(reference[::2], reference) == pytest.approx(2 / 3)
    assert bench.f_measure(np.arange(5.0, 25.0, 0.25), reference) == pytest.approx(2 / 3)
    # Two estimates near one reference beat: only one of them matches.
    assert bench.f_measure([10.0, 10.01], [10.0]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    # Beats before 5 s are left out of both lists, as mir_eval.beat.evaluate does.
    assert bench.f_measure([1.0, 2.0, 6.0], [3.0, 6.0]) == 1.0
    assert bench.f_measure([], reference) == 0.0
    assert np.isnan(bench.f_measure([], []))


@pytest.mark.parametrize("seed, mir_eval_f", [(0, 0.6699507389162562), (1, 0.7191011235955057),
                                               (2, 0.7468354430379747), (3, 0.6428571428571428)])
def test_beat_f_measure_equals_mir_evals_on_jittered_beats(seed, mir_eval_f):
    # mir_eval 0.8.2's beat.f_measure(trim_beats(reference), trim_beats(estimated)) on these lists, computed once
    # in a venv of its own and written here, so that the test needs no mir_eval: 80% of the beats kept,
    # jittered by 50 ms (some fall outside 70 ms), and 15 spurious beats.
    rng = np.random.default_rng(seed)
    reference = np.arange(0.3, 60.0, 0.5 + 0.1 * seed)
    kept = reference[rng.random(len(reference)) < 0.8]
    estimated = np.sort(np.concatenate([kept + rng.normal(0, 0.05, len(kept)), rng.uniform(0, 60, 15)]))
    assert bench.f_measure(estimated, reference) == pytest.approx(mir_eval_f, abs=1e-12)


def test_matching_is_maximal_where_a_nearest_first_greedy_is_not():
    # Nearest first would pair 1.0 with 1.05 and leave 0.96 and 1.12 unmatched: one pair; two are possible.
    pairs = bench.match_events([0.96, 1.05], [1.0, 1.12], window=0.07)
    assert sorted(pairs) == [(0, 0), (1, 1)]
    assert bench.match_events([3, 1, 2], [2, 3, 1], window=0) == [(1, 2), (2, 0), (0, 1)]


def test_lag_finder_finds_a_known_shift_and_its_sign():
    rng = np.random.default_rng(1)
    reference = rng.random(600)
    for shift in (-4, -1, 0, 2, 5):
        ours = np.roll(reference, shift)  # ours[t] = reference[t - shift]: ours later by `shift` frames
        rho0, lag, best = bench.lagged_spearman(ours, reference)
        assert lag == shift
        assert best == pytest.approx(1.0)
        if shift != 0:
            assert abs(rho0) < 0.2  # white noise: no correlation off its lag
    # A monotonic mapping (dB, our 0..1 shaping) leaves the rank correlation at 1.
    rho0, lag, _ = bench.lagged_spearman(np.log(reference + 1e-3), reference)
    assert (rho0, lag) == (pytest.approx(1.0), 0)
    assert np.isnan(bench.lagged_spearman(np.zeros(50), reference[:50])[0])


def test_tempo_and_its_ratio():
    assert bench.tempo_from_beats(np.arange(0, 30, 0.5)) == pytest.approx(120.0)
    assert bench.tempo_ratio(240.0, 120.0) == 2.0
    assert bench.tempo_ratio(90.0, 120.0) == 0.75
    assert np.isnan(bench.tempo_ratio(float("nan"), 120.0))
    assert np.isnan(bench.tempo_from_beats([1.0]))
    # The nearest metrical relation within 8% (mir_eval's tempo tolerance), never two at once.
    assert [bench.tempo_class(r) for r in (1.0, 1.07, 2.1, 0.5, 1.34, 0.70, 0.76, 1.2, float("nan"))] == [
        "same", "same", "double", "half", "4/3", "2/3", "3/4", "other", "unknown"]


def test_frames_and_times_follow_the_frame_convention():
    # Frame k covers [k, k + 1) / fps; a frame stands for its centre's time.
    assert bench.frames_of([0.0, 0.041, 0.0417, 1.0], 24).tolist() == [0, 1, 24]
    assert bench.frame_times([0, 24], 24).tolist() == pytest.approx([0.5 / 24, 24.5 / 24])
    assert bench.frame_edges(2, 24, 48000).tolist() == [0, 2000, 4000]


def test_onset_peaks_precision_recall_and_dynamics():
    curve = np.zeros(100)
    for frame, height in ((10, 0.9), (30, 0.6), (50, 0.3), (70, 0.8)):
        curve[frame] = height
        curve[frame + 1] = height / 2
    curve[80:83] = 0.7  # a plateau: one peak, on its first frame
    assert bench.curve_peaks(curve, 0.5).tolist() == [10, 30, 70, 80]
    assert bench.curve_peaks(curve, 0.0).tolist() == [10, 30, 50, 70, 80]
    # Reference onsets at frames 11 (within 1 of 10), 33 (too far from 30), 70, 90; two in frame 70.
    fps = 10.0
    onsets_s = np.array([11.5, 33.2, 70.1, 70.6, 90.0]) / fps
    rms_db = [-10.0, -30.0, -25.0, -20.0, -5.0]
    frames, levels = bench.hit_loudness_by_frame(onsets_s, rms_db, fps)
    assert frames.tolist() == [11, 33, 70, 90] and levels.tolist() == [-10.0, -30.0, -20.0, -5.0]
    scores = bench.onset_scores(curve, onsets_s, rms_db, fps, threshold=0.5)
    assert (scores["peaks"], scores["onsets"]) == (4, 4)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 4)
    # Matched: 10 (0.9) with -10 dB, 70 (0.8) with -20 dB: two pairs, too few for a rank correlation.
    assert np.isnan(scores["dynamics"])
    onsets_s = np.append(onsets_s, 30.4 / fps)
    # A third match, peak 30 (0.6) with the quietest hit: heights and levels rank alike.
    scores = bench.onset_scores(curve, onsets_s, rms_db + [-25.0], fps, threshold=0.5)
    assert scores["precision"] == pytest.approx(3 / 4) and scores["dynamics"] == pytest.approx(1.0)


def test_filter_reference_puts_a_tone_burst_in_its_band_and_its_frames():
    rate, fps = 44100, 24
    n_frames = 48
    time_s = np.arange(2 * rate) / rate
    mono = np.zeros_like(time_s)
    burst = (time_s >= 0.5) & (time_s < 0.75)  # frames 12..17
    mono[burst] = np.sin(2 * np.pi * 1000 * time_s[burst])
    bands = [(60.0, 250.0), (500.0, 2000.0), (6000.0, 11000.0)]
    both = bench.filter_band_levels(mono, rate, bands, {fps: n_frames, 60: 120})
    levels = both[fps]
    assert levels.shape == (3, n_frames) and both[60].shape == (3, 120)
    assert both[60][1].argmax() in range(30, 45)  # the same burst at 60 fps: frames 30..44
    assert levels[1].argmax() in range(12, 18)
    assert levels[1, 13:17].min() == pytest.approx(0.5, rel=0.05)  # a unit sine's mean square
    assert levels[1].max() > 100 * max(levels[0].max(), levels[2].max())
    # Zero phase: nothing before the burst's frames beyond the filter's short ring.
    assert levels[1, :11].max() < 1e-3 * levels[1].max()
    assert bench.mean_square_per_frame(np.ones(100), 3, 1.0, 40).tolist() == [1.0, 1.0, 1.0]


def test_licence_of_reads_the_copyright_files_forms(tmp_path):
    dep5 = tmp_path / "dep5"
    dep5.write_text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
                    "Copyright: someone\nLicense: GPL-2+\n")
    cc = tmp_path / "cc"
    cc.write_text("The songs are licensed under http://creativecommons.org/licenses/by-sa/3.0 ...")
    assert bench.licence_of(str(dep5)) == "GPL-2+"
    assert bench.licence_of(str(cc)) == "CC BY-SA 3.0"
    assert bench.licence_of(str(tmp_path / "missing")).startswith("unknown")
