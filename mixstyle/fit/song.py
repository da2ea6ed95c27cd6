"""Recover the console settings that turn a past song's stems into the producer's mix.

Analysis by synthesis on the most active excerpt of the song (building blocks in
``mixstyle.fit.transfer``, ``.eq`` and ``.compressor``):

1. Curve fit: each stem's complex transfer to the mix (least squares per STFT bin), its pan, and
   our EQ fitted to the transfer's log-magnitude and phase from several starts; of the best few
   EQ fits, the one whose render explains the stem's share of the mix best is kept (this picks
   which filters are in use: high-pass or low shelf, low-pass or high shelf...).
2. ``config.rounds`` rounds of coordinate descent in the time domain, stem by stem (loudest
   first), against the stem's own contribution: the mix minus the other stems' current renders.
   First the EQ and L/R gains by Levenberg-Marquardt on the waveform (``refine_eq``, the
   compressor's gain held), then the compressor (``compressor.fit_compressor``).

Nothing here assumes the producer used our console: on a mix made with other EQ and compressor
designs the fit is the closest setting of ours, and ``FitResult`` says how close, measured on a
render of the fitted setting through the torch twin (waveform error, MR-STFT, band levels).

The input trim of every track is not fitted: it is the console's gain staging (each stem trimmed
to ``staging.STAGE_LUFS``), so that compressor thresholds and faders mean the same thing in
every song. The master bus of a *mix* is left neutral except its loudness target and limiter
ceiling, which are read off the mix itself.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from numba import njit
from threadpoolctl import threadpool_limits

from dsp.biquad import design, tick_state_last
from dsp.gain import FASTMATH
from dsp.errors import AudioInputError, ParameterError
from dsp.loudness import integrated_loudness
from dsp.params import MASTER, TRACK, TRACK_NAMES, ConsoleSetting, TrackSetting, neutral, spec, \
    validate
from dsp.strip import SECTIONS as STRIP_SECTIONS
from dsp.validate import check_audio, check_sample_rate
from mixstyle.fit import compressor as comp
from mixstyle.fit import eq as feq
from mixstyle.fit import transfer as tf
from mixstyle.twin import console as twin, losses
from mixstyle.fit.staging import stage_gain_db

@dataclass(frozen=True)
class FitConfig:
    seconds: float = 6.0        # excerpt length fitted (the most active region of the song)
    rounds: int = 2             # time-domain rounds (per stem: EQ on the waveform, compressor)
    eq_iters: int = 30          # Levenberg-Marquardt iterations of the EQ curve fit (no audio)
    comp_evals: int = 240       # compressor search evaluations per stem (a third later)
    steps: int = 6              # Levenberg-Marquardt steps of the waveform EQ fit, per stem/round
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not 0.5 <= self.seconds <= 120:
            raise ParameterError(f"FitConfig.seconds = {self.seconds!r}: allowed 0.5 .. 120 s")
        for name, lo in (("rounds", 1), ("eq_iters", 1), ("comp_evals", 20), ("steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ParameterError(f"FitConfig.{name} = {value!r}: must be an integer >= {lo}")


@dataclass(frozen=True)
class FitResult:
    setting: ConsoleSetting
    error_db: float             # 20 log10(rms(render - mix) / rms(mix)) on the fitted excerpt
    mrstft: float
    band_error_db: float        # mean |band level difference| (dB) on the excerpt
    start_s: float
    seconds: float
    loss_history: tuple[float, ...] = field(repr=False, default=())   # kept for old callers

    def quality(self) -> dict[str, float]:
        return {"error_db": round(self.error_db, 2), "mrstft": round(self.mrstft, 4),
                "band_error_db": round(self.band_error_db, 3),
                "excerpt_start_s": round(self.start_s, 2), "excerpt_s": round(self.seconds, 2)}


def choose_excerpt(stems: np.ndarray, sample_rate: float, seconds: float) -> tuple[int, int]:
    """Window where the most stems play, loudest first. Returns (start, stop) samples."""
    n = stems.shape[-1]
    length = min(n, int(round(seconds * sample_rate)))
    if length >= n:
        return 0, n
    hop = max(1, int(0.25 * sample_rate))
    frames = n // hop
    energy = np.stack([np.add.reduceat((s.astype(np.float64) ** 2).sum(axis=0),
                                       np.arange(0, frames * hop, hop))[:frames] for s in stems])
    active = energy > (energy.max(axis=1, keepdims=True) * 1e-4)
    win = max(1, length // hop)
    best, best_key = 0, (-1.0, -1.0)
    for f in range(0, frames - win + 1):
        key = (float(active[:, f:f + win].mean()), float(energy[:, f:f + win].sum()))
        if key > best_key:
            best, best_key = f, key
    start = min(best * hop, n - length)
    return start, start + length


# ------------------------------------------------------------------------- identification

_SECTIONS = tuple((int(kind), TRACK_NAMES[fi], TRACK_NAMES[gi] if gi >= 0 else None,
                   TRACK_NAMES[qi] if qi >= 0 else None) for kind, fi, gi, qi in STRIP_SECTIONS)
_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_FD_STEP = 1e-6


def _sos_row(section: tuple, values: dict[str, float], sample_rate: float) -> tuple:
    kind, f, g, q = section
    b0, b1, b2, a1, a2 = design(kind, float(values[f]), float(values[g]) if g else 0.0,
                                float(values[q]) if q else 0.7071, sample_rate)
    return (b0, b1, b2, 1.0, a1, a2)


# The kernels below are latency bound per filter (each sample's output feeds the next), so each
# pass runs four independent recursions side by side: both channels of two sections (or of two
# Jacobian columns). The CPU overlaps them; float64 state, transposed direct form II.

@njit(inline="always", fastmath=FASTMATH)
def _tdf2(v, c, z1, z2):
    """One sample of a biquad ``c`` (b0 b1 b2 a1 a2) -> (output, new z1, new z2): dsp's step
    (``tick_state_last``: the order the fits were made with, see there)."""
    return tick_state_last(v, c[0], c[1], c[2], c[3], c[4], z1, z2)


@njit(cache=True, fastmath=FASTMATH)
def _section_pair(x, c0, c1, y):
    """``y = c1(c0(x))`` for stereo ``x`` (2, n) float64; ``c`` = b0 b1 b2 a1 a2."""
    p = (c0[0], c0[1], c0[2], c0[3], c0[4])
    q = (c1[0], c1[1], c1[2], c1[3], c1[4])
    zl1 = zl2 = zr1 = zr2 = 0.0   # section c0, left / right
    wl1 = wl2 = wr1 = wr2 = 0.0   # section c1
    for n in range(x.shape[1]):
        ol, zl1, zl2 = _tdf2(x[0, n], p, zl1, zl2)
        orr, zr1, zr2 = _tdf2(x[1, n], p, zr1, zr2)
        y[0, n], wl1, wl2 = _tdf2(ol, q, wl1, wl2)
        y[1, n], wr1, wr2 = _tdf2(orr, q, wr1, wr2)


_PASS = np.array([1.0, 0.0, 0.0, 0.0, 0.0])


def _filter(rows: list, x: np.ndarray) -> np.ndarray:
    """``x`` (2, n) through the sections ``rows`` (b0 b1 b2 1 a1 a2 each) -> (2, n) float64."""
    if not rows:
        return x
    # C order (the column pick alone gives a strided array): one compiled _section_pair
    coeffs = np.ascontiguousarray(np.array(rows, dtype=np.float64)[:, [0, 1, 2, 4, 5]])
    y = np.empty(x.shape, dtype=np.float64)
    src = np.ascontiguousarray(x, dtype=np.float64)
    for k in range(0, len(coeffs), 2):
        _section_pair(src, coeffs[k], coeffs[k + 1] if k + 1 < len(coeffs) else _PASS, y)
        src = y
    return y


@njit(cache=True, fastmath=FASTMATH)
def _fd_pair(u, e, c, scale, out_a, out_b):
    """``out_a`` / ``out_b`` = (biquad(u) - e) * scale with coefficient rows c[0] / c[1]."""
    p = (c[0, 0], c[0, 1], c[0, 2], c[0, 3], c[0, 4])
    q = (c[1, 0], c[1, 1], c[1, 2], c[1, 3], c[1, 4])
    zl1 = zl2 = zr1 = zr2 = 0.0
    wl1 = wl2 = wr1 = wr2 = 0.0
    for n in range(u.shape[1]):
        ol, zl1, zl2 = _tdf2(u[0, n], p, zl1, zl2)
        orr, zr1, zr2 = _tdf2(u[1, n], p, zr1, zr2)
        yl, wl1, wl2 = _tdf2(u[0, n], q, wl1, wl2)
        yr, wr1, wr2 = _tdf2(u[1, n], q, wr1, wr2)
        out_a[0, n] = (ol - e[0, n]) * scale[0, n]
        out_a[1, n] = (orr - e[1, n]) * scale[1, n]
        out_b[0, n] = (yl - e[0, n]) * scale[0, n]
        out_b[1, n] = (yr - e[1, n]) * scale[1, n]


def _fd_columns(u: np.ndarray, e: np.ndarray, coeffs: np.ndarray, scale: np.ndarray,
                out: np.ndarray) -> None:
    """``out[k] = (biquad_k(u) - e) * scale`` for each row ``k`` of ``coeffs`` (b0 b1 b2 a1
    a2); ``u``, ``e``, ``scale`` (2, n) float64, two columns per pass."""
    coeffs = np.ascontiguousarray(coeffs)   # one layout: one compiled _fd_pair
    for k in range(0, len(coeffs), 2):
        if k + 1 < len(coeffs):
            _fd_pair(u, e, coeffs[k:k + 2], scale, out[k], out[k + 1])
        else:  # an odd last column: computed twice into the same row
            _fd_pair(u, e, coeffs[[k, k]], scale, out[k], out[k])


def _nudge(name: str, value: float, step: float) -> float:
    """``value`` moved by ``step`` in logit-of-normalised units, clipped to the table."""
    p = spec(TRACK, name)
    u = float(np.clip(p.normalise(value), 1e-6, 1 - 1e-6))
    return float(np.clip(p.denormalise(1 / (1 + math.exp(-(math.log(u / (1 - u)) + step)))),
                         p.min, p.max))


STEP_GAIN = 2e-6   # refine_eq stops when a step explains less than this share of the stem's energy


def refine_eq(stem: np.ndarray, target: np.ndarray, values: dict[str, float],
              gains: tuple[float, float], sample_rate: float, comp_gain: np.ndarray | None = None,
              iters: int = 6, held_to: dict[str, float] | None = None
              ) -> tuple[dict[str, float], tuple[float, float], float]:
    """Levenberg-Marquardt on the waveform: ``gains * comp_gain * EQ(stem) ~ target`` (2, n).

    Only the parameters of EQ sections that do something move (the curve fit chose which
    filters are in use); the compressor gain per sample is held fixed. Jacobian columns by
    finite differences in the table's logit units, one biquad re-run per column. At most
    ``iters`` steps; it stops after a step that explains less than ``STEP_GAIN`` of the stem's
    own energy (a quiet stem would otherwise go on in directions the audio hardly sees).

    No band gain grows beyond both the curve fit's (``held_to``, default ``values``) + 1 dB
    and its free zone (``eq.hold_gains``): the curve fit has weighed each boost against the
    gain penalty; the waveform, which has no such weight, would otherwise push a band the stem
    hardly plays to +12 dB to explain a few samples of another source, or a broad boost in for
    the fader. Returns (EQ values, L/R gains, squared error)."""
    x, t = stem.astype(np.float64), target.astype(np.float64)
    m = 1.0 if comp_gain is None else comp_gain.astype(np.float64)
    vals, a = dict(values), np.array(gains, dtype=np.float64)
    held = {n: float((values if held_to is None else held_to)[n])
            for n in feq.EQ_NAMES if n.endswith("gain_db")}

    def state(v: dict[str, float], gain: np.ndarray):
        rows = [_sos_row(s, v, sample_rate) for s in _SECTIONS]
        e = _filter([r for r in rows if r != _IDENTITY], x)
        part = gain[:, None] * m * e        # the stem's contribution
        return rows, e, part, t - part

    rows, e, _, r = state(vals, a)
    cost, mu = float((r * r).sum()), 1e-3
    jac = np.empty((0, 2, x.shape[-1]))
    for _ in range(iters):
        active = [k for k, row in enumerate(rows) if row != _IDENTITY]
        names = [(k, name) for k in active for name in _SECTIONS[k][1:] if name is not None]
        if len(jac) != len(names) + 2:   # one buffer per call: no new pages every iteration
            jac = np.empty((len(names) + 2, 2, x.shape[-1]))
        scale = np.ascontiguousarray(np.broadcast_to(a[:, None] * m / _FD_STEP, e.shape))
        col = 0
        for k in active:
            u = _filter([rows[j] for j in active if j != k], x)
            moved = [_sos_row(_SECTIONS[k], dict(vals, **{n: _nudge(n, vals[n], _FD_STEP)}),
                              sample_rate) for kk, n in names if kk == k]
            coeffs = np.array(moved)[:, [0, 1, 2, 4, 5]]
            _fd_columns(u, e, coeffs, scale, jac[col:col + len(moved)])
            col += len(moved)
        jac[-2:] = 0.0
        np.multiply(m, e[0], out=jac[-2, 0])
        np.multiply(m, e[1], out=jac[-1, 1])
        flat = jac.reshape(len(jac), -1)
        jtj, jtr = flat @ flat.T, flat @ r.ravel()
        accepted = False
        curv = np.diag(jtj)
        floor = feq.DAMPING_FLOOR * curv.max() + 1e-300
        for _ in range(4):
            damped = jtj + np.diag(mu * curv + floor)
            delta = np.linalg.solve(damped, jtr)
            trial = feq.hold_gains(dict(vals, **{n: _nudge(n, vals[n],
                                                           float(np.clip(d, -1.0, 1.0)))
                                                 for (_, n), d in zip(names, delta)}), held)
            a_trial = np.maximum(a + delta[-2:], 0.0)
            rows_t, e_t, part, r_t = state(trial, a_trial)
            cost_t = float((r_t * r_t).sum())
            if cost_t < cost:
                accepted = cost - cost_t > STEP_GAIN * float((part * part).sum())  # go on?
                vals, a, rows, e, r, cost, mu = trial, a_trial, rows_t, e_t, r_t, cost_t, mu / 3
                break
            mu *= 4.0
        if not accepted:
            break
    return vals, (float(a[0]), float(a[1])), cost


def render_eq(stems: np.ndarray, eq_params: Sequence[dict[str, float]], sample_rate: float
              ) -> np.ndarray:
    """Each stem (N, 2, n) through its strip EQ (float64) -> (N, 2, n) float64."""
    out = np.empty(stems.shape, dtype=np.float64)
    for i, values in enumerate(eq_params):
        rows = [_sos_row(s, values, sample_rate) for s in _SECTIONS]
        out[i] = _filter([r for r in rows if r != _IDENTITY], stems[i].astype(np.float64))
    return out


def _gains_to_params(gains: tuple[float, float]) -> dict[str, float]:
    """Linear L/R gains after the compressor -> pan, output_gain_db (and make-up beyond it)."""
    out_spec, makeup_spec = spec(TRACK, "output_gain_db"), spec(TRACK, "comp_makeup_db")
    a_l, a_r = max(gains[0], 0.0), max(gains[1], 0.0)
    k = math.sqrt((a_l * a_l + a_r * a_r) / 2.0)
    level_db = 20.0 * math.log10(max(k, 1e-6))
    makeup = float(np.clip(level_db - out_spec.max, 0.0, makeup_spec.max))
    theta = math.atan2(a_r, a_l) if k > 0 else math.pi / 4
    return {"pan": float(np.clip(4.0 * theta / math.pi - 1.0, -1.0, 1.0)),
            "output_gain_db": float(np.clip(level_db - makeup, out_spec.min, out_spec.max)),
            "comp_makeup_db": makeup}


def _curve_fit(stems: np.ndarray, mix: np.ndarray, sample_rate: float, config: FitConfig
               ) -> tuple[list[list[feq.EqFit]], list[float]]:
    """Per stem the best few EQ fits to its measured transfer (eq.rank_eq) and its pan."""
    h, power, var = (t.numpy() for t in tf.transfer_functions(tf.stft(stems), tf.stft(mix)))
    pans, curves, variances = zip(*(tf.prepan_curve(h[i], power[i], var[i])
                                    for i in range(stems.shape[0])))
    centres, bands, weights = tf.band_average(np.array(curves), np.array(variances),
                                              power.sum(axis=1), sample_rate)
    fits = feq.fit_eq(centres, bands, weights, sample_rate, config.eq_iters)
    return [feq.rank_eq(c) for c in fits], list(pans)


def _ls_gains(eq_out: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Best non-negative L/R gains for ``gains * eq_out ~ target``, and the squared error."""
    dot = np.maximum((eq_out * target).sum(axis=1), 0.0)
    gains = dot / np.maximum((eq_out * eq_out).sum(axis=1), 1e-30)
    return gains, float((target * target).sum() - (gains * dot).sum())


def identify(stems: np.ndarray, mix: np.ndarray, sample_rate: float,
             config: FitConfig = FitConfig(), progress: Callable[[], None] | None = None
             ) -> list[dict[str, float]]:
    """Per stem (staged, (N, 2, n)) the fitted track parameters except ``input_gain_db``."""
    n_stems = stems.shape[0]
    ranked, pans = _curve_fit(stems, mix, sample_rate, config)
    eq_values = [r[0].params for r in ranked]
    eq_out = render_eq(stems, eq_values, sample_rate)
    gains = [twin.pan_gains(torch.tensor([pan], dtype=torch.float64))[0].numpy()
             * 10.0 ** (r[0].gain_db / 20.0) for pan, r in zip(pans, ranked)]
    contrib = np.stack([g[:, None] * e for g, e in zip(gains, eq_out)])
    order = np.argsort(-np.square(stems, dtype=np.float64).sum(axis=(1, 2)))
    ref = mix.astype(np.float64)
    for i in order:  # which of the curve fits explains the stem's share of the mix best
        target = ref - (contrib.sum(axis=0) - contrib[i])
        tried = [(render_eq(stems[i:i + 1], [c.params], sample_rate)[0], c.params)
                 for c in ranked[i]]
        scored = [(_ls_gains(e, target), e, v) for e, v in tried]
        (gains[i], _), eq_out[i], eq_values[i] = min(scored, key=lambda s: s[0][1])
        contrib[i] = gains[i][:, None] * eq_out[i]
    comp_gain = np.ones((n_stems, stems.shape[-1]))
    comps: list[dict[str, float]] = [comp.uncompressed() for _ in range(n_stems)]
    curve_fit = list(eq_values)  # what every round's polish is held to
    for rnd in range(config.rounds):
        # what no gain envelope of any stem explains (a reverb or delay return printed in the
        # mix): a compressor is judged on what is left beside it
        floor = comp.gain_envelope_floor(eq_out, ref, sample_rate)
        for i in order:
            target = ref - (contrib.sum(axis=0) - contrib[i])
            eq_values[i], g, _ = refine_eq(stems[i], target, eq_values[i], tuple(gains[i]),
                                           sample_rate, comp_gain[i], config.steps,
                                           held_to=curve_fit[i])
            eq_out[i] = render_eq(stems[i:i + 1], eq_values[i:i + 1], sample_rate)[0]
            c = comp.fit_compressor(eq_out[i], target, sample_rate, comps[i],
                                    config.comp_evals // (3 if rnd else 1), floor=floor)
            comps[i], gains[i] = c.values, np.array(c.gains)
            comp_gain[i] = 10.0 ** (comp.gain_curve_db(comp.level_db(eq_out[i]), c.values,
                                                     sample_rate) / 20.0)
            contrib[i] = gains[i][:, None] * comp_gain[i] * eq_out[i]
            if progress is not None:
                progress()
    return [dict(eq_values[i], **comps[i], **_gains_to_params(tuple(gains[i])))
            for i in range(n_stems)]


# ------------------------------------------------------------------------- result

def _check_inputs(stems: np.ndarray, mix: np.ndarray, sample_rate: float,
                  names: Sequence[str], roles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(stems, np.ndarray) or stems.ndim != 3 or stems.shape[1] != 2:
        raise AudioInputError(f"fit stems must be a numpy array shaped (stems, 2, samples), got "
                              f"{getattr(stems, 'shape', type(stems).__name__)}")
    mix = check_audio(mix, "fit mix", channels=2)
    stems = np.stack([check_audio(s, f"fit stem {names[i] if i < len(names) else i!r}", 2)
                      for i, s in enumerate(stems)])
    if stems.shape[-1] != mix.shape[-1]:
        raise AudioInputError(f"fit: stems have {stems.shape[-1]} samples but the mix has "
                              f"{mix.shape[-1]}; align them first (mixstyle.sessions.align)")
    if len(names) != stems.shape[0] or len(roles) != stems.shape[0]:
        raise ParameterError(f"fit: {stems.shape[0]} stems need as many names and roles, got "
                             f"{len(names)} names and {len(roles)} roles")
    if stems.shape[-1] < tf.N_FFT:
        raise AudioInputError(f"fit: {stems.shape[-1]} samples is too short; need at least "
                              f"{tf.N_FFT}")
    return stems, mix


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch and numpy's BLAS on one thread: sums and least-squares solutions depend on how
    many threads split them, and a fit must come out the same in a worker process, in the main
    process and on a machine with more cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def fit_mix(stems: np.ndarray, mix: np.ndarray, sample_rate: float,
            names: Sequence[str], roles: Sequence[str], config: FitConfig = FitConfig(),
            progress: Callable[[], None] | None = None) -> FitResult:
    """Fit one song. ``stems`` (N, 2, T) float32 aligned with ``mix`` (2, T); runs on one
    thread (the same result everywhere; ``learn`` fits songs in parallel processes)."""
    with one_thread():
        return _fit_mix(stems, mix, sample_rate, names, roles, config, progress)


def _fit_mix(stems: np.ndarray, mix: np.ndarray, sample_rate: float,
             names: Sequence[str], roles: Sequence[str], config: FitConfig,
             progress: Callable[[], None] | None) -> FitResult:
    sample_rate = check_sample_rate(sample_rate)
    stems, mix = _check_inputs(stems, mix, sample_rate, names, roles)
    torch.manual_seed(config.seed)
    n = stems.shape[0]
    stage = np.array([stage_gain_db(integrated_loudness(s, sample_rate)) for s in stems])
    start, stop = choose_excerpt(stems, sample_rate, config.seconds)
    ex = (stems[:, :, start:stop] * (10 ** (stage / 20))[:, None, None]).astype(np.float32)
    ref_np = np.ascontiguousarray(mix[:, start:stop], dtype=np.float32)
    values = identify(ex, ref_np, sample_rate, config, progress)

    x = torch.from_numpy(np.ascontiguousarray(ex))[None]          # staged; input gain = 0 here
    ref = torch.from_numpy(ref_np)[None]
    master = {k: v for k, v in neutral(MASTER).items() if v is not None}
    tracks_t = {k: torch.tensor([[v[k] for v in values]]) for k in values[0]}
    with torch.no_grad():
        y = twin.console(x, sample_rate, tracks_t, master)
        diff = float((y - ref).double().pow(2).mean())
        error_db = 10 * math.log10(diff / (float(ref.double().pow(2).mean()) + 1e-20) + 1e-20)
        mr = float(losses.mrstft(y, ref))
        band = float(losses.band_db(y, ref, sample_rate))
    tracks = []
    for i in range(n):
        track_values = dict(values[i], input_gain_db=float(stage[i]))
        tracks.append(TrackSetting(name=names[i], role=roles[i],
                                   params=validate(TRACK, track_values,
                                                   f"fit of track {names[i]!r}")))
    setting = ConsoleSetting(tuple(tracks), validate(MASTER, mix_master(mix, sample_rate)))
    return FitResult(setting, error_db, mr, band, start / sample_rate,
                     (stop - start) / sample_rate)


def mix_master(mix: np.ndarray, sample_rate: float) -> dict[str, float | None]:
    """Master settings read off a finished mix: its loudness and its peak as the ceiling."""
    values = dict(neutral(MASTER))
    loud = integrated_loudness(mix, sample_rate)
    target = spec(MASTER, "target_lufs")
    values["target_lufs"] = float(np.clip(loud, target.min, target.max)) if math.isfinite(loud) \
        else None
    peak_db = 20 * math.log10(float(np.max(np.abs(mix))) + 1e-9)
    ceiling = spec(MASTER, "limiter_ceiling_db")
    values["limiter_ceiling_db"] = float(np.clip(math.ceil(peak_db * 10) / 10, ceiling.min,
                                                 ceiling.max))
    return values
