"""How close mixstyle's mixes come to the producer's real mixes, next to two baselines.

Metrics (lower is better), each comparing a mix with the producer's mix of the same stems:
- ``band_error_db``: mean |level difference| in 30 log-spaced bands (20 Hz-20 kHz) per 93 ms
  frame of the mid signal (L+R)/2 -- tone and balance as they move through the song (stereo
  placement is measured by the width error, not twice);
- ``mrstft``: multi-resolution STFT distance (spectral convergence + log magnitude);
- ``loudness_error_lu``: |integrated loudness difference| (BS.1770);
- ``width_error_db``: |difference of side/mid energy ratio| -- stereo width; the ratio is held
  within +-40 dB (a side 40 dB under the mid is mono to the ear: a near-mono reference must not
  make every width error 100 dB);
- ``plr_error_db``: |difference of peak-to-loudness ratio| (true peak - integrated loudness):
  how dense and limited the mix is;
- ``crest_error_db``: |difference of crest factor| (sample peak - RMS): how punchy.

Baselines: ``plain_sum`` (the stems summed, matched in loudness to the producer's mix) and
``automix`` (a generic equal-loudness automix: every stem to the same loudness, summed, brought to
-14 LUFS with a -1 dBFS limiter). ``closed`` is the share of the plain sum's band error that the
learned mix removes (``mixstyle.evaluate.score``: the same share for MR-STFT, PLR and crest).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_and_sample_peak_db
from mixstyle.fit.staging import stage_gain_db
from mixstyle.twin import losses

METRICS = ("band_error_db", "mrstft", "loudness_error_lu", "plr_error_db", "crest_error_db",
           "width_error_db")
AUTOMIX_LUFS = -14.0


# a side this far under the mid (or over it) is heard as mono (or as anti-phase) whatever its
# exact level: without the limit a near-mono mix (side at -120 dB) made every other mix's width
# error some 100 dB
WIDTH_LIMIT_DB = 40.0


def _width_db(x: np.ndarray) -> float:
    """Side over mid energy (dB), within +-``WIDTH_LIMIT_DB``."""
    mid = 0.5 * (x[0].astype(np.float64) + x[1])
    side = 0.5 * (x[0].astype(np.float64) - x[1])
    ratio = 10 * math.log10((np.sum(side ** 2) + 1e-12) / (np.sum(mid ** 2) + 1e-12))
    return float(np.clip(ratio, -WIDTH_LIMIT_DB, WIDTH_LIMIT_DB))


def _lufs(x: np.ndarray, sr: float) -> float:
    v = integrated_loudness(x.astype(np.float32), sr)
    return v if math.isfinite(v) else -70.0


def _plr_crest(x: np.ndarray, sr: float) -> tuple[float, float]:
    """(true peak - integrated loudness, sample peak - RMS) in dB; (0, 0) for silence."""
    loud = integrated_loudness(x.astype(np.float32), sr)
    tp, sp = true_and_sample_peak_db(x.astype(np.float32), sr)
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    if not (math.isfinite(loud) and math.isfinite(tp) and rms > 0):
        return 0.0, 0.0
    return tp - loud, sp - 20 * math.log10(rms)


class Target:
    """The producer's mix measured once for many mixes compared with it (learn's held-out songs
    are mixed at a dozen shares of the style): pass it as ``ref`` to ``metrics`` and
    ``matched_band_error``. The same numbers as the bare array, without measuring it again."""

    def __init__(self, audio: np.ndarray, sample_rate: float) -> None:
        self.audio = audio
        self.sample_rate = sample_rate
        self._seen: dict[tuple, object] = {}

    def _memo(self, what: str, n: int, make):
        key = (what, n)
        if key not in self._seen:
            self._seen[key] = make()
        return self._seen[key]

    def lufs(self, n: int) -> float:
        return self._memo("lufs", n, lambda: _lufs(self.audio[:, :n], self.sample_rate))

    def width_db(self, n: int) -> float:
        return self._memo("width", n, lambda: _width_db(self.audio[:, :n]))

    def plr_crest(self, n: int) -> tuple[float, float]:
        return self._memo("plr", n, lambda: _plr_crest(self.audio[:, :n], self.sample_rate))

    def stereo(self, n: int) -> losses.Reference:
        return self._memo("stereo", n, lambda: losses.Reference(_tensor(self.audio, n)))

    def mid(self, n: int) -> losses.Reference:
        return self._memo("mid", n, lambda: losses.Reference(
            _tensor(self.audio, n).mean(dim=0, keepdim=True)))


def _tensor(x: np.ndarray, n: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x[:, :n], dtype=np.float32))


def _target(ref: np.ndarray | Target, sample_rate: float) -> Target:
    return ref if isinstance(ref, Target) else Target(ref, sample_rate)


def metrics(est: np.ndarray, ref: np.ndarray | Target, sample_rate: float,
            only: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Every metric of ``METRICS`` (or those in ``only``: the MR-STFT is most of the cost)."""
    unknown = set(only) - set(METRICS)
    if unknown:
        raise ValueError(f"metrics: unknown {sorted(unknown)}; known {list(METRICS)}")
    target = _target(ref, sample_rate)
    n = min(est.shape[-1], target.audio.shape[-1])
    e = _tensor(est, n)
    out: dict[str, float] = {}
    with torch.no_grad():
        if "band_error_db" in only:
            out["band_error_db"] = float(losses.band_db(e.mean(dim=0, keepdim=True),
                                                        target.mid(n), sample_rate))
        if "mrstft" in only:
            out["mrstft"] = float(losses.mrstft(e, target.stereo(n)))
    if "loudness_error_lu" in only:
        out["loudness_error_lu"] = abs(_lufs(est[:, :n], sample_rate) - target.lufs(n))
    if "plr_error_db" in only or "crest_error_db" in only:
        plr_e, crest_e = _plr_crest(est[:, :n], sample_rate)
        plr_r, crest_r = target.plr_crest(n)
        out.update(plr_error_db=abs(plr_e - plr_r), crest_error_db=abs(crest_e - crest_r))
    if "width_error_db" in only:
        out["width_error_db"] = abs(_width_db(est[:, :n]) - target.width_db(n))
    return {k: out[k] for k in METRICS if k in only}


def matched_band_error(est: np.ndarray, ref: np.ndarray | Target, sample_rate: float) -> float:
    """``band_error_db`` of ``est`` brought to the loudness of ``ref`` first: the tone and
    balance alone, whatever the loudness (what ``held_out_score`` chooses the strengths by)."""
    target = _target(ref, sample_rate)
    n = min(est.shape[-1], target.audio.shape[-1])
    gain_db = target.lufs(n) - _lufs(est[:, :n], sample_rate)
    e = torch.from_numpy(np.ascontiguousarray(est[:, :n] * 10 ** (gain_db / 20), dtype=np.float32))
    with torch.no_grad():
        return float(losses.band_db(e.mean(dim=0, keepdim=True), target.mid(n), sample_rate))


def plain_sum(stems: np.ndarray, ref: np.ndarray, sample_rate: float) -> np.ndarray:
    total = stems.sum(axis=0)
    gain_db = _lufs(ref, sample_rate) - _lufs(total, sample_rate)
    return (total * 10 ** (gain_db / 20)).astype(np.float32)


def automix(stems: np.ndarray, sample_rate: float) -> np.ndarray:
    staged = [s * 10 ** (stage_gain_db(_lufs(s, sample_rate)) / 20) for s in stems]
    total = np.sum(staged, axis=0).astype(np.float32)
    total *= 10 ** ((AUTOMIX_LUFS - _lufs(total, sample_rate)) / 20)
    lim = Limiter(sample_rate, ceiling_db=-1.0)
    out = lim.process(np.concatenate([total, np.zeros((2, lim.latency_samples), np.float32)],
                                     axis=1).astype(np.float32), sample_rate)
    return out[:, lim.latency_samples:]
