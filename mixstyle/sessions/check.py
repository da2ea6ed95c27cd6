"""The session checker: one table of problem codes, a streaming file scan and the mix test.

Harmless problems are fixed by the loader and reported as an ``Issue`` (a warning); fatal ones
raise the table's error with its sentence. ``{where}`` in a sentence is the file and its place,
e.g. "stem 'vox.wav' of song 'ballad'".

Does the mix contain the stems? ``explained_fraction`` fits the mix, channel by channel, in the
STFT domain (2048-point Hann, hop 1024) by the stems with one least-squares complex gain per stem
and frequency band (9 bands split at 60, 120, 250, 500 Hz, 1, 2, 4, 8 kHz). The gains absorb
each stem's fader, pan, polarity, EQ and small delays. It returns the fraction of the mix energy
the fit explains (R^2, the squared correlation of the mix with the best such combination of the
stems). The residual of each band is scaled by cells / (cells - N) (adjusted R^2) so that free
gains do not explain noise by chance. Only phase-coherent content counts, so an unrelated
recording scores near 0 (measured < 0.03 on 2..10 s of synthetic songs in other keys and tempi;
songs under ~2 s are less certain) even with the same instruments and spectrum. A real mix
keeps most of its energy coherent with its stems even with EQ, compression and reverb (HPF +
shelf + compressor + 30 % wet reverb: R^2 0.6..0.8). The threshold ``MIN_EXPLAINED = 0.1``
(correlation 0.32) sits between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit
from scipy.fft import rfft

from dsp.errors import AudioInputError, MixstyleError, SessionError
from mixstyle.io.audio import (AudioInfo, TruncatedAudioError, audio_info, duration_text,
                               iter_audio_chunks, truncation_detail)

SILENCE_PEAK_DB = -90.0
CLIP_LEVEL = 0.999
CLIP_MIN_RUN = 3           # consecutive samples at |x| >= CLIP_LEVEL that count as clipping
MIN_EXPLAINED = 0.1        # fraction of mix energy the stems must explain (R^2)
BLOCK_SECONDS = 0.1        # loudness blocks of the scan (excerpt choice)
LENGTH_TOLERANCE_MS = 1.0  # shorter files are padded silently below this
SHORT_STEM_FRACTION = 0.5  # a stem shorter than this part of the longest gets its own warning
MAX_CHANNELS = 2
FIT_NFFT = 2048            # STFT of the mix test
FIT_HOP = 1024
FIT_BAND_EDGES_HZ = (60.0, 120.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


@dataclass(frozen=True)
class Problem:
    code: str
    fatal: bool
    error: type[MixstyleError]
    sentence: str


PROBLEMS: dict[str, Problem] = {p.code: p for p in (
    # fatal: the song cannot be used
    Problem("unreadable", True, AudioInputError, "{where} cannot be read as audio: {detail}"),
    Problem("empty", True, AudioInputError, "{where} contains no samples"),
    Problem("truncated", True, AudioInputError, "{where} is truncated: {detail}"),
    Problem("non_finite", True, AudioInputError,
            "{where} contains {count} non-finite samples (NaN or inf); re-export the file"),
    Problem("too_many_channels", True, AudioInputError,
            "{where} has {channels} channels; allowed: 1 (mono) or 2 (stereo)"),
    Problem("missing_folder", True, SessionError, "{where}: folder '{folder}' does not exist"),
    Problem("no_stems", True, SessionError,
            "{where} has no stems: expected audio files ({extensions}) in '{folder}'"),
    Problem("no_usable_stems", True, SessionError,
            "{where} has no usable stems: all {count} stems are silent (peak below {db:g} dBFS)"),
    Problem("duplicate_stem", True, SessionError,
            "{where} has two stems named '{name}' ({files}); keep one"),
    Problem("missing_mix", True, SessionError,
            "{where} has no mix: expected 'mix' with an audio extension ({extensions}) in "
            "'{folder}', or the producer's console setting '{setting_file}' there"),
    Problem("setting_unreadable", True, SessionError,
            "{where} cannot be read: {detail}; expected the console setting JSON that "
            "'mixstyle mix --params' writes"),
    Problem("setting_invalid", True, SessionError,
            "{where} is not a valid console setting: {detail}"),
    Problem("setting_extra_track", True, SessionError,
            "{where} has a track '{track}' but the song has no stem of that name; expected "
            "one track per file in stems/, named after the file without its extension "
            "({stems})"),
    Problem("setting_missing_track", True, SessionError,
            "{where} has no track for stem '{stem}'; expected one track per file in stems/ "
            "(its tracks: {tracks})"),
    Problem("ambiguous_file", True, SessionError,
            "{where} has more than one {kind} file ({files}); keep one"),
    Problem("silent_mix", True, SessionError,
            "{where} is silent (peak {peak_db:.1f} dBFS, needs > {db:g} dBFS)"),
    Problem("mix_unrelated", True, SessionError,
            "{where} does not contain its stems: the stems explain {pct:.1f}% of the mix energy "
            "(correlation {corr:.2f}; needs >= {min_pct:.0f}%, correlation {min_corr:.2f}). "
            "Is it the mix of another song?"),
    # warnings: fixed by the loader
    Problem("resampled", False, MixstyleError,
            "{where}: {files} resampled from {from_hz:g} Hz to {to_hz:g} Hz"),
    Problem("mixed_rates", False, MixstyleError,
            "{where} mixes sample rates ({rates}); everything is resampled to {to_hz:g} Hz"),
    Problem("padded", False, MixstyleError,
            "{where} is {short_ms:.1f} ms shorter than {reference}; padded with zeros"),
    Problem("short_stem", False, MixstyleError,
            "{where} is {length} long, only {pct:.0f}% of {reference} ({reference_length}); "
            "padded with zeros. Is it a partial export or an interrupted copy?"),
    Problem("silent_stem", False, MixstyleError,
            "{where} is silent{span} (peak {peak_db:.1f} dBFS < {db:g} dBFS); skipped"),
    Problem("clipping", False, MixstyleError,
            "{where} clips: {runs} runs of >= {min_run} samples at |x| >= {level:g} "
            "(first at {first_s:.3f} s)"),
    Problem("offset", False, MixstyleError,
            "{where} is offset by {ms:+.1f} ms ({samples:+d} samples at {sr:g} Hz) from "
            "{reference}; aligned by shifting it"),
    Problem("polarity", False, MixstyleError,
            "{where} is polarity-inverted in the mix (its part of the mix is the stem turned "
            "over); learned turned over. mixstyle's console has no polarity switch: a new mix "
            "plays such a stem as it was recorded"),
    Problem("master_unrelated", False, MixstyleError,
            "{where} does not match the mix (explains {pct:.1f}% of it, needs >= "
            "{min_pct:.0f}%); the master is ignored"),
    Problem("ignored_file", False, MixstyleError,
            "{where}: '{name}' is not an audio file ({extensions}); ignored"),
    Problem("role_from_audio", False, MixstyleError,
            "{where}: role '{role}' from the audio (the name says nothing; {reason}); "
            "name the stem or set its role in {roles_file} if this is wrong"),
    Problem("role_unknown", False, MixstyleError,
            "{where}: role '{role}': {reason}; set its role in {roles_file}"),
    Problem("mix_overridden", False, MixstyleError,
            "{where}: the producer's console setting '{setting_file}' is learned, not the mix "
            "'{mix}' (the setting is their last word on this song)"),
    Problem("unused_role", False, MixstyleError,
            "{where} names track '{track}' but there is no such stem; entry ignored"),
)}


@dataclass(frozen=True)
class Issue:
    """One reported, already-fixed problem: its ``code`` (a key of PROBLEMS) and sentence."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def issue(code: str, **fields: Any) -> Issue:
    problem = PROBLEMS[code]
    if problem.fatal:
        raise ValueError(f"problem '{code}' is fatal: use fail()")
    return Issue(code, problem.sentence.format(**fields))


def fail(code: str, **fields: Any) -> MixstyleError:
    """The exception for a fatal problem (``raise fail(...)``); ``.code`` holds the code."""
    problem = PROBLEMS[code]
    err = problem.error(problem.sentence.format(**fields))
    setattr(err, "code", code)
    return err


def peak_db(peak: float) -> float:
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def is_silent(peak: float) -> bool:
    return peak_db(peak) < SILENCE_PEAK_DB


@njit(cache=True)
def _clip_runs_kernel(chunk, run_len, result, offset, level, min_run):  # pragma: no cover
    """Count runs of >= min_run samples at |x| >= level; state ``run_len`` (per channel) and
    ``result`` = [runs, first run start frame or -1] carry over chunk boundaries."""
    for c in range(chunk.shape[0]):
        r = run_len[c]
        for i in range(chunk.shape[1]):
            if abs(chunk[c, i]) >= level:
                r += 1
                if r == min_run:
                    result[0] += 1
                    start = offset + i - min_run + 1
                    if result[1] < 0 or start < result[1]:
                        result[1] = start
            else:
                r = 0
        run_len[c] = r


@dataclass(frozen=True)
class FileScan:
    """What one pass over a file found. ``block_power`` is the mean square per 0.1 s block."""

    info: AudioInfo
    peak: float
    clip_runs: int
    first_clip_frame: int
    block_power: np.ndarray


def _detail(exc: BaseException) -> str:
    return str(exc.__cause__ or exc)


def scan_file(path: Path, where: str) -> FileScan:
    """Decode ``path`` once in 10 s chunks; fatal problems raise with ``where`` in the sentence."""
    if path.is_file() and path.stat().st_size == 0:
        raise fail("empty", where=where)
    try:
        info = audio_info(path)
    except TruncatedAudioError as exc:
        raise fail("truncated", where=where, detail=truncation_detail(exc)) from exc
    except AudioInputError as exc:
        raise fail("unreadable", where=where, detail=_detail(exc)) from exc
    if info.channels > MAX_CHANNELS:
        raise fail("too_many_channels", where=where, channels=info.channels)
    hop = max(1, int(round(BLOCK_SECONDS * info.sample_rate)))
    run_len = np.zeros(info.channels, np.int64)
    result = np.array([0, -1], np.int64)
    powers: list[np.ndarray] = []
    peak, bad, frame = 0.0, 0, 0
    try:
        for chunk in iter_audio_chunks(path, hop * 100):
            finite = np.isfinite(chunk)
            if not finite.all():
                bad += int(np.count_nonzero(~finite))
                chunk = np.where(finite, chunk, 0.0).astype(np.float32)
            peak = max(peak, float(np.max(np.abs(chunk))))
            _clip_runs_kernel(chunk, run_len, result, frame, CLIP_LEVEL, CLIP_MIN_RUN)
            square = np.mean(chunk.astype(np.float64) ** 2, axis=0)
            full = square.size // hop * hop
            powers.append(square[:full].reshape(-1, hop).mean(axis=1))
            if full < square.size:
                powers.append(square[full:].mean(keepdims=True))
            frame += chunk.shape[1]
    except AudioInputError as exc:
        raise fail("unreadable", where=where, detail=_detail(exc)) from exc
    if frame == 0:
        raise fail("empty", where=where)
    if bad:
        raise fail("non_finite", where=where, count=bad)
    info = AudioInfo(info.path, info.sample_rate, frame, info.channels)  # decoded length wins
    return FileScan(info, peak, int(result[0]), int(result[1]),
                    np.concatenate(powers) if powers else np.zeros(0))


def clipping_issue(scan: FileScan, where: str) -> Issue | None:
    if scan.clip_runs == 0:
        return None
    return issue("clipping", where=where, runs=scan.clip_runs, min_run=CLIP_MIN_RUN,
                 level=CLIP_LEVEL, first_s=scan.first_clip_frame / scan.info.sample_rate)


def _stft(x: np.ndarray) -> np.ndarray:
    """Hann-windowed STFT over the last axis: (..., frames, bins) complex64."""
    if x.shape[-1] < FIT_NFFT:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, FIT_NFFT - x.shape[-1])]
        x = np.pad(x, pad)
    frames = np.lib.stride_tricks.sliding_window_view(x, FIT_NFFT, axis=-1)[..., ::FIT_HOP, :]
    window = np.hanning(FIT_NFFT).astype(np.float32)
    return np.asarray(rfft(frames * window, axis=-1), dtype=np.complex64)


def _band_slices(sample_rate: float) -> list[slice]:
    bins = FIT_NFFT // 2 + 1
    edges = [int(round(f * FIT_NFFT / sample_rate)) for f in FIT_BAND_EDGES_HZ]
    edges = sorted({0, *[min(max(e, 1), bins) for e in edges], bins})
    return [slice(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def explained_fraction(stems: np.ndarray, mix: np.ndarray, sample_rate: float) -> float:
    """R^2 of the least-squares fit of ``mix`` (2, n) by ``stems`` (N, 2, n) with one complex
    gain per stem, channel and frequency band (STFT domain); 0 for a silent mix.

    See the module docstring for why this criterion.
    """
    total = residual = 0.0
    bands = _band_slices(sample_rate)
    for ch in range(mix.shape[0]):
        spec_x = _stft(stems[:, ch, :])            # (N, frames, bins)
        spec_y = _stft(mix[ch])                    # (frames, bins)
        for band in bands:
            x = spec_x[:, :, band].reshape(spec_x.shape[0], -1)
            y = spec_y[:, band].reshape(-1)
            energy = float(np.vdot(y, y).real)
            gram = (np.conj(x) @ x.T).astype(np.complex128)
            rhs = (np.conj(x) @ y).astype(np.complex128)
            ridge = 1e-9 * (np.trace(gram).real / gram.shape[0]) + 1e-30
            gains = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), rhs)
            # least squares: |y - gains . x|^2 = |y|^2 - rhs^H gains at the optimum; the
            # residual is scaled by cells / (cells - gains) as in adjusted R^2, so that N free
            # gains fitted to few cells (short songs, narrow low bands) do not explain by chance
            cells = y.size
            if cells <= 2 * x.shape[0]:
                continue
            total += energy
            fitted = max(0.0, energy - float(np.vdot(rhs, gains).real))
            residual += min(energy, fitted * cells / (cells - x.shape[0]))
    if total <= 0.0:
        return 0.0
    return max(0.0, 1.0 - residual / total)


def unrelated_fields(explained: float) -> dict[str, float]:
    return {"pct": 100.0 * explained, "corr": math.sqrt(explained),
            "min_pct": 100.0 * MIN_EXPLAINED, "min_corr": math.sqrt(MIN_EXPLAINED)}
