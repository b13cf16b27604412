"""Frequency bands: the musician's names for parts of the spectrum.

A band is ``(name, low_hz, high_hz)``; its curve is the energy between the two
frequencies. The defaults are the usual mixing-desk regions, roughly an octave or
two each (log-spaced), topped at 11 kHz so they fit the default analysis rate; bands
may reach the song's own Nyquist frequency (the analysis rate then rises to hold them).
"""

import re
from dataclasses import dataclass

from ..errors import LatentWalkError


# The analysis sample rate of onsets, beats and of bands up to 11025 Hz. It lives
# here (not in `analysis`, which needs scipy) so that the add-on can check bands in
# any Blender Python before asking the engine.
ANALYSIS_SAMPLE_RATE = 22050


# Where a band listens: the whole mix, its percussive or harmonic part (separated by
# median filtering, as librosa's HPSS), or any other value: a stem file's path.
MIX, PERCUSSIVE, HARMONIC = "mix", "percussive", "harmonic"
SEPARATED_SOURCES = (PERCUSSIVE, HARMONIC)


@dataclass(frozen=True)
class Band:
    name: str
    low_hz: float
    high_hz: float
    source: str = MIX

    @property
    def stem_path(self):
        """The stem file this band listens to, or None for the mix or a part of it."""
        return None if self.source in (MIX,) + SEPARATED_SOURCES else self.source

    @property
    def label(self):
        """What the UI and Graph Editor show, e.g. ``"Bass (60-250 Hz)"``."""
        return f"{self.name} ({self.low_hz:g}-{self.high_hz:g} Hz)"


DEFAULT_BANDS = (
    Band("Sub", 20.0, 60.0),
    Band("Bass", 60.0, 250.0),
    Band("Low Mids", 250.0, 500.0),
    Band("Mids", 500.0, 2000.0),
    Band("High Mids", 2000.0, 4000.0),
    Band("Presence", 4000.0, 6000.0),
    Band("Brilliance", 6000.0, 11000.0),
)

# Keys of the features file that a band name may not shadow.
RESERVED_NAMES = frozenset(
    {"onset", "rms", "chroma", "beats", "bands", "band_names", "band_low_hz", "band_high_hz", "meta"}
)


_BAND_SPEC = re.compile(r"^(?P<name>.+?):\s*(?P<low>[0-9.eE+]+)\s*-\s*(?P<high>[0-9.eE+]+)\s*(?:@(?P<source>.+))?$")


def parse_band(spec):
    """Parse ``"NAME:LOW-HIGH[@SOURCE]"`` into a `Band`.

    ``"kick:40-120"`` listens to the mix; ``"kick:40-120@drums.wav"`` to a stem file;
    ``"pad:200-2000@harmonic"`` / ``"@percussive"`` to that part of the mix.
    """
    match = _BAND_SPEC.match(spec.strip())
    try:
        if not match or not match["name"].strip():
            raise ValueError
        source = (match["source"] or MIX).strip()
        return Band(match["name"].strip(), float(match["low"]), float(match["high"]), source or MIX)
    except ValueError:
        raise LatentWalkError(
            f"band '{spec}' is not NAME:LOW-HIGH[@SOURCE]; write it like 'bass:60-250', "
            "'kick:40-120@drums.wav' or 'pad:200-2000@harmonic' (frequencies in Hz)."
        ) from None


def check_bands(bands):
    """Raise a ``LatentWalkError`` naming the first unusable band.

    Each band needs a unique, non-reserved name and ``0 <= low_hz < high_hz``.
    Whether the song holds the band's frequencies is `check_bands_fit_file`'s question.
    """
    if not bands:
        raise LatentWalkError("no bands are defined: add at least one band (e.g. 'bass:60-250').")
    seen = set()
    for band in bands:
        where = f"band '{band.name}'"
        key = band.name.strip().lower()
        if not key:
            raise LatentWalkError("a band has an empty name: give every band a name.")
        if key in RESERVED_NAMES or key.endswith(".npy"):
            raise LatentWalkError(f"{where}: the name '{band.name}' is reserved; rename the band.")
        if key in seen:
            raise LatentWalkError(f"{where}: two bands share this name; rename one of them.")
        seen.add(key)
        if not (band.low_hz >= 0.0):
            raise LatentWalkError(f"{where}: low_hz is {band.low_hz:g}; it must be 0 or more.")
        if not (band.low_hz < band.high_hz):
            raise LatentWalkError(
                f"{where}: low_hz ({band.low_hz:g}) must be below high_hz ({band.high_hz:g}); "
                "swap or correct them."
            )


def check_bands_fit_file(bands, file_sample_rate, path):
    """Raise a ``LatentWalkError`` for the first band reaching above the file's Nyquist frequency."""
    nyquist_hz = file_sample_rate / 2.0
    for band in bands:
        if band.high_hz > nyquist_hz:
            raise LatentWalkError(
                f"band '{band.name}' reaches {band.high_hz:g} Hz, but '{path}' is sampled at {file_sample_rate} Hz "
                f"and holds frequencies up to {nyquist_hz:g} Hz only: lower the band's high_hz to {nyquist_hz:g} "
                "or below, or use a file with a higher sample rate."
            )


# Rates the analysis may run at, lowest first: the lowest that holds the highest band
# (and that the file reaches) is used, so the default bands keep 22050 Hz's speed.
ANALYSIS_SAMPLE_RATES = (22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)


def band_sample_rate(bands, file_sample_rate):
    """The sample rate (Hz) at which bands are measured: the lowest of `ANALYSIS_SAMPLE_RATES`
    whose Nyquist frequency holds the highest band, or the file's own rate."""
    highest_hz = max(band.high_hz for band in bands)
    for rate in ANALYSIS_SAMPLE_RATES:
        if rate >= 2.0 * highest_hz and (rate <= file_sample_rate or rate == ANALYSIS_SAMPLE_RATE):
            return rate
    return int(file_sample_rate)
