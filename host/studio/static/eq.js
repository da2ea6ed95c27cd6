// EQ response math for the studio page: the RBJ cookbook biquads exactly as dsp/biquad.py
// designs them (a0-normalised, frequencies clamped to 0.45 * sample rate, shelf slope S = 1,
// high-pass bypassed at <= 10 Hz, low-pass at >= 20 kHz, a 0 dB peak/shelf is the identity) and
// the band layout of dsp/strip.py SECTIONS (the master bus has no high- or low-pass).
// tests/host/test_studio_page.py checks these curves against dsp.eq.eq_curve_db.

export const HIGHPASS = 0, LOWPASS = 1, LOW_SHELF = 2, HIGH_SHELF = 3, PEAK = 4, IDENTITY = 5;
export const HPF_BYPASS_HZ = 10.0;
export const LPF_BYPASS_HZ = 20000.0;
export const MAX_FREQ_RATIO = 0.45;
const BUTTERWORTH_Q = 0.7071;

// One band of the EQ view: the parameter names it reads (null = fixed) and its filter kind.
export const TRACK_BANDS = [
  { id: "hpf", label: "HP", kind: HIGHPASS, freq: "hpf_freq_hz", gain: null, q: "hpf_q" },
  { id: "low_shelf", label: "LS", kind: LOW_SHELF, freq: "low_shelf_freq_hz",
    gain: "low_shelf_gain_db", q: null },
  { id: "peak1", label: "1", kind: PEAK, freq: "peak1_freq_hz", gain: "peak1_gain_db", q: "peak1_q" },
  { id: "peak2", label: "2", kind: PEAK, freq: "peak2_freq_hz", gain: "peak2_gain_db", q: "peak2_q" },
  { id: "peak3", label: "3", kind: PEAK, freq: "peak3_freq_hz", gain: "peak3_gain_db", q: "peak3_q" },
  { id: "high_shelf", label: "HS", kind: HIGH_SHELF, freq: "high_shelf_freq_hz",
    gain: "high_shelf_gain_db", q: null },
  { id: "lpf", label: "LP", kind: LOWPASS, freq: "lpf_freq_hz", gain: null, q: "lpf_q" },
];
export const MASTER_BANDS = TRACK_BANDS.slice(1, -1);

export function bandsOf(section) {
  if (section === "track") return TRACK_BANDS;
  if (section === "master") return MASTER_BANDS;
  throw new Error(`EQ section must be 'track' or 'master', got ${section}`);
}

/** a0-normalised [b0, b1, b2, a1, a2] of one RBJ biquad (dsp.biquad.design). */
export function design(kind, freqHz, gainDb, q, sampleRate) {
  if (kind === IDENTITY || (kind === HIGHPASS && freqHz <= HPF_BYPASS_HZ)
      || (kind === LOWPASS && freqHz >= LPF_BYPASS_HZ)
      || ((kind === PEAK || kind === LOW_SHELF || kind === HIGH_SHELF) && gainDb === 0.0)) {
    return [1.0, 0.0, 0.0, 0.0, 0.0];
  }
  const f = Math.min(freqHz, MAX_FREQ_RATIO * sampleRate);
  const w0 = 2.0 * Math.PI * f / sampleRate;
  const cw = Math.cos(w0);
  const sw = Math.sin(w0);
  let b0, b1, b2, a0, a1, a2;
  if (kind === HIGHPASS || kind === LOWPASS || kind === PEAK) {
    const alpha = sw / (2.0 * q);
    if (kind === HIGHPASS) {
      b0 = (1.0 + cw) / 2.0; b1 = -(1.0 + cw); b2 = (1.0 + cw) / 2.0;
      a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
    } else if (kind === LOWPASS) {
      b0 = (1.0 - cw) / 2.0; b1 = 1.0 - cw; b2 = (1.0 - cw) / 2.0;
      a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
    } else {
      const a = Math.pow(10.0, gainDb / 40.0);
      b0 = 1.0 + alpha * a; b1 = -2.0 * cw; b2 = 1.0 - alpha * a;
      a0 = 1.0 + alpha / a; a1 = -2.0 * cw; a2 = 1.0 - alpha / a;
    }
  } else {
    const a = Math.pow(10.0, gainDb / 40.0);
    // shelf slope S = 1: alpha = sin(w0)/2 * sqrt(2)
    const tsa = 2.0 * Math.sqrt(a) * (sw / 2.0 * Math.sqrt(2.0));
    const ap = a + 1.0, am = a - 1.0;
    if (kind === LOW_SHELF) {
      b0 = a * (ap - am * cw + tsa); b1 = 2.0 * a * (am - ap * cw); b2 = a * (ap - am * cw - tsa);
      a0 = ap + am * cw + tsa; a1 = -2.0 * (am + ap * cw); a2 = ap + am * cw - tsa;
    } else {
      b0 = a * (ap + am * cw + tsa); b1 = -2.0 * a * (am + ap * cw); b2 = a * (ap + am * cw - tsa);
      a0 = ap - am * cw + tsa; a1 = 2.0 * (am - ap * cw); a2 = ap - am * cw - tsa;
    }
  }
  return [b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0];
}

/** Coefficients of one band from a parameter getter ``get(name) -> number``. */
export function bandCoefficients(band, get, sampleRate) {
  const gain = band.gain ? get(band.gain) : 0.0;
  const q = band.q ? get(band.q) : BUTTERWORTH_Q;
  return design(band.kind, get(band.freq), gain, q, sampleRate);
}

/** (S, 5) coefficients of a section's EQ in signal order (dsp.eq.eq_sections). */
export function eqSections(section, get, sampleRate) {
  return bandsOf(section).map((b) => bandCoefficients(b, get, sampleRate));
}

/** Magnitude in dB of one section [5] or a cascade [[5], ...] at each of ``freqs``. */
export function responseDb(coeffs, freqs, sampleRate) {
  const sections = Array.isArray(coeffs[0]) ? coeffs : [coeffs];
  const out = new Float64Array(freqs.length);
  for (let i = 0; i < freqs.length; i++) {
    const w = 2.0 * Math.PI * freqs[i] / sampleRate;
    const c1 = Math.cos(w), s1 = -Math.sin(w);           // z^-1 = e^{-jw}
    const c2 = Math.cos(2.0 * w), s2 = -Math.sin(2.0 * w);
    let mag2 = 1.0;
    for (const [b0, b1, b2, a1, a2] of sections) {
      const nr = b0 + b1 * c1 + b2 * c2, ni = b1 * s1 + b2 * s2;
      const dr = 1.0 + a1 * c1 + a2 * c2, di = a1 * s1 + a2 * s2;
      mag2 *= (nr * nr + ni * ni) / (dr * dr + di * di);
    }
    out[i] = 20.0 * Math.log10(Math.max(Math.sqrt(mag2), 1e-30));
  }
  return out;
}

/** Whole-EQ magnitude (dB) of a section at ``freqs`` (dsp.eq.eq_curve_db). */
export function eqCurveDb(section, get, freqs, sampleRate) {
  return responseDb(eqSections(section, get, sampleRate), freqs, sampleRate);
}

/** ``n`` log-spaced frequencies from lo to hi (dsp.eq.log_freqs). */
export function logFreqs(n = 200, lo = 20.0, hi = 20000.0) {
  const out = new Float64Array(n);
  const r = Math.log(hi / lo);
  for (let i = 0; i < n; i++) out[i] = lo * Math.exp(r * (n === 1 ? 0 : i / (n - 1)));
  return out;
}

/** ``get`` for a plain {name: value} object. */
export function getterOf(values) {
  return (name) => {
    const v = values[name];
    if (typeof v !== "number") throw new Error(`EQ parameter ${name} missing`);
    return v;
  };
}
