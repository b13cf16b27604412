"""The CLI, and every kind of bad input getting a message a user can act on."""

import os
import subprocess
import sys

import numpy as np
import pytest

import synth
from blender_latentwalk.engine import LatentWalkError
from blender_latentwalk.engine.analysis import pipeline
from blender_latentwalk.engine.analysis.bands import Band

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_cli_writes_every_array_with_documented_shapes(tmp_path):
    path = synth.write(tmp_path / "song.wav", synth.clicks([0.5, 1.0], 44100, 2.0), 44100)
    out = tmp_path / "features.npz"
    result = run_cli("analyze", path, "--fps", "30", "--fps-base", "1.001", "--band", "kick:40-120",
                     "--band", "hats:6000-11000", "--attack-ms", "5", "--release-ms", "80",
                     "--offset-ms", "-10", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 and "60 frames" in result.stdout
    with np.load(out) as data:
        assert data["kick"].shape == data["hats"].shape == data["onset"].shape == data["rms"].shape == (60,)
        assert data["chroma"].shape == (60, 12)
        assert data["beats"].dtype.kind == "i"
        assert list(data["band_names"]) == ["kick", "hats"]
        assert list(data["band_low_hz"]) == [40, 6000] and list(data["band_high_hz"]) == [120, 11000]


@pytest.mark.parametrize("args,expected", [
    (["--fps", "0"], "fps is 0"),
    (["--fps", "30", "--band", "bass:250-60"], "low_hz (250) must be below high_hz (60)"),
    (["--fps", "30", "--band", "bass"], "is not NAME:LOW-HIGH"),
    (["--fps", "30", "--band", "air:20000-23000"], "holds frequencies up to 22050 Hz only"),
])
def test_cli_bad_settings_exit_2_with_one_line(tmp_path, args, expected):
    path = synth.write(tmp_path / "song.wav", synth.clicks([0.5], 44100, 1.0), 44100)
    result = run_cli("analyze", path, *args, "--out", str(tmp_path / "f.npz"))
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "f.npz").exists()


def _bad_files(tmp_path):
    fake = tmp_path / "not_audio.wav"
    fake.write_text("this is a text file pretending to be a wav\n" * 20)
    good_ogg = synth.write(tmp_path / "song.ogg", synth.tone(440, 44100, 4.0), 44100)
    truncated = tmp_path / "truncated.ogg"
    data = open(good_ogg, "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    empty = synth.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 44100)
    tiny = synth.write(tmp_path / "tiny.wav", np.zeros(300, np.float32), 44100)  # 6.8 ms
    zero_bytes = tmp_path / "zero.mp3"
    zero_bytes.write_bytes(b"")
    return {
        "missing": (str(tmp_path / "nowhere.wav"), "not found"),
        "not audio": (str(fake), "could not be read as audio"),
        "truncated": (str(truncated), "truncated"),
        "zero-length": (empty, "truncated or damaged"),
        "zero bytes": (str(zero_bytes), "is empty (0 bytes)"),
        "sub-frame": (tiny, "shorter than one frame"),
        "folder": (str(tmp_path), "is a folder"),
    }


@pytest.mark.parametrize("case", ["missing", "not audio", "truncated", "zero-length", "zero bytes",
                                  "sub-frame", "folder"])
def test_bad_audio_names_the_file_and_the_fix(tmp_path, case):
    path, expected = _bad_files(tmp_path)[case]
    with pytest.raises(LatentWalkError) as error:
        pipeline.analyze(path, 30)
    message = str(error.value)
    assert expected in message
    assert os.path.basename(path) in message or path in message
    assert any(word in message.lower() for word in ("export", "check", "choose", "use a longer")), message


def test_band_errors_name_the_band():
    with pytest.raises(LatentWalkError, match="band 'mud': low_hz"):
        pipeline.analyze("unused.wav", 30, bands=[Band("mud", 300, 300)])
    with pytest.raises(LatentWalkError, match="two bands share"):
        pipeline.analyze("unused.wav", 30, bands=[Band("a", 1, 2), Band("A", 3, 4)])


def _peak_memory_kib(path):
    code = (
        "import resource, sys; from blender_latentwalk.engine.analysis import pipeline;"
        "from blender_latentwalk.engine.analysis.bands import DEFAULT_BANDS;"
        # An 8 kHz file holds frequencies up to 4 kHz: the default bands up to there.
        f"f = pipeline.analyze({str(path)!r}, 30, bands=[b for b in DEFAULT_BANDS if b.high_hz <= 4000]);"
        "print(f.n_frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    n_frames, peak_kib = map(int, result.stdout.split())
    return n_frames, peak_kib


def test_one_hour_song_in_bounded_memory(tmp_path):
    import soundfile

    sample_rate = 8000
    minute = synth.clicks(np.arange(0.25, 60, 0.5), sample_rate, 60.0, amplitude=0.5)
    block = np.stack([minute, minute], axis=1)
    paths = {}
    for minutes in (5, 60):
        paths[minutes] = tmp_path / f"{minutes}min.wav"
        with soundfile.SoundFile(str(paths[minutes]), "w", sample_rate, 2, subtype="PCM_16") as sound:
            for _ in range(minutes):
                sound.write(block)
    frames_short, peak_short = _peak_memory_kib(paths[5])
    frames_hour, peak_hour = _peak_memory_kib(paths[60])
    assert (frames_short, frames_hour) == (30 * 300, 30 * 3600)
    # 12 times the audio may only add the per-frame outputs (tens of MB): decoding
    # the hour at once would add >600 MB of samples and GBs of spectrogram.
    assert peak_hour - peak_short < 150 * 1024, f"{peak_short // 1024} MiB -> {peak_hour // 1024} MiB"


def test_the_engine_cli_runs_from_any_folder(tmp_path):
    """The README's engine commands work wherever the user stands (scripts/setup.sh installs the
    project into .venv in editable mode), not only from the repository root."""
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "blender_latentwalk.engine", "make-tiny-models", "models"],
                            capture_output=True, text=True, cwd=str(tmp_path), env=environment)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "models" / "biggan-tiny-UNTRAINED" / "config.json").is_file()
    assert (tmp_path / "models" / "sd-tiny-UNTRAINED" / "model_index.json").is_file()
