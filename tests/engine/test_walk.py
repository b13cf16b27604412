"""The walk: energy moves the image the way a musician expects, and chroma picks the classes."""

import numpy as np
import pytest
from scipy.stats import spearmanr

import synth
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.walk import latents
from blender_latentwalk.engine.walk.plan import DEFAULT_SETTINGS, RenderPlan


def plan_from_song(features, mode, **overrides):
    n = features.n_frames
    settings = dict(DEFAULT_SETTINGS, mode=mode)
    values = dict(
        frame_start=1, fps=30, fps_base=1.0, seed=3, band_names=features.band_names,
        bands=features.bands, band_weights=np.ones_like(features.bands), onset=features.onset,
        chroma=features.chroma, truncation=np.full(n, 0.5), pulse=np.zeros(n), speed=np.ones(n),
        jitter=np.zeros(n), settings=settings,
    )
    values.update(overrides)
    return RenderPlan(**values)


@pytest.fixture(scope="module")
def song_features(tmp_path_factory):
    """A song that swells and falls silent: bass and chords whose loudness follows a slow envelope."""
    sample_rate = 22050
    seconds = 12.0
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    loudness = np.clip(np.sin(np.pi * t / 4.0), 0, None) ** 2  # swells, then silence (4-8 s), then again
    music = 0.5 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)
    path = synth.write(tmp_path_factory.mktemp("walk") / "swell.wav", (loudness * music).astype(np.float32), sample_rate)
    return pipeline.analyze(path, 30)


def test_displacement_distance_from_rest_follows_energy_and_rests_in_silence(song_features):
    plan = plan_from_song(song_features, "displacement")
    z = latents.noise_vectors(plan)
    distance = np.linalg.norm(z - latents.resting_point(plan), axis=1)
    energy = song_features.bands.sum(axis=0)
    assert spearmanr(distance, energy).correlation >= 0.8
    silent = energy == 0
    assert silent.sum() > 30
    np.testing.assert_allclose(z[silent], np.broadcast_to(latents.resting_point(plan), z[silent].shape), atol=1e-6)


def test_travel_speed_follows_energy_and_stays_in_range(song_features):
    plan = plan_from_song(song_features, "travel", speed=np.full(song_features.n_frames, 4.0))
    z = latents.noise_vectors(plan)
    step = np.linalg.norm(np.diff(z, axis=0), axis=1)
    energy = song_features.bands.sum(axis=0)[1:]
    assert spearmanr(step, energy).correlation >= 0.8
    assert np.all(np.abs(z) <= latents.Z_LIMIT * 0.5 + 1e-6)  # within truncation * limit
    assert np.all(step[energy == 0] < 1e-6)  # silence: the walk pauses


def test_onset_kicks_only_its_own_frame(song_features):
    n = song_features.n_frames
    onset = np.zeros(n)
    onset[100] = 1.0
    calm = plan_from_song(song_features, "displacement", onset=onset)
    kicked = plan_from_song(song_features, "displacement", onset=onset, pulse=np.ones(n))
    difference = np.linalg.norm(latents.noise_vectors(kicked) - latents.noise_vectors(calm), axis=1)
    assert difference[100] > 0.1 and np.all(np.delete(difference, 100) < 1e-6)


def test_jitter_wobbles_every_frame_its_own_seeded_way(song_features):
    n = song_features.n_frames
    still = latents.noise_vectors(plan_from_song(song_features, "displacement"))
    wobble = latents.noise_vectors(plan_from_song(song_features, "displacement", jitter=np.full(n, 0.05))) - still
    size = np.linalg.norm(wobble, axis=1)
    assert np.all(size > 0.01)  # every frame wobbles
    double = latents.noise_vectors(plan_from_song(song_features, "displacement", jitter=np.full(n, 0.1))) - still
    assert np.median(np.linalg.norm(double, axis=1) / size) == pytest.approx(2.0, rel=0.1)  # in proportion
    unit = wobble / size[:, None]
    assert np.abs(np.sum(unit[1:] * unit[:-1], axis=1)).mean() < 0.2  # a new direction each frame
    # A frame's wobble is its own: the same whether its neighbours wobble or not (chunked and
    # resumed renders agree), and another seed wobbles another way.
    alone = np.zeros(n)
    alone[40:45] = 0.05
    only = latents.noise_vectors(plan_from_song(song_features, "displacement", jitter=alone)) - still
    np.testing.assert_allclose(only[40:45], wobble[40:45], atol=1e-6)
    assert np.all(only[:40] == 0) and np.all(only[45:] == 0)
    other_seed = plan_from_song(song_features, "displacement", seed=4, jitter=np.full(n, 0.05))
    other = latents.noise_vectors(other_seed) - latents.noise_vectors(plan_from_song(song_features, "displacement", seed=4))
    assert np.abs(np.sum(other * wobble, axis=1) / (np.linalg.norm(other, axis=1) * size)).mean() < 0.2


def test_class_weights_follow_chroma(tmp_path):
    sample_rate = 22050
    a_then_e = np.concatenate([synth.tone(440.0, sample_rate, 3.0), synth.tone(329.63, sample_rate, 3.0)])
    features = pipeline.analyze(synth.write(tmp_path / "ae.wav", a_then_e, sample_rate), 30)
    plan = plan_from_song(features, "displacement")
    classes = latents.class_vectors(plan)
    chosen = DEFAULT_SETTINGS["classes"]
    assert classes.shape == (features.n_frames, 1000)
    np.testing.assert_allclose(classes.sum(axis=1), 1.0, atol=1e-5)
    assert np.argmax(classes[80]) == chosen[9]  # A
    assert np.argmax(classes[170]) == chosen[4]  # E
    assert np.count_nonzero(classes.sum(axis=0)) <= 12


def test_fold_bounces_inside_the_walls():
    values = np.linspace(-20, 20, 4001)
    folded = latents.fold(values)
    assert folded.min() >= -2 and folded.max() <= 2
    assert np.max(np.abs(np.diff(folded))) <= np.max(np.diff(values)) + 1e-12  # continuous, |slope| 1


def test_truncation_snaps_to_biggan_statistics_grid(song_features):
    n = song_features.n_frames
    plan = plan_from_song(song_features, "displacement", truncation=np.linspace(0.0, 1.2, n))
    levels = latents.truncations(plan)
    assert levels.min() == pytest.approx(0.02) and levels.max() == pytest.approx(1.0)
    np.testing.assert_allclose(levels / 0.02, np.round(levels / 0.02), atol=1e-9)


def test_plan_round_trips_through_a_file(song_features, tmp_path):
    plan = plan_from_song(song_features, "travel")
    plan.save(tmp_path / "plan.npz")
    loaded = RenderPlan.load(tmp_path / "plan.npz")
    assert loaded.fingerprint() == plan.fingerprint()
    np.testing.assert_array_equal(latents.noise_vectors(loaded), latents.noise_vectors(plan))
