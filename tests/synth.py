"""Test audio, synthesised: clicks at known times, tones in known bands, silence."""

import numpy as np
import soundfile


def click_times_on_frames(frames_per_s, frame_indices, fractions):
    """Times (s) of clicks placed at ``fraction`` of the way into each frame."""
    return (np.asarray(frame_indices) + np.asarray(fractions)) / frames_per_s


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


def _place(event, times_s, sample_rate, duration_s):
    signal = np.zeros(int(round(duration_s * sample_rate)), dtype=np.float32)
    for t in times_s:
        start = int(np.ceil(t * sample_rate))
        end = min(len(signal), start + len(event))
        signal[start:end] += event[: end - start]
    return signal


def kicks(times_s, sample_rate, duration_s, amplitude=0.8):
    """Bass drums: a sine sweeping from 130 Hz down to 50 Hz, decaying over ~0.3 s, from each time."""
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(50 + 80 * np.exp(-t * 30)) / sample_rate
    return _place(amplitude * np.sin(phase) * np.exp(-t * 12), times_s, sample_rate, duration_s)


def hats(times_s, sample_rate, duration_s, amplitude=0.5):
    """Closed hi-hats: noise above 7 kHz decaying over ~50 ms, from each time."""
    import scipy.signal

    n = int(0.1 * sample_rate)
    noise = np.random.default_rng(3).standard_normal(n)
    high = scipy.signal.sosfilt(scipy.signal.butter(4, 7000, "highpass", fs=sample_rate, output="sos"), noise)
    return _place(amplitude * high * np.exp(-np.arange(n) / sample_rate * 60), times_s, sample_rate, duration_s)


def stabs(times_s, sample_rate, duration_s, amplitude=0.3, frequencies_hz=(659.3, 830.6, 987.8)):
    """Chord stabs (E major, 660-990 Hz): a 2 ms attack, then a decay over ~0.3 s, from each time."""
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in frequencies_hz)
    return _place(amplitude * chord * np.minimum(t / 0.002, 1.0) * np.exp(-t * 6), times_s, sample_rate, duration_s)
