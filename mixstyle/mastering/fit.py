"""Recover a producer's master-bus setting from one mix and its master, by analysis.

1. EQ: long-term power spectra of mix and master (STFT). Compression and limiting scale whole
   frames, so a per-frame broadband gain is estimated and divided out (alternating least squares
   with the per-bin transfer) before the ratio master/mix is taken. The ratio, in 1/6-octave
   bands and lightly smoothed, is fitted by the master's parametric EQ (low shelf, peak1..3,
   high shelf; ``dsp.biquad`` responses) plus a broadband gain, from several peak layouts -- the
   curve-fit approach of ``mixstyle.fit.eq``, over the master chain and without torch.
2. Glue compression by synthesis: the EQ'd mix goes through candidate compressors, a gain and
   the limiter (set for the master's loudness and peak); the threshold x ratio whose 50 ms frame
   levels follow the master's best (how much crest factor and loudness range shrank) wins,
   if it explains the master clearly better than the limiter alone.
3. Loudness target = the master's integrated loudness; limiter ceiling = its true peak.
   ``gain_db`` is the gain our own chain needs to reach that loudness (a master of the mix with
   the recovered setting, which also checks it).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import scipy.optimize

from dsp.errors import AudioInputError, ParameterError
from dsp.compressor import Compressor
from dsp.limiter import Limiter
from dsp.loudness import integrated_loudness, true_peak_dbtp
from dsp.eq import eq_curve_db
from dsp.params import MASTER, MASTER_PARAMS, neutral, spec, validate
from dsp.strip import ChannelStrip
from dsp.validate import check_audio, check_sample_rate
from mixstyle.sessions.align import loudest_window

N_FFT = 4096
HOP = 2048
FRAME_SECONDS = 0.05         # level frames of the glue-compression fit
GLUE_SECONDS = 15.0          # the loudest this-many seconds are used for it
GLUE_RATIOS = (1.5, 2.0, 3.0, 5.0, 10.0)
GLUE_OFFSETS_DB = (-3.0, -6.0, -10.0, -15.0, -20.0, -26.0, -32.0)
GLUE_LOUDNESS_LU = 0.3       # a candidate's loudness is corrected once if further off
GLUE_MIN_GAIN = 0.1          # relative error reduction that counts as "compressed"
ATTACK_MS, RELEASE_MS, KNEE_DB = 30.0, 200.0, 6.0  # the table's glue defaults
ALS_ROUNDS = 4               # alternating least squares rounds (transfer <-> frame gains)
MIN_SECONDS = 3.0
BANDS_PER_OCTAVE = 6
EQ_NAMES = tuple(p.name for p in MASTER_PARAMS if p.processor in ("low_shelf", "peak",
                                                                  "high_shelf"))
PEAK_STARTS_HZ = ((120.0, 700.0, 3500.0), (250.0, 1500.0, 6000.0), (60.0, 400.0, 2500.0))
EQ_GAIN_PENALTY = 1e-3       # per dB^2 of band gain, against the weighted mean squared error
EQ_MAX_EVALS = 400
X_SCALE = 0.1
_SMOOTH = np.array([0.25, 0.5, 0.25])


def _check_pair(mix: object, master: object, sample_rate: object) -> tuple[np.ndarray,
                                                                            np.ndarray, float]:
    sr = check_sample_rate(sample_rate)
    x = check_audio(mix, "mix", channels=2)
    y = check_audio(master, "master", channels=2)
    if x.shape != y.shape:
        raise AudioInputError(f"mix and master must have the same shape (aligned), got mix "
                              f"{x.shape} and master {y.shape}")
    if x.shape[1] < MIN_SECONDS * sr:
        raise AudioInputError(f"mix is {x.shape[1] / sr:.2f} s long: fitting a master needs at "
                              f"least {MIN_SECONDS:g} s")
    for name, a in (("mix", x), ("master", y)):
        if not math.isfinite(integrated_loudness(a, sr)):
            raise AudioInputError(f"{name} is silent (below the -70 LUFS gate): nothing to fit")
    return x, y, sr


def _power_frames(x: np.ndarray) -> np.ndarray:
    """(2, n) -> Hann-windowed power spectra summed over channels, (frames, N_FFT/2+1)."""
    n = x.shape[1]
    frames = 1 + max(0, (n - N_FFT) // HOP)
    win = np.hanning(N_FFT).astype(np.float32)
    out = np.zeros((frames, N_FFT // 2 + 1), dtype=np.float64)
    for c in range(x.shape[0]):
        seg = np.lib.stride_tricks.sliding_window_view(x[c], N_FFT)[::HOP][:frames]
        out += np.abs(np.fft.rfft(seg * win, axis=1)) ** 2
    return out


def transfer_power(mix: np.ndarray, master: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin power transfer |H|^2 with frame gains divided out, and the mix's mean power.

    Model ``Y(t, f) = g(t) |H(f)|^2 X(t, f)`` (powers); alternating least squares, ``g``
    normalised to an energy-weighted mean of 1 so the broadband level stays in ``H``.
    """
    px, py = _power_frames(mix), _power_frames(master)
    e = px.sum(axis=1)
    live = e > e.max() * 1e-6
    px, py = px[live], py[live]
    g = np.ones(px.shape[0])
    h = np.ones(px.shape[1])
    tiny = 1e-30
    for _ in range(ALS_ROUNDS):
        h = py.sum(axis=0) / (g @ px + tiny)
        g = py.sum(axis=1) / (px @ h + tiny)
        g /= (g * px.sum(axis=1)).sum() / px.sum() + tiny
    h = py.sum(axis=0) / (g @ px + tiny)
    return h, px.mean(axis=0)


def band_centres(sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """1/6-octave bands from 20 Hz to min(20 kHz, 0.45 sr): (centres_hz, edges_hz)."""
    top = min(20000.0, 0.45 * sample_rate)
    n = int(math.floor(math.log2(top / 20.0) * BANDS_PER_OCTAVE))
    edges = 20.0 * 2.0 ** (np.arange(n + 1) / BANDS_PER_OCTAVE)
    return np.sqrt(edges[:-1] * edges[1:]), edges


def eq_target_db(mix: np.ndarray, master: np.ndarray, sample_rate: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1/6-octave band centres (Hz), smoothed master/mix level ratio (dB), weights 0..1.

    A band's level is the mix-power-weighted mean of ``|H|^2``; its weight is 0..1 by the mix's
    level there (0 at 60 dB under its loudest band, 1 from 20 dB under)."""
    h, power = transfer_power(mix, master)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    centres, edges = band_centres(sample_rate)
    band = np.searchsorted(edges, freqs, side="right") - 1
    keep = [np.flatnonzero(band == i) for i in range(len(centres))]
    ok = np.array([k.size > 0 for k in keep])
    p = power + 1e-30
    level = np.array([10 * np.log10((h[k] * p[k]).sum() / p[k].sum()) if k.size else 0.0
                      for k in keep])
    mean = np.array([p[k].mean() if k.size else 1e-30 for k in keep])
    weight = np.clip((10 * np.log10(mean / mean.max()) + 60.0) / 40.0, 0.0, 1.0) * ok
    centres, level, weight = centres[ok], level[ok], weight[ok]
    smooth = np.convolve(np.pad(level, 1, mode="edge"), _SMOOTH, mode="valid")
    return centres, smooth, weight


def master_eq_db(values: Mapping[str, Any], freqs_hz: np.ndarray, sample_rate: float
                 ) -> np.ndarray:
    """Magnitude response (dB) of the master EQ in ``values`` at ``freqs_hz``."""
    return eq_curve_db(MASTER, {k: values[k] for k in EQ_NAMES}, freqs_hz, sample_rate)


def fit_master_eq(centres: np.ndarray, level_db: np.ndarray, weight: np.ndarray,
                  sample_rate: float) -> tuple[dict[str, float], float, float]:
    """Master EQ + broadband gain fitted to one curve; returns (eq params, gain_db, rms dB).

    Weighted least squares (scipy, bounded in the table's normalised units) from several peak
    layouts; a small penalty on band gains sends level to the broadband gain."""
    specs = [spec(MASTER, name) for name in EQ_NAMES]
    w = np.asarray(weight, dtype=np.float64) + 1e-3
    sw = np.sqrt(w / w.sum())
    gains = np.array([p.name.endswith("gain_db") for p in specs])
    target = np.asarray(level_db, dtype=np.float64)

    def values(u: np.ndarray) -> dict[str, float]:
        return {p.name: float(np.clip(p.denormalise(x), p.min, p.max)) for p, x in zip(specs, u)}

    def residual(v: np.ndarray) -> np.ndarray:
        vals = values(v[:-1])
        err = sw * (master_eq_db(vals, centres, sample_rate) + v[-1] - target)
        pen = math.sqrt(EQ_GAIN_PENALTY) * np.array([vals[p.name] for p in specs])[gains]
        return np.concatenate([err, pen])

    g0 = float((w * target).sum() / w.sum())
    lo = np.r_[np.zeros(len(specs)), -60.0]
    hi = np.r_[np.ones(len(specs)), 60.0]
    best = None
    for peaks in PEAK_STARTS_HZ:
        start = {p.name: p.default for p in specs}
        start.update(peak1_freq_hz=peaks[0], peak2_freq_hz=peaks[1], peak3_freq_hz=peaks[2])
        v0 = np.r_[[p.normalise(start[p.name]) for p in specs], g0]
        res = scipy.optimize.least_squares(residual, v0, bounds=(lo, hi), x_scale=X_SCALE,
                                           max_nfev=EQ_MAX_EVALS)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    fitted = values(best.x[:-1])
    err = master_eq_db(fitted, centres, sample_rate) + best.x[-1] - target
    return fitted, float(best.x[-1]), float(np.sqrt((w * err ** 2).sum() / w.sum()))


def _frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    """Per frame rms level (dB) over both channels."""
    k = x.shape[1] // frame
    seg = x[:, :k * frame].reshape(x.shape[0], k, frame).astype(np.float64)
    return 10 * np.log10((seg ** 2).mean(axis=(0, 2)) + 1e-20)


class _GlueSearch:
    """Score a glue setting by synthesis: EQ'd mix -> compressor -> gain -> limiter (at the
    master's sample peak, gain set for the master's loudness), frame levels against the
    master's (energy-weighted rms dB, mean offset removed)."""

    def __init__(self, mix_eq: np.ndarray, master: np.ndarray, sample_rate: float) -> None:
        a, b = loudest_window(master.mean(axis=0), sample_rate, GLUE_SECONDS)
        self.x, self.sr = np.ascontiguousarray(mix_eq[:, a:b]), sample_rate
        y = master[:, a:b]
        self.frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
        self.ref_db = _frame_db(y, self.frame)
        w = 10 ** (self.ref_db / 10)
        self.w = np.where(self.ref_db > self.ref_db.max() - 50, w, 0.0) / (w.sum() + 1e-30)
        self.target = integrated_loudness(y, sample_rate)
        lim = spec(MASTER, "limiter_ceiling_db")
        peak = float(np.abs(y).max())
        self.ceiling = float(np.clip(20 * math.log10(max(peak, 1e-9)), lim.min, lim.max))
        self.scores: dict[tuple[float, float], float] = {}
        self.loss = 0.0

    def score(self, threshold_db: float, ratio: float) -> float:
        key = (round(threshold_db, 3), round(ratio, 3))
        if key not in self.scores:
            c = Compressor(threshold_db, ratio, ATTACK_MS, RELEASE_MS, KNEE_DB)
            y = c.process(self.x, self.sr)
            lim = Limiter(self.sr, self.ceiling, 50.0, 5.0)
            level = integrated_loudness(y, self.sr)
            gain = self.target - level + self.loss  # the last candidate's limiter loss
            for _ in range(2):
                z = self._limit(lim, y, gain)
                got = integrated_loudness(z, self.sr)
                if not math.isfinite(got):
                    break
                self.loss = level + gain - got
                if abs(self.target - got) <= GLUE_LOUDNESS_LU:
                    break
                gain += self.target - got
            d = _frame_db(z, self.frame) - self.ref_db
            off = float((self.w * d).sum())
            self.scores[key] = float(np.sqrt((self.w * (d - off) ** 2).sum()))
        return self.scores[key]

    @staticmethod
    def _limit(lim: Limiter, y: np.ndarray, gain_db: float) -> np.ndarray:
        lim.reset()
        lat, n = lim.latency_samples, y.shape[1]
        buf = np.zeros((2, n + lat), dtype=np.float32)
        np.multiply(y, 10.0 ** (gain_db / 20.0), out=buf[:, :n], casting="unsafe")
        lim.process_into(buf, buf)
        return buf[:, lat:]


def fit_glue(mix_eq: np.ndarray, master: np.ndarray, sample_rate: float
             ) -> tuple[float, float]:
    """(comp_threshold_db, comp_ratio) of the glue compressor, by a coarse grid of threshold
    (relative to the EQ'd mix's loud peak level) x ratio, then a finer threshold search.
    Compression must explain the master better than the limiter alone by ``GLUE_MIN_GAIN``."""
    search = _GlueSearch(mix_eq, master, sample_rate)
    t_spec, r_spec = spec(MASTER, "comp_threshold_db"), spec(MASTER, "comp_ratio")
    peak_db = 20 * math.log10(max(float(np.abs(search.x).max()), 1e-9))
    none = search.score(0.0, 1.0)
    best = (none, 0.0, 1.0)
    for r in GLUE_RATIOS:
        for off in GLUE_OFFSETS_DB:
            t = float(np.clip(peak_db + off, t_spec.min, t_spec.max))
            best = min(best, (search.score(t, r), t, r))
    _, t0, r0 = best
    for step in (2.0, 1.0):
        for t in (t0 - step, t0, t0 + step):
            t = float(np.clip(t, t_spec.min, t_spec.max))
            for r in (r0 / 1.25, r0, r0 * 1.25):
                r = float(np.clip(r, 1.0, r_spec.max))
                best = min(best, (search.score(t, r), t, r))
        _, t0, r0 = best
    err, t, r = best
    if err > none - GLUE_MIN_GAIN * none or r <= 1.0:
        return 0.0, 1.0
    return float(t), float(np.clip(r, r_spec.min, r_spec.max))


def _eq_only(params: dict[str, float], sample_rate: float) -> ChannelStrip:
    """A channel strip that runs only the master EQ (same kernel as the master bus)."""
    return ChannelStrip(sample_rate, {k: params[k] for k in EQ_NAMES})


def fit_master(mix: np.ndarray, master: np.ndarray, sample_rate: float) -> dict[str, Any]:
    """The master section of the parameter table (validated) that turns ``mix`` into ``master``.

    Both are aligned float32 ``(2, n)`` at ``sample_rate``, at least ``MIN_SECONDS`` long.
    """
    from mixstyle.mastering.chain import master_audio

    x, y, sr = _check_pair(mix, master, sample_rate)
    centres, level, weight = eq_target_db(x, y, sr)
    eq, _, _ = fit_master_eq(centres, level, weight, sr)
    x_eq = _eq_only(eq, sr).process(x, sr)
    threshold, ratio = fit_glue(x_eq, y, sr)
    values: dict[str, Any] = dict(neutral(MASTER))
    values.update(eq)
    values.update(comp_threshold_db=threshold, comp_ratio=ratio)
    lim, tgt = spec(MASTER, "limiter_ceiling_db"), spec(MASTER, "target_lufs")
    values["target_lufs"] = float(np.clip(integrated_loudness(y, sr), tgt.min, tgt.max))
    values["limiter_ceiling_db"] = float(np.clip(true_peak_dbtp(y, sr), lim.min, lim.max))
    try:
        g = spec(MASTER, "gain_db")
        values["gain_db"] = float(np.clip(master_audio(x, sr, values).master_gain_db, g.min,
                                          g.max))
    except ParameterError:
        pass  # out of the table's gain range: keep the neutral gain
    return validate(MASTER, values, "fit_master")
