"""What the model sees of a stem: level, spectral shape, dynamics and stereo image.

Every feature is level-independent except the explicit level ones (loudness, peak), so the same
part recorded 10 dB hotter looks the same to the model apart from its level. Features are plain
numbers with meaning (listed in ``FEATURE_NAMES``) so a profile's model card can say what the
model looked at.

Features are always measured at ``ANALYSIS_RATE_HZ`` (44.1 kHz, the rate profiles are trained
at): audio at another rate is resampled first, because the STFT frame and hop are counted in
samples. So the same stems at 44.1, 48 or 96 kHz look the same to the model; only the console
render runs at the session's own rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsp.loudness import integrated_loudness
from mixstyle.fit.staging import SILENCE_LUFS
from mixstyle.sessions.roles import ROLES

ANALYSIS_RATE_HZ = 44100.0
FRAME = 2048   # samples at ANALYSIS_RATE_HZ
HOP = 1024
# 1/3-octave-ish bands between 20 Hz and 20 kHz (edges geometric): 30 bands.
N_BANDS = 30
BAND_EDGES_HZ = 20.0 * (1000.0 ** (np.arange(N_BANDS + 1) / N_BANDS))

SCALAR_NAMES = (
    "loudness_lufs", "peak_db", "crest_db", "centroid_log2_khz", "rolloff85_log2_khz",
    "lowcut1_log2_khz", "flatness", "active_fraction", "env_p10_db", "env_p50_db", "env_p90_db",
    "onset_rate_hz", "side_to_mid_db", "balance_lr_db", "correlation_lr",
)
FEATURE_NAMES: tuple[str, ...] = (
    SCALAR_NAMES
    + tuple(f"band{i:02d}_mean_db" for i in range(N_BANDS))
    + tuple(f"band{i:02d}_std_db" for i in range(N_BANDS))
)
N_FEATURES = len(FEATURE_NAMES)
N_ROLES = len(ROLES)


@dataclass(frozen=True)
class StemFeatures:
    vector: np.ndarray          # (N_FEATURES,) float32
    loudness_lufs: float        # integrated loudness of the stem as it is (before staging)


# features of a song's stems and of their sum, as Profile.predict takes them
SongFeatures = tuple[Sequence[StemFeatures], StemFeatures]


def from_vector(vector: Sequence[float]) -> StemFeatures:
    """StemFeatures from a stored vector (its first feature is the loudness)."""
    v = np.asarray(vector, dtype=np.float32)
    return StemFeatures(vector=v, loudness_lufs=float(v[0]))


def _band_matrix(sample_rate: float) -> np.ndarray:
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate)
    m = np.zeros((N_BANDS, freqs.size), dtype=np.float32)
    for b in range(N_BANDS):
        lo, hi = BAND_EDGES_HZ[b], BAND_EDGES_HZ[b + 1]
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():  # narrow low bands: take the nearest bin
            sel = np.zeros_like(sel)
            sel[int(np.argmin(np.abs(freqs - math.sqrt(lo * hi))))] = True
        m[b, sel] = 1.0
    return m


def _frames_power(mono: np.ndarray) -> np.ndarray:
    """Power spectrogram (frames, bins) of a mono signal, Hann window."""
    n = mono.size
    if n < FRAME:
        mono = np.pad(mono, (0, FRAME - n))
        n = FRAME
    count = 1 + (n - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    win = np.hanning(FRAME).astype(np.float32)
    spec = np.fft.rfft(mono[idx] * win, axis=1)
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float64)


def _log2_khz(hz: float) -> float:
    return math.log2(max(hz, 10.0) / 1000.0)


def at_analysis_rate(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """One stem ``(channels, n)`` resampled to ``ANALYSIS_RATE_HZ`` (as is when already there)."""
    audio = np.asarray(audio, dtype=np.float32)
    if float(sample_rate) == ANALYSIS_RATE_HZ:
        return audio
    from mixstyle.io.audio import resample
    return resample(audio, sample_rate, ANALYSIS_RATE_HZ)


def song_features(stems: Sequence[np.ndarray], sample_rate: float) -> SongFeatures:
    """Features of each stem ``(2, n)`` and of their sum, as ``Profile.predict`` takes them
    (each stem is resampled to the analysis rate once; the sum is of the resampled stems)."""
    analysed = [at_analysis_rate(a, sample_rate) for a in stems]
    return ([stem_features(a, ANALYSIS_RATE_HZ) for a in analysed],
            stem_features(np.sum(analysed, axis=0), ANALYSIS_RATE_HZ))


def stem_features(audio: np.ndarray, sample_rate: float) -> StemFeatures:
    """Features of one stereo stem ``(2, n)`` float32, measured at ``ANALYSIS_RATE_HZ``."""
    sample_rate = float(sample_rate)
    audio = at_analysis_rate(audio, sample_rate)
    sample_rate = ANALYSIS_RATE_HZ
    left, right = audio[0].astype(np.float64), audio[-1].astype(np.float64)
    mid, side = 0.5 * (left + right), 0.5 * (left - right)
    loud = integrated_loudness(audio, sample_rate)
    loud = SILENCE_LUFS if not math.isfinite(loud) else max(loud, SILENCE_LUFS)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    peak_db = 20 * math.log10(max(peak, 1e-9))
    rms_db = 10 * math.log10(max(float(np.mean(audio.astype(np.float64) ** 2)), 1e-18))

    power = _frames_power(mid.astype(np.float32)) + _frames_power(side.astype(np.float32))
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate)
    frame_energy = power.sum(axis=1) + 1e-18
    frame_db = 10 * np.log10(frame_energy)
    top_db = float(np.percentile(frame_db, 95))
    active = frame_db > top_db - 40.0
    act_power = power[active] if active.any() else power
    mean_spec = act_power.mean(axis=0) + 1e-18
    total = float(mean_spec.sum())
    cum = np.cumsum(mean_spec) / total
    centroid = float((freqs * mean_spec).sum() / total)
    rolloff = float(freqs[min(int(np.searchsorted(cum, 0.85)), freqs.size - 1)])
    lowcut = float(freqs[min(int(np.searchsorted(cum, 0.01)), freqs.size - 1)])
    flat = float(np.exp(np.mean(np.log(mean_spec))) / np.mean(mean_spec))

    bands = _band_matrix(sample_rate) @ act_power.T            # (bands, frames)
    band_db = 10 * np.log10(bands + 1e-18)
    level_db = 10 * math.log10(total + 1e-18)
    band_mean = np.clip(10 * np.log10(bands.mean(axis=1) + 1e-18) - level_db, -80.0, 0.0)
    band_std = np.clip(band_db.std(axis=1), 0.0, 30.0)

    env = frame_db - top_db
    rises = np.diff(frame_db) > 6.0
    onset_rate = float(rises.sum()) / max(audio.shape[1] / sample_rate, 1e-3)
    e_mid = float(np.sum(mid ** 2)) + 1e-18
    e_side = float(np.sum(side ** 2)) + 1e-18
    e_l = float(np.sum(left ** 2)) + 1e-18
    e_r = float(np.sum(right ** 2)) + 1e-18
    corr = float(np.sum(left * right) / math.sqrt(e_l * e_r))

    scalars = [
        loud, peak_db, peak_db - rms_db, _log2_khz(centroid), _log2_khz(rolloff),
        _log2_khz(lowcut), flat, float(active.mean()),
        float(np.percentile(env, 10)), float(np.percentile(env, 50)), float(np.percentile(env, 90)),
        onset_rate, 10 * math.log10(e_side / e_mid), 10 * math.log10(e_l / e_r), corr,
    ]
    vec = np.concatenate([np.array(scalars), band_mean, band_std]).astype(np.float32)
    vec = np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=-80.0)
    return StemFeatures(vector=vec, loudness_lufs=float(loud))


def role_index(role: str) -> int:
    return ROLES.index(role) if role in ROLES else ROLES.index("other")
