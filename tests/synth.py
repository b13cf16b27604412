"""Test audio, synthesised: clicks at known times, tones in known bands, silence."""

import numpy as np
import soundfile


def click_times_on_frames(frame_rate, frame_indices, fractions):
    """Times (s) of clicks placed at ``fraction`` of the way into each frame."""
    return (np.asarray(frame_indices) + np.asarray(fractions)) / frame_rate


def clicks(times_s, sample_rate, duration_s, amplitude=0.8):
    """Short broadband clicks (a 2 ms decaying noise burst) starting exactly at each time.

    Returns np.ndarray, shape (n_samples,), float32.
    """
    rng = np.random.default_rng(1)
    signal = np.zeros(int(round(duration_s * sample_rate)), dtype=np.float32)
    length = int(0.002 * sample_rate) + 1
    burst = rng.uniform(-1, 1, length) * np.exp(-np.arange(length) / (0.0005 * sample_rate))
    for t in times_s:
        start = int(np.ceil(t * sample_rate))
        end = min(len(signal), start + length)
        signal[start:end] += amplitude * burst[: end - start]
    return signal


def tone(frequency_hz, sample_rate, duration_s, amplitude=0.5, fade_s=0.02):
    """A sine with short raised-cosine fades (an abrupt start would be a broadband click)."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    signal = amplitude * np.sin(2 * np.pi * frequency_hz * t)
    fade = min(int(fade_s * sample_rate), n // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
        signal[:fade] *= ramp
        signal[n - fade:] *= ramp[::-1]
    return signal.astype(np.float32)


def write(path, signal, sample_rate, **kwargs):
    soundfile.write(str(path), signal, sample_rate, **kwargs)
    return str(path)
