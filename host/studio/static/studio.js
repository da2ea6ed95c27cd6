// mixstyle studio page: one WebSocket to the studio's web process (protocol in
// host/studio/PROTOCOL.md). The page is a view of the engine's state: every edit goes out as a
// message and the engine's answer (values/state) is what the page shows.
//
// Responsiveness with many tracks: meters are drawn once per animation frame from the latest
// snapshot only (transform on preallocated elements, no layout reads), and outgoing `set`
// messages are coalesced per animation frame (last value per target wins).

import { bandsOf, eqCurveDb, responseDb, bandCoefficients, logFreqs } from "./eq.js";

const $ = (id) => document.getElementById(id);
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
const METER_FLOOR_DB = -60, METER_TOP_DB = 6;

// ---------------------------------------------------------------------------------------------
// state
const S = {
  hello: null,
  specs: { track: {}, master: {} },  // name -> spec
  values: {},                          // target -> effective value shown
  confirmed: {},                       // target -> value the engine last reported
  overrides: {},                       // target -> value the user set
  mute: new Set(), solo: new Set(),
  ab: "learned", abAvailable: [], abGain: {},
  loop: null, engineLoop: null, length: 1, sr: 48000,
  inserts: {}, plugins: [], midiMap: [],
  meters: null, metersDirty: false,
  selected: null,                      // "track:<name>" or "master"
  learning: false, learnTarget: null,
  localEdit: {},                       // target -> time of the last local edit (ms)
  messages: [],
  strength: 1,
  sentSets: 0, frames: 0,              // counters: `set` messages sent, animation frames run
};
const controls = new Map();            // target -> [control objects with .show()]
let strips = [];                       // per track, engine order: {name, el, peak, rms, gr, ...}
let stripObserver = null;              // which strips are in view (only those draw meters)
const stripByRoot = new Map();
let masterUI = null;
let ws = null;
const waiters = [];                    // [{type, resolve}] for replies (record)

// ---------------------------------------------------------------------------------------------
// formatting
function fmtValue(spec, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "off";
  const u = spec.unit;
  if (spec.name === "pan") {
    if (Math.abs(v) < 0.005) return "C";
    return (v < 0 ? "L " : "R ") + Math.abs(v).toFixed(2);
  }
  if (u === "Hz") return v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 1 : 2)} kHz` : `${v.toFixed(v < 100 ? 1 : 0)} Hz`;
  if (u === "ms") return `${v.toFixed(v < 1 ? 2 : v < 100 ? 1 : 0)} ms`;
  if (u === ":1") return `${v.toFixed(1)}:1`;
  if (u === "") return `Q ${v.toFixed(2)}`;
  if (u === "dB" && /gain|makeup/.test(spec.name)) return `${v > 0 ? "+" : ""}${v.toFixed(1)} ${u}`;
  return `${v.toFixed(1)} ${u}`;
}
const fmtDb = (db, digits = 1) => (db <= -119 ? "-inf" : db.toFixed(digits));
function fmtTime(s) {
  const m = Math.floor(s / 60), r = s - 60 * m;
  return `${m}:${r < 10 ? "0" : ""}${r.toFixed(1)}`;
}
function specOf(target) {
  if (target.startsWith("master:")) return S.specs.master[target.slice(7)];
  const i = target.lastIndexOf(":");
  return S.specs.track[target.slice(i + 1)];
}
const trackTarget = (name, param) => `track:${name}:${param}`;
const getterFor = (where) => (name) =>
  S.values[where === "master" ? `master:${name}` : `${where}:${name}`];

function toNorm(spec, v) {
  if (spec.scale === "log") return Math.log(v / spec.min) / Math.log(spec.max / spec.min);
  return (v - spec.min) / (spec.max - spec.min);
}
function fromNorm(spec, u) {
  u = clamp(u, 0, 1);
  const v = spec.scale === "log" ? spec.min * Math.pow(spec.max / spec.min, u)
    : spec.min + (spec.max - spec.min) * u;
  return clamp(roundFor(spec, v), spec.min, spec.max);
}
function roundFor(spec, v) {
  if (spec.scale === "log") {                       // 4 significant digits
    const p = Math.pow(10, Math.floor(Math.log10(Math.abs(v))) - 3);
    return Math.round(v / p) * p;
  }
  return Math.round(v * 1000) / 1000;
}
// keyboard step: dB values in 0.5 dB (0.1 with shift), log values in semitone-sized ratios
function stepValue(spec, v, dir, fine) {
  if (spec.scale === "log") return clamp(roundFor(spec, v * Math.pow(2, dir * (fine ? 1 / 48 : 1 / 12))), spec.min, spec.max);
  let step;
  if (spec.unit === "dB" || spec.unit === "dBFS" || spec.unit === "LUFS") step = fine ? 0.1 : 0.5;
  else step = (spec.max - spec.min) / (fine ? 400 : 80);
  return clamp(Math.round((v + dir * step) * 1000) / 1000, spec.min, spec.max);
}

// ---------------------------------------------------------------------------------------------
// outgoing messages: `set` coalesced per animation frame, everything else in order after it
const pendingSets = new Map();
function send(msg) {
  flushSets();
  if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg));
}
function flushSets() {
  if (!pendingSets.size) return;
  if (ws && ws.readyState === 1) {
    for (const [target, value] of pendingSets) {
      ws.send(JSON.stringify({ type: "set", target, value }));
      S.sentSets += 1;
    }
  }
  pendingSets.clear();
}
function setValue(target, value) {
  const spec = specOf(target);
  value = clamp(value, spec.min, spec.max);
  S.values[target] = value;
  S.overrides[target] = value;
  S.localEdit[target] = performance.now();
  pendingSets.set(target, value);
  wake();
  refreshTarget(target);
}
function release(target) {
  delete S.overrides[target];
  send({ type: "release", target });
  refreshTarget(target);
}
function learn(target, el) {
  S.learnTarget = target;
  document.querySelectorAll(".lrn.waiting").forEach((e) => e.classList.remove("waiting"));
  if (el) el.classList.add("waiting");
  send({ type: "midi_learn", target });
  addMessage("info", `MIDI learn: move a knob on the controller for ${target}`);
}

function modelText(spec, target) {
  const v = S.hello && S.hello.predicted ? S.hello.predicted[target] : undefined;
  return typeof v === "number" ? fmtValue(spec, v) : "?";
}
function unbind(target) {
  const m = mappedCC(target);
  if (m) send({ type: "midi_unbind", channel: m.channel, cc: m.cc });
}

// ---------------------------------------------------------------------------------------------
// controls
function register(target, ctl) {
  if (!controls.has(target)) controls.set(target, []);
  controls.get(target).push(ctl);
  ctl.show();
}
function refreshTarget(target) {
  for (const c of controls.get(target) || []) c.show();
  if (target.startsWith("master:")) { if (S.selected === "master") eqDirty(); thumbDirty("master"); }
  else {
    const where = target.slice(0, target.lastIndexOf(":"));
    if (S.selected === where) eqDirty();
    thumbDirty(where);
  }
}
function mappedCC(target) {
  return S.midiMap.find((m) => m.target === target);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A compact value control: label + value with its unit, a bar for the position. Drag up/down
// (shift = fine), wheel, arrow keys, double-click to type a value.
function valueControl(target, label) {
  const spec = specOf(target);
  if (!spec) return el("div", "ctl-spacer");        // a parameter this engine does not run live
  const root = el("div", "ctl");
  root.tabIndex = 0;
  root.dataset.target = target;
  root.setAttribute("role", "slider");
  root.setAttribute("aria-label", `${target} (${spec.unit || "Q"})`);
  const bar = el("div", "bar");
  const lbl = el("span", "lbl", label);
  const val = el("span", "val");
  const rel = el("button", "rel", "\u21ba");
  rel.title = "release: back to the model's value";
  const lrn = el("button", "lrn", "M");
  lrn.title = "MIDI learn this control (right-click: unbind)";
  root.append(bar, lbl, val, rel, lrn);
  let lastText = "", lastU = -1, lastOvr = null, lastMapped = null;
  const ctl = {
    root,
    show() {
      const v = S.values[target];
      const text = fmtValue(spec, v);
      if (text !== lastText) { val.textContent = text; lastText = text; }
      const u = v === null || v === undefined ? 0 : clamp(toNorm(spec, v), 0, 1);
      if (Math.abs(u - lastU) > 0.001) { bar.style.transform = `scaleX(${u.toFixed(4)})`; lastU = u; }
      const ovr = target in S.overrides;
      if (ovr !== lastOvr) { root.classList.toggle("ovr", ovr); lastOvr = ovr; }
      if (ovr) rel.title = `release: back to the model's value (${modelText(spec, target)})`;
      const m = mappedCC(target);
      const mapped = m ? `ch${m.channel} CC${m.cc}` : "";
      if (mapped !== lastMapped) {
        root.classList.toggle("mapped", !!m);
        root.title = `${target}: ${spec.min} .. ${spec.max} ${spec.unit}${m ? " \u00b7 MIDI " + mapped : ""}`;
        lastMapped = mapped;
      }
    },
  };
  rel.addEventListener("pointerdown", (e) => { e.stopPropagation(); });
  rel.addEventListener("click", (e) => { e.stopPropagation(); release(target); });
  lrn.addEventListener("pointerdown", (e) => { e.stopPropagation(); });
  lrn.addEventListener("click", (e) => { e.stopPropagation(); learn(target, lrn); });
  lrn.addEventListener("contextmenu", (e) => { e.preventDefault(); e.stopPropagation(); unbind(target); });
  let drag = null;
  root.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    root.focus();
    root.setPointerCapture(e.pointerId);
    drag = { y: e.clientY, x: e.clientX, u: toNorm(spec, S.values[target] ?? spec.default) };
    e.preventDefault();
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const d = (drag.y - e.clientY) + (e.clientX - drag.x) * 0.5;
    const u = drag.u + d * (e.shiftKey ? 0.0008 : 0.004);
    setValue(target, fromNorm(spec, u));
  });
  const end = () => { drag = null; };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", end);
  root.addEventListener("wheel", (e) => {
    e.preventDefault();
    setValue(target, stepValue(spec, S.values[target] ?? spec.default, e.deltaY < 0 ? 1 : -1, e.shiftKey));
  }, { passive: false });
  root.addEventListener("keydown", (e) => {
    const dir = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1 }[e.key];
    if (dir) {
      e.preventDefault();
      setValue(target, stepValue(spec, S.values[target] ?? spec.default, dir, e.shiftKey));
    } else if (e.key === "Enter") { edit(); }
    else if (e.key === "Backspace" || e.key === "Delete") { release(target); }
  });
  root.addEventListener("dblclick", () => edit());
  function edit() {
    const inp = el("input", "edit");
    inp.value = String(S.values[target]);
    root.append(inp);
    inp.focus(); inp.select();
    const done = (ok) => {
      if (ok) {
        const v = parseFloat(inp.value);
        if (Number.isFinite(v)) {
          if (v < spec.min || v > spec.max) addMessage("error", `${target} = ${v} is out of range: allowed ${spec.min} .. ${spec.max} ${spec.unit}`);
          else setValue(target, v);
        }
      }
      inp.remove(); root.focus();
    };
    inp.addEventListener("keydown", (e) => { e.stopPropagation(); if (e.key === "Enter") done(true); if (e.key === "Escape") done(false); });
    inp.addEventListener("blur", () => { if (inp.isConnected) done(true); });
    inp.addEventListener("pointerdown", (e) => e.stopPropagation());
  }
  register(target, ctl);
  return root;
}

// Fader taper: more travel around 0 dB (as on a console), linear below -40 dB.
const TAPER = [[-60, 0], [-40, 0.1], [-30, 0.2], [-20, 0.35], [-10, 0.55], [-5, 0.665], [0, 0.78], [6, 0.9], [12, 1]];
function faderPos(spec, db) {
  if (spec.min !== -60 || spec.max !== 12) return toNorm(spec, db);
  for (let i = 1; i < TAPER.length; i++) {
    const [d1, p1] = TAPER[i], [d0, p0] = TAPER[i - 1];
    if (db <= d1) return p0 + (p1 - p0) * (db - d0) / (d1 - d0);
  }
  return 1;
}
function faderDb(spec, pos) {
  pos = clamp(pos, 0, 1);
  if (spec.min !== -60 || spec.max !== 12) return fromNorm(spec, pos);
  for (let i = 1; i < TAPER.length; i++) {
    const [d1, p1] = TAPER[i], [d0, p0] = TAPER[i - 1];
    if (pos <= p1) return Math.round((d0 + (d1 - d0) * (pos - p0) / (p1 - p0)) * 100) / 100;
  }
  return spec.max;
}

// A vertical fader (role=slider): drag the cap, arrow keys 0.5 dB (shift 0.1 dB), PageUp/Down
// 3 dB, Home = 0 dB, double-click = 0 dB; the value box shows the dB.
function fader(target, heightPx) {
  const spec = specOf(target);
  if (!spec) return el("div", "fader-wrap");
  const wrap = el("div", "fader-wrap");
  const f = el("div", "fader");
  f.tabIndex = 0;
  f.dataset.target = target;
  f.setAttribute("role", "slider");
  f.setAttribute("aria-valuemin", spec.min);
  f.setAttribute("aria-valuemax", spec.max);
  f.setAttribute("aria-orientation", "vertical");
  const slot = el("div", "slot");
  f.append(slot);
  const travel = heightPx - 12;
  for (const db of [12, 6, 0, -5, -10, -20, -30, -40, -60]) {
    if (db < spec.min || db > spec.max) continue;
    const t = el("div", db === 0 ? "tick zero" : "tick");
    t.style.top = `${6 + (1 - faderPos(spec, db)) * travel}px`;
    f.append(t);
  }
  const cap = el("div", "cap");
  f.append(cap);
  f.style.height = `${heightPx}px`;
  f.style.flex = "none";
  const box = el("div", "fader-val");
  box.dataset.target = target;
  const val = el("span", "");
  const rel = el("button", "rel", "\u21ba");
  rel.title = "release: back to the model's value";
  const lrn = el("button", "lrn", "M");
  lrn.title = "MIDI learn this fader (right-click: unbind)";
  box.append(val, rel, lrn);
  wrap.append(f, box);
  let lastText = "", lastPos = -1, lastOvr = null;
  const ctl = {
    root: wrap,
    show() {
      const v = S.values[target];
      const text = spec.unit === "dB" ? `${v > 0 ? "+" : ""}${v.toFixed(1)} dB` : fmtValue(spec, v);
      if (text !== lastText) { val.textContent = text; lastText = text; f.setAttribute("aria-valuenow", v); f.setAttribute("aria-valuetext", text); }
      const p = faderPos(spec, v);
      if (Math.abs(p - lastPos) > 0.0005) { cap.style.transform = `translateY(${((1 - p) * travel).toFixed(1)}px)`; lastPos = p; }
      const ovr = target in S.overrides;
      if (ovr !== lastOvr) { wrap.classList.toggle("ovr", ovr); lastOvr = ovr; }
      if (ovr) rel.title = `release: back to the model's value (${modelText(spec, target)})`;
      const m = mappedCC(target);
      wrap.title = `${target}${m ? ` \u00b7 MIDI ch${m.channel} CC${m.cc}` : ""}`;
    },
  };
  rel.addEventListener("click", () => release(target));
  lrn.addEventListener("click", () => learn(target, lrn));
  lrn.addEventListener("contextmenu", (e) => { e.preventDefault(); unbind(target); });
  let drag = null;
  f.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    f.focus();
    f.setPointerCapture(e.pointerId);
    drag = { y: e.clientY, p: faderPos(spec, S.values[target]) };
    e.preventDefault();
  });
  f.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dp = (drag.y - e.clientY) / travel * (e.shiftKey ? 0.2 : 1);
    setValue(target, faderDb(spec, drag.p + dp));
  });
  const end = () => { drag = null; };
  f.addEventListener("pointerup", end);
  f.addEventListener("pointercancel", end);
  f.addEventListener("dblclick", () => setValue(target, clamp(0, spec.min, spec.max)));
  f.addEventListener("wheel", (e) => {
    e.preventDefault();
    setValue(target, stepValue(spec, S.values[target], e.deltaY < 0 ? 1 : -1, e.shiftKey));
  }, { passive: false });
  f.addEventListener("keydown", (e) => {
    const v = S.values[target];
    let nv = null;
    if (e.key === "ArrowUp" || e.key === "ArrowRight") nv = stepValue(spec, v, 1, e.shiftKey);
    else if (e.key === "ArrowDown" || e.key === "ArrowLeft") nv = stepValue(spec, v, -1, e.shiftKey);
    else if (e.key === "PageUp") nv = clamp(Math.round((v + 3) * 1000) / 1000, spec.min, spec.max);
    else if (e.key === "PageDown") nv = clamp(Math.round((v - 3) * 1000) / 1000, spec.min, spec.max);
    else if (e.key === "Home") nv = clamp(0, spec.min, spec.max);
    else if (e.key === "Backspace" || e.key === "Delete") { release(target); e.preventDefault(); return; }
    if (nv !== null) { e.preventDefault(); setValue(target, nv); }
  });
  register(target, ctl);
  return wrap;
}

// A peak + RMS meter with a peak hold, drawn on one small canvas: one paint per change instead
// of several composited layers (cheap with software rendering and 64 strips).
const DPR = () => window.devicePixelRatio || 1;
function meter(widthPx, heightPx) {
  const m = el("div", "meter");
  m.style.width = `${widthPx}px`;
  m.style.height = `${heightPx + 18}px`;
  const c = el("canvas", "meter-c");
  const dpr = DPR();
  c.width = Math.round(widthPx * dpr); c.height = Math.round(heightPx * dpr);
  c.style.width = `${widthPx}px`; c.style.height = `${heightPx}px`;
  const scale = el("div", "meter-scale", "-inf");
  scale.title = "peak hold (dBFS)";
  m.append(c, scale);
  const ctx = c.getContext("2d");
  const g = ctx.createLinearGradient(0, c.height, 0, 0);
  const at = (db) => meterFrac(db);
  g.addColorStop(0, "#1f9e4c"); g.addColorStop(at(-18), "#3ecf6e"); g.addColorStop(at(-6), "#e8d44d");
  g.addColorStop(at(-1), "#ff7a3d"); g.addColorStop(at(0), "#ff3b3b"); g.addColorStop(1, "#ff3b3b");
  const mt = { root: m, canvas: c, ctx, grad: g, scale, key: "", holdDb: -120, holdT: 0, lastText: "" };
  paintMeter(mt, 0, 0, 0);
  return mt;
}
function meterFrac(db) { return clamp((db - METER_FLOOR_DB) / (METER_TOP_DB - METER_FLOOR_DB), 0, 1); }
function paintMeter(m, peakPx, rmsPx, holdPx) {
  const { ctx, canvas } = m;
  const W = canvas.width, H = canvas.height, half = Math.floor((W - 2) / 2);
  ctx.fillStyle = "#08090a";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = m.grad;
  ctx.fillRect(0, H - peakPx, half, peakPx);
  ctx.globalAlpha = 0.7;
  ctx.fillRect(W - half, H - rmsPx, half, rmsPx);
  ctx.globalAlpha = 1;
  if (holdPx > 1) { ctx.fillStyle = "#e8ecf0"; ctx.fillRect(0, H - holdPx, half, Math.max(1, DPR())); }
  ctx.fillStyle = "rgba(255,255,255,0.18)";                      // 0 dBFS mark
  ctx.fillRect(0, Math.round(H * (1 - meterFrac(0))), W, 1);
}
function drawMeter(m, peakDb, rmsDb, now) {
  const H = m.canvas.height;
  if (peakDb >= m.holdDb || now - m.holdT > 1500) { m.holdDb = peakDb; m.holdT = now; }
  const p = Math.round(meterFrac(peakDb) * H), r = Math.round(meterFrac(rmsDb) * H);
  const h = Math.round(meterFrac(m.holdDb) * H);
  const key = `${p},${r},${h}`;
  if (key !== m.key) { m.key = key; paintMeter(m, p, r, h); }
  if (now - (m.textT || 0) > 250) {     // numbers change 4 times a second: readable, cheap
    m.textT = now;
    const text = fmtDb(m.holdDb);
    if (text !== m.lastText) { m.scale.textContent = text; m.lastText = text; }
  }
}
function grMeter() {
  const g = el("div", "grm");
  const fill = el("div", "fill");
  g.append(fill);
  g.title = "gain reduction (0 .. 20 dB)";
  return { root: g, fill, last: -1 };
}
function drawGr(g, grDb) {
  const f = Math.round(clamp(Math.abs(grDb) / 20, 0, 1) * 100) / 100;   // ~1 px steps
  if (f !== g.last) { g.fill.style.transform = `scaleX(${f.toFixed(3)})`; g.last = f; }
}

// ---------------------------------------------------------------------------------------------
// strips
const COMP = [["comp_threshold_db", "THR"], ["comp_ratio", "RAT"], ["comp_attack_ms", "ATK"],
  ["comp_release_ms", "REL"], ["comp_knee_db", "KNEE"], ["comp_makeup_db", "MKUP"]];
let faderHeight = 196;

const ROLE_COLOURS = { drums: "#e0604a", kick: "#e0604a", snare: "#e8805a", overheads: "#d88a6a",
  percussion: "#d9a05a", bass: "#a46ff0", vocals: "#3ecf6e", vocal: "#3ecf6e", lead: "#58d8a0",
  guitar: "#f0a830", keys: "#4aa3ff", piano: "#4aa3ff", synth: "#58c8ff", strings: "#8fb0ff",
  pad: "#7f9fe0", fx: "#c070d0", other: "#808a96" };
function roleColour(role) {
  if (ROLE_COLOURS[role]) return ROLE_COLOURS[role];
  let h = 0;
  for (const ch of role) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h}, 55%, 60%)`;
}

function buildStrip(track, index) {
  const where = `track:${track.name}`;
  const root = el("div", "strip");
  root.style.setProperty("--role", roleColour(track.role));
  root.dataset.track = track.name;
  const head = el("div", "strip-head");
  const nm = el("div", "name", track.name);
  nm.title = `${track.name} (${track.role})`;
  const role = el("div", "role");
  const insBadge = el("span", "ins");
  role.append(el("span", "", track.role), insBadge);
  head.append(nm, role);
  head.addEventListener("click", () => select(where));
  const thumb = el("canvas", "thumb");
  thumb.width = 76; thumb.height = 28;
  thumb.title = "EQ: click to edit";
  thumb.addEventListener("click", () => select(where));
  const inSect = el("div", "sect");
  inSect.append(valueControl(trackTarget(track.name, "input_gain_db"), "IN"));
  const comp = el("div", "sect");
  const cl = el("div", "sect-label");
  cl.append(el("span", "", "comp"), el("span", "", "GR"));
  comp.append(cl);
  const gr = grMeter();
  comp.append(gr.root);
  for (const [p, l] of COMP) comp.append(valueControl(trackTarget(track.name, p), l));
  const panSect = el("div", "sect");
  panSect.append(valueControl(trackTarget(track.name, "pan"), "PAN"));
  const ms = el("div", "ms");
  const mute = el("button", "btn mute", "M");
  mute.title = `mute ${track.name}`;
  mute.dataset.track = track.name;
  const solo = el("button", "btn solo", "S");
  solo.title = `solo ${track.name}`;
  solo.dataset.track = track.name;
  mute.addEventListener("click", () => {
    const on = !S.mute.has(track.name);
    on ? S.mute.add(track.name) : S.mute.delete(track.name);
    showMuteSolo();
    send({ type: "mute", track: track.name, on });
  });
  solo.addEventListener("click", () => {
    const on = !S.solo.has(track.name);
    on ? S.solo.add(track.name) : S.solo.delete(track.name);
    showMuteSolo();
    send({ type: "solo", track: track.name, on });
  });
  ms.append(mute, solo);
  const fm = el("div", "fm");
  const fd = fader(trackTarget(track.name, "output_gain_db"), faderHeight);
  const mt = meter(16, faderHeight);
  fm.append(fd, mt.root);
  root.append(head, thumb, inSect, comp, panSect, ms, fm);
  return { name: track.name, where, index, root, thumb, meter: mt, gr, mute, solo, insBadge, thumbDirty: true };
}

function buildMaster() {
  const root = $("master-strip");
  root.textContent = "";
  const head = el("div", "strip-head");
  head.append(el("div", "name", "MASTER"), el("div", "role", "bus \u00b7 glue \u00b7 limiter"));
  head.addEventListener("click", () => select("master"));
  const thumb = el("canvas", "thumb");
  thumb.width = 226; thumb.height = 28;
  thumb.addEventListener("click", () => select("master"));
  const cols = el("div", "cols");
  const c1 = el("div", "col"), c2 = el("div", "col");
  const m = (p, l) => valueControl(`master:${p}`, l);
  const glue = el("div", "sect");
  const gl = el("div", "sect-label");
  gl.append(el("span", "", "glue comp"), el("span", "", "GR"));
  const gr = grMeter();
  glue.append(gl, gr.root);
  for (const [p, l] of COMP) glue.append(m(p, l));
  const lim = el("div", "sect");
  lim.append(el("div", "sect-label", "limiter"), m("limiter_ceiling_db", "CEIL"),
    m("limiter_release_ms", "REL"), m("limiter_lookahead_ms", "LOOK"));
  const lgr = el("div", "sect");
  const loud = el("div", "loud");
  const lv = {};
  for (const [k, label] of [["momentary_lufs", "M"], ["short_term_lufs", "S"], ["integrated_lufs", "I"],
    ["true_peak_dbtp", "TP"], ["peak_db", "peak"], ["rms_db", "RMS"]]) {
    const unit = k.endsWith("lufs") ? "LUFS" : k === "true_peak_dbtp" ? "dBTP" : "dBFS";
    loud.append(el("span", "k", label));
    lv[k] = el("span", "v", `-inf ${unit}`);
    lv[k].dataset.unit = unit;
    lv[k].dataset.key = k;
    loud.append(lv[k]);
  }
  lgr.append(el("div", "sect-label", "loudness"), loud);
  c1.append(glue, lim, lgr);
  const fm = el("div", "fm");
  const fh = faderHeight + 60;
  const fd = fader("master:gain_db", fh);
  const mt = meter(26, fh);
  fm.append(fd, mt.root);
  c2.append(el("div", "sect-label", "gain"), fm);
  cols.append(c1, c2);
  root.append(head, thumb, cols);
  return { root, thumb, meter: mt, gr, lv, lvText: {}, thumbDirty: true };
}

function showMuteSolo() {
  const anySolo = S.solo.size > 0;
  for (const s of strips) {
    s.mute.classList.toggle("on", S.mute.has(s.name));
    s.solo.classList.toggle("on", S.solo.has(s.name));
    s.root.classList.toggle("dimmed", S.mute.has(s.name) || (anySolo && !S.solo.has(s.name)));
  }
}

// ---------------------------------------------------------------------------------------------
// EQ thumbnails (redrawn only when their values change, at most once per frame)
const thumbFreqs = logFreqs(64, 20, 20000);
const dirtyThumbs = new Set();
function thumbDirty(where) { dirtyThumbs.add(where); wake(); }
function drawThumb(canvas, where) {
  const section = where === "master" ? "master" : "track";
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#2a3038";
  ctx.beginPath(); ctx.moveTo(0, h / 2 + 0.5); ctx.lineTo(w, h / 2 + 0.5); ctx.stroke();
  let db;
  try { db = eqCurveDb(section, getterFor(where), thumbFreqs, S.sr); } catch { return; }
  ctx.strokeStyle = "#58c8ff";
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  for (let i = 0; i < db.length; i++) {
    const x = (i / (db.length - 1)) * w;
    const y = h / 2 - clamp(db[i], -18, 18) / 18 * (h / 2 - 2);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  }
  ctx.stroke();
}

// ---------------------------------------------------------------------------------------------
// EQ view
const EQ_LO = 10, EQ_DB = 24;
let EQ_HI = 24000;                     // set to the Nyquist frequency by the hello
const eq = { canvas: null, w: 0, h: 0, dpr: 1, dirty: true, drag: null, hover: null, active: null, freqs: null };
function eqDirty() { eq.dirty = true; wake(); }
function eqX(f) { return Math.log(f / EQ_LO) / Math.log(EQ_HI / EQ_LO) * eq.w; }
function eqF(x) { return EQ_LO * Math.pow(EQ_HI / EQ_LO, clamp(x / eq.w, 0, 1)); }
function eqY(db) { return eq.h / 2 - db / EQ_DB * (eq.h / 2 - 8); }
function eqDbAt(y) { return (eq.h / 2 - y) / (eq.h / 2 - 8) * EQ_DB; }
function selTarget(name) { return S.selected === "master" ? `master:${name}` : `${S.selected}:${name}`; }
function eqSection() { return S.selected === "master" ? "master" : "track"; }

function resizeEq() {
  const c = eq.canvas;
  const r = c.getBoundingClientRect();
  eq.dpr = window.devicePixelRatio || 1;
  eq.w = Math.max(50, r.width); eq.h = Math.max(50, r.height);
  c.width = Math.round(eq.w * eq.dpr); c.height = Math.round(eq.h * eq.dpr);
  const n = Math.round(eq.w / 2);
  eq.freqs = new Float64Array(n);
  for (let i = 0; i < n; i++) eq.freqs[i] = eqF((i / (n - 1)) * eq.w);
  eqDirty();
}
// Where a band's node sits: (frequency, gain) for shelves and peaks, on the curve for the filters.
function nodeOf(band) {
  const get = getterFor(S.selected);
  const f = get(band.freq);
  let db;
  if (band.gain) db = get(band.gain);
  else db = responseDb(bandCoefficients(band, get, S.sr), [Math.min(Math.max(f, EQ_LO), EQ_HI)], S.sr)[0];
  return { x: eqX(clamp(f, EQ_LO, EQ_HI)), y: eqY(clamp(db, -EQ_DB, EQ_DB)), f, db };
}
function drawEq() {
  if (!S.selected || !eq.w) return;
  const ctx = eq.canvas.getContext("2d");
  ctx.setTransform(eq.dpr, 0, 0, eq.dpr, 0, 0);
  const { w, h } = eq;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "10px DejaVu Sans, sans-serif";
  // grid
  ctx.lineWidth = 1;
  for (const f of [20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 20000]) {
    const x = Math.round(eqX(f)) + 0.5;
    const major = [100, 1000, 10000].includes(f);
    ctx.strokeStyle = major ? "#2f3740" : "#1d2329";
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke();
    if ([20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000].includes(f) && x < w - 26) {
      ctx.fillStyle = "#6f7a86";
      ctx.fillText(f >= 1000 ? `${f / 1000}k` : `${f}`, x + 3, h - 4);
    }
  }
  for (let db = -EQ_DB; db <= EQ_DB; db += 6) {
    const y = Math.round(eqY(db)) + 0.5;
    ctx.strokeStyle = db === 0 ? "#3c4651" : "#1d2329";
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillStyle = "#6f7a86";
    if (db !== -EQ_DB && db !== EQ_DB) ctx.fillText(`${db > 0 ? "+" : ""}${db} dB`, 4, y - 3);
  }
  ctx.fillStyle = "#6f7a86";
  ctx.fillText("Hz", 4, h - 4);
  const section = eqSection();
  const get = getterFor(S.selected);
  const bands = bandsOf(section);
  // each band faintly
  bands.forEach((b) => {
    const db = responseDb(bandCoefficients(b, get, S.sr), eq.freqs, S.sr);
    const active = eq.active === b.id || eq.hover === b.id;
    ctx.strokeStyle = active ? "rgba(240,168,48,0.7)" : "rgba(120,150,180,0.25)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 0; i < db.length; i++) {
      const x = eqX(eq.freqs[i]), y = eqY(clamp(db[i], -EQ_DB - 6, EQ_DB + 6));
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    }
    ctx.stroke();
  });
  // the whole EQ
  const total = eqCurveDb(section, get, eq.freqs, S.sr);
  ctx.beginPath();
  for (let i = 0; i < total.length; i++) {
    const x = eqX(eq.freqs[i]), y = eqY(clamp(total[i], -EQ_DB - 6, EQ_DB + 6));
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  }
  ctx.strokeStyle = "#58c8ff";
  ctx.lineWidth = 2;
  ctx.stroke();
  ctx.lineTo(w, eqY(0)); ctx.lineTo(0, eqY(0)); ctx.closePath();
  ctx.fillStyle = "rgba(88,200,255,0.09)";
  ctx.fill();
  // nodes
  for (const b of bands) {
    const n = nodeOf(b);
    const on = eq.active === b.id || eq.hover === b.id;
    const ovr = [b.freq, b.gain, b.q].some((p) => p && selTarget(p) in S.overrides);
    ctx.beginPath();
    ctx.arc(n.x, n.y, on ? 9 : 7.5, 0, 2 * Math.PI);
    ctx.fillStyle = on ? "#f0a830" : ovr ? "#7a5a20" : "#24465e";
    ctx.fill();
    ctx.strokeStyle = on ? "#fff" : ovr ? "#ffb347" : "#58c8ff";
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 9px DejaVu Sans, sans-serif";
    const tw = ctx.measureText(b.label).width;
    ctx.fillText(b.label, n.x - tw / 2, n.y + 3);
    ctx.font = "10px DejaVu Sans, sans-serif";
  }
  showEqReadout();
}
function showEqReadout() {
  const id = eq.active || eq.hover;
  const b = id && bandsOf(eqSection()).find((x) => x.id === id);
  if (!b) { $("eq-readout").textContent = ""; return; }
  const get = getterFor(S.selected);
  const parts = [bandName(b), fmtValue(specOf(selTarget(b.freq)), get(b.freq))];
  if (b.gain) parts.push(fmtValue(specOf(selTarget(b.gain)), get(b.gain)));
  if (b.q) parts.push(fmtValue(specOf(selTarget(b.q)), get(b.q)));
  $("eq-readout").textContent = parts.join("  ");
}
function bandName(b) {
  return { hpf: "high-pass", low_shelf: "low shelf", peak1: "peak 1", peak2: "peak 2", peak3: "peak 3",
    high_shelf: "high shelf", lpf: "low-pass" }[b.id];
}
function nodeAt(x, y) {
  let best = null, bd = 14;
  for (const b of bandsOf(eqSection())) {
    const n = nodeOf(b);
    const d = Math.hypot(n.x - x, n.y - y);
    if (d < bd) { bd = d; best = b; }
  }
  return best;
}
function eqPointer(e) {
  const r = eq.canvas.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}
function setupEq() {
  eq.canvas = $("eq");
  const c = eq.canvas;
  c.addEventListener("pointerdown", (e) => {
    if (!S.selected) return;
    const [x, y] = eqPointer(e);
    const b = nodeAt(x, y);
    if (!b) return;
    c.setPointerCapture(e.pointerId);
    const n = nodeOf(b);
    const get = getterFor(S.selected);
    eq.drag = { band: b, x0: x, y0: y, nx: n.x, ny: n.y, q0: b.q ? get(b.q) : null };
    eq.active = b.id;
    eqDirty();
    e.preventDefault();
  });
  c.addEventListener("pointermove", (e) => {
    const [x, y] = eqPointer(e);
    if (!eq.drag) {
      const b = S.selected && nodeAt(x, y);
      const id = b ? b.id : null;
      if (id !== eq.hover) { eq.hover = id; eqDirty(); }
      c.style.cursor = b ? "grab" : "default";
      return;
    }
    const d = eq.drag, b = d.band;
    if (e.shiftKey && b.q) {                     // shift-drag: Q (up = narrower)
      const spec = specOf(selTarget(b.q));
      setValue(selTarget(b.q), fromNorm(spec, toNorm(spec, d.q0) + (d.y0 - y) * 0.004));
      return;
    }
    const fSpec = specOf(selTarget(b.freq));
    setValue(selTarget(b.freq), clamp(roundFor(fSpec, eqF(d.nx + x - d.x0)), fSpec.min, fSpec.max));
    if (b.gain) {
      const gSpec = specOf(selTarget(b.gain));
      const g = Math.round(eqDbAt(d.ny + y - d.y0) * 10) / 10;
      setValue(selTarget(b.gain), clamp(g, gSpec.min, gSpec.max));
    }
  });
  const end = () => { if (eq.drag) { eq.drag = null; eq.active = null; eqDirty(); } };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
  c.addEventListener("pointerleave", () => { if (!eq.drag && eq.hover) { eq.hover = null; eqDirty(); } });
  c.addEventListener("wheel", (e) => {
    if (!S.selected) return;
    const [x, y] = eqPointer(e);
    const b = nodeAt(x, y);
    if (!b || !b.q) return;
    e.preventDefault();
    const t = selTarget(b.q);
    setValue(t, stepValue(specOf(t), S.values[t], e.deltaY < 0 ? 1 : -1, e.shiftKey));
  }, { passive: false });
  c.addEventListener("dblclick", (e) => {
    const [x, y] = eqPointer(e);
    const b = S.selected && nodeAt(x, y);
    if (!b) return;
    for (const p of [b.freq, b.gain, b.q]) if (p) release(selTarget(p));
  });
  new ResizeObserver(() => resizeEq()).observe(c);
}

function select(where) {
  S.selected = where;
  for (const s of strips) s.root.classList.toggle("selected", s.where === where);
  if (masterUI) masterUI.root.classList.toggle("selected", where === "master");
  const name = where === "master" ? "master bus" : where.slice(6);
  $("eq-title").textContent = name;
  $("ins-title").textContent = name;
  buildEqControls();
  renderInserts();
  eqDirty();
}
function buildEqControls() {
  const box = $("eq-controls");
  for (const [t, list] of controls) {          // drop the previous selection's detail controls
    const keep = list.filter((c) => !c.detail);
    if (keep.length) controls.set(t, keep); else controls.delete(t);
  }
  box.textContent = "";
  const bands = bandsOf(eqSection());
  box.style.gridTemplateColumns = `repeat(${bands.length}, 1fr)`;
  for (const b of bands) {
    const col = el("div", "band-col");
    col.append(el("div", "band-name", bandName(b)));
    for (const [p, l] of [[b.freq, "FREQ"], [b.gain, "GAIN"], [b.q, "WIDTH"]]) {
      if (!p) { col.append(el("div", "ctl-spacer")); continue; }
      const node = valueControl(selTarget(p), l);
      const list = controls.get(selTarget(p));
      list[list.length - 1].detail = true;
      col.append(node);
    }
    box.append(col);
  }
}

// ---------------------------------------------------------------------------------------------
// inserts
function insertsOf(where) { return S.inserts[where] || []; }
function renderInserts() {
  const box = $("inserts");
  box.textContent = "";
  if (!S.selected) return;
  const where = S.selected;
  const list = insertsOf(where);
  if (!list.length) box.append(el("div", "dim", "no inserts on this " + (where === "master" ? "bus" : "track")));
  for (const ins of list) {
    const card = el("div", "insert" + (ins.bypassed || ins.failed ? " bypassed" : ""));
    card.dataset.index = ins.index;
    const head = el("div", "ihead");
    const name = el("span", "iname", `${ins.index + 1}. ${ins.name}`);
    name.title = ins.path;
    const byp = el("button", "btn small bypass" + (ins.bypassed ? " on" : ""), ins.bypassed ? "bypassed" : "bypass");
    byp.addEventListener("click", () => send({ type: "insert_bypass", where, index: ins.index, on: !ins.bypassed }));
    const rm = el("button", "btn small remove", "remove");
    rm.addEventListener("click", () => send({ type: "insert_remove", where, index: ins.index }));
    head.append(name);
    if (ins.failed) head.append(el("span", "failed", "failed: bypassed"));
    head.append(byp, rm);
    const params = el("div", "params");
    for (const [pn, p] of Object.entries(ins.parameters || {})) {
      const label = el("span", "pn", pn);
      label.title = pn;
      const cell = el("span", "pv");
      if (typeof p.value === "number") {
        const inp = el("input");
        inp.type = "number";
        inp.step = "any";
        inp.value = String(Math.round(p.value * 1000) / 1000);
        if (p.min !== undefined && p.min !== null) inp.min = p.min;
        if (p.max !== undefined && p.max !== null) inp.max = p.max;
        inp.dataset.param = pn;
        inp.addEventListener("change", () => {
          const v = parseFloat(inp.value);
          if (Number.isFinite(v)) send({ type: "insert_param", where, index: ins.index, name: pn, value: v });
        });
        cell.append(inp, el("span", "pu", p.unit || ""));
      } else {
        cell.append(el("span", "", p.text ?? String(p.value)), el("span", "pu", p.unit || ""));
      }
      params.append(label, cell);
    }
    card.append(head, params);
    box.append(card);
  }
}
function showInsertBadges() {
  for (const s of strips) {
    const n = insertsOf(s.where).length;
    s.insBadge.textContent = n ? `FX ${n}` : "";
  }
}
function fillPlugins() {
  const sel = $("plugin-select");
  sel.textContent = "";
  if (!S.plugins.length) {
    const o = el("option", "", "no VST3 plugins found");
    o.value = "";
    sel.append(o);
  }
  for (const p of S.plugins) {
    const o = el("option", "", p.name);
    o.value = p.path;
    o.title = p.path;
    sel.append(o);
  }
}

// ---------------------------------------------------------------------------------------------
// transport + overview
function drawWave() {
  const c = $("wave");
  const r = c.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(r.width * dpr); c.height = Math.round(r.height * dpr);
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const wf = (S.hello && S.hello.waveform) || [];
  const w = r.width, h = r.height, mid = h / 2;
  overviewWidth = Math.max(1, $("overview").clientWidth);
  ctx.clearRect(0, 0, w, h);
  let peak = 1e-6;
  for (const [lo, hi] of wf) peak = Math.max(peak, Math.abs(lo), Math.abs(hi));
  const g = ctx.createLinearGradient(0, 0, 0, h);
  g.addColorStop(0, "#3d7fb0"); g.addColorStop(0.5, "#7cc4f0"); g.addColorStop(1, "#3d7fb0");
  ctx.fillStyle = g;
  for (let i = 0; i < wf.length; i++) {
    const x = (i / wf.length) * w;
    const y1 = mid - (wf[i][1] / peak) * (mid - 2), y2 = mid - (wf[i][0] / peak) * (mid - 2);
    ctx.fillRect(x, y1, Math.max(1, w / wf.length), Math.max(1, y2 - y1));
  }
  // second marks
  ctx.fillStyle = "#56606b";
  ctx.font = "9px DejaVu Sans, sans-serif";
  const step = S.length > 240 ? 30 : S.length > 60 ? 10 : 5;
  for (let s = step; s < S.length; s += step) ctx.fillText(fmtTime(s).replace(/\.0$/, ""), (s / S.length) * w + 2, 9);
  showLoop();
}
let overviewWidth = 1;                 // read on resize only: the frame loop never reads layout
function showLoop() {
  const box = $("loop");
  if (!S.loop) { box.style.display = "none"; return; }
  const w = overviewWidth;
  box.style.display = "block";
  box.style.left = `${(S.loop[0] / S.length) * w}px`;
  box.style.width = `${Math.max(2, ((S.loop[1] - S.loop[0]) / S.length) * w)}px`;
}
function setupOverview() {
  const ov = $("overview");
  let drag = null;
  const secAt = (e) => clamp((e.clientX - ov.getBoundingClientRect().left) / ov.clientWidth, 0, 1) * S.length;
  ov.addEventListener("pointerdown", (e) => {
    ov.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, s: secAt(e), moved: false };
  });
  ov.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (Math.abs(e.clientX - drag.x) > 4) drag.moved = true;
    if (drag.moved) {
      const a = Math.min(drag.s, secAt(e)), b = Math.max(drag.s, secAt(e));
      S.loop = [a, b];
      showLoop();
    }
  });
  ov.addEventListener("pointerup", (e) => {
    if (!drag) return;
    if (drag.moved) {
      const a = Math.min(drag.s, secAt(e)), b = Math.max(drag.s, secAt(e));
      if (b - a > 0.05) send({ type: "transport", action: "loop", a: round3(a), b: round3(b) });
    } else {
      send({ type: "transport", action: "seek", s: round3(drag.s) });
    }
    drag = null;
  });
}
const round3 = (x) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------
// messages
function addMessage(level, text) {
  const box = $("messages");
  const line = el("div", `m-${level}`, `${new Date().toLocaleTimeString()}  ${text}`);
  box.append(line);
  while (box.childNodes.length > 200) box.firstChild.remove();
  box.scrollTop = box.scrollHeight;
  S.messages.push({ level, text });
  if (S.messages.length > 200) S.messages.shift();
}

// ---------------------------------------------------------------------------------------------
// the A/B and strength
function buildAb() {
  const box = $("ab");
  box.textContent = "";
  const labels = { learned: "learned", plain: "plain", mix: "producer's mix" };
  for (const src of ["learned", "plain", "mix"]) {
    if (!S.abAvailable.includes(src)) continue;
    const b = el("button", "btn");
    b.dataset.source = src;
    b.append(el("span", "", labels[src]), el("small", "", ""));
    b.addEventListener("click", () => { S.ab = src; showAb(); send({ type: "ab", source: src }); });
    box.append(b);
  }
  showAb();
}
function showAb() {
  for (const b of $("ab").children) {
    const src = b.dataset.source;
    b.classList.toggle("on", src === S.ab);
    const g = S.abGain[src];
    b.querySelector("small").textContent = typeof g === "number" ? `${g > 0 ? "+" : ""}${g.toFixed(1)} dB` : "";
    b.title = `${src}: loudness-matched by ${typeof g === "number" ? g.toFixed(1) + " dB" : "?"}`;
  }
}
function showStrength() {
  $("strength").value = String(S.strength);
  $("strength-v").textContent = S.strength.toFixed(2);
}

// ---------------------------------------------------------------------------------------------
// incoming
function onHello(h) {
  S.hello = h;
  S.sr = h.sample_rate_hz;
  EQ_HI = Math.min(24000, S.sr / 2);
  if (eq.canvas) resizeEq();
  S.length = Math.max(h.length_s || 1, 0.001);
  S.specs = { track: {}, master: {} };
  for (const sec of ["track", "master"]) for (const p of h.params[sec]) S.specs[sec][p.name] = p;
  S.values = { ...h.values };
  S.confirmed = { ...h.values };
  S.overrides = { ...(h.overrides || {}) };
  S.mute = new Set(h.mute || []); S.solo = new Set(h.solo || []);
  S.ab = h.ab || "learned"; S.abAvailable = h.ab_available || ["learned"]; S.abGain = h.ab_gain_db || {};
  S.loop = h.loop_s || null;
  S.engineLoop = S.loop;
  S.inserts = h.inserts || {}; S.plugins = h.plugins || []; S.midiMap = h.midi_map || [];
  S.strength = typeof h.strength === "number" ? h.strength : 1;
  S.meters = null;
  controls.clear();
  $("song").textContent = h.song_dir ? h.song_dir.split("/").filter(Boolean).pop() : "";
  $("song").title = h.song_dir || "";
  // fader height from the room the console has
  const consoleH = $("console").clientHeight;
  faderHeight = clamp(consoleH - 320, 80, 320);
  const box = $("strips");
  box.textContent = "";
  const frag = document.createDocumentFragment();
  strips = h.tracks.map((t, i) => { const s = buildStrip(t, i); frag.append(s.root); return s; });
  box.append(frag);
  if (stripObserver) stripObserver.disconnect();
  stripObserver = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const st = stripByRoot.get(e.target);
      if (st) st.visible = e.isIntersecting;
    }
    S.metersDirty = true; wake();
  }, { root: box, rootMargin: "0px 200px" });
  stripByRoot.clear();
  for (const st of strips) { stripByRoot.set(st.root, st); stripObserver.observe(st.root); }
  masterUI = buildMaster();
  showMuteSolo();
  showInsertBadges();
  fillPlugins();
  buildAb();
  showStrength();
  for (const s of strips) thumbDirty(s.where);
  thumbDirty("master");
  const keep = S.selected && (S.selected === "master" || strips.some((s) => s.where === S.selected));
  select(keep ? S.selected : (strips.length ? strips[0].where : "master"));
  drawWave();
  document.body.dataset.ready = "1";
  addMessage("info", `connected: ${h.tracks.length} tracks at ${h.sample_rate_hz} Hz, ` +
    `${h.block_frames}-frame blocks${h.session_path ? `, session ${h.session_path}` : ""}`);
  $("status").textContent = `${h.tracks.length} tracks \u00b7 ${h.sample_rate_hz} Hz \u00b7 ${h.block_frames} frames`;
}
function onValues(vals) {
  const now = performance.now();
  for (const [t, v] of Object.entries(vals)) {
    S.confirmed[t] = v;
    // while the user drags a control, the engine's echo of older values must not pull it back
    if (now - (S.localEdit[t] || -1e9) < 400 && Math.abs(S.values[t] - v) > 1e-9) {
      reconcileLater(t);
      continue;
    }
    S.values[t] = v;
    refreshTarget(t);
  }
}
// Once the user has let go, the page shows what the engine holds (it may have clamped a value).
const reconcileTimers = new Map();
function reconcileLater(t) {
  clearTimeout(reconcileTimers.get(t));
  reconcileTimers.set(t, setTimeout(() => {
    reconcileTimers.delete(t);
    if (performance.now() - (S.localEdit[t] || -1e9) < 400) { reconcileLater(t); return; }
    if (t in S.confirmed && S.values[t] !== S.confirmed[t]) { S.values[t] = S.confirmed[t]; refreshTarget(t); }
  }, 450));
}
function onState(st) {
  if ("mute" in st) S.mute = new Set(st.mute);
  if ("solo" in st) S.solo = new Set(st.solo);
  if ("mute" in st || "solo" in st) showMuteSolo();
  if ("ab" in st) S.ab = st.ab;
  if ("ab_available" in st) S.abAvailable = st.ab_available;
  if ("ab_gain_db" in st) S.abGain = st.ab_gain_db;
  if ("ab" in st || "ab_available" in st || "ab_gain_db" in st) buildAb();
  if ("loop_s" in st) { S.loop = st.loop_s; S.engineLoop = st.loop_s; showLoop(); }
  if ("inserts" in st) { S.inserts = st.inserts; showInsertBadges(); renderInserts(); }
  if ("plugins" in st) { S.plugins = st.plugins; fillPlugins(); }
  if ("strength" in st) { S.strength = st.strength; showStrength(); }
  if ("overrides" in st) {
    const old = S.overrides;
    S.overrides = { ...st.overrides };
    for (const t of new Set([...Object.keys(old), ...Object.keys(S.overrides)])) refreshTarget(t);
  }
  if ("midi_map" in st) {
    S.midiMap = st.midi_map;
    if (S.learnTarget && S.midiMap.some((m) => m.target === S.learnTarget)) {
      const m = mappedCC(S.learnTarget);
      addMessage("info", `MIDI ch${m.channel} CC${m.cc} now moves ${S.learnTarget}`);
      S.learnTarget = null;
      document.querySelectorAll(".lrn.waiting").forEach((e) => e.classList.remove("waiting"));
    }
    for (const t of controls.keys()) refreshTarget(t);
  }
  if ("predicted" in st && S.hello) Object.assign(S.hello.predicted, st.predicted);
  if ("session_path" in st && S.hello) S.hello.session_path = st.session_path;
  if ("frozen" in st && S.hello) S.hello.frozen = st.frozen;
}
function onMessage(ev) {
  let msg;
  try { msg = JSON.parse(ev.data); } catch { return; }
  switch (msg.type) {
    case "hello": onHello(msg); break;
    case "meters": S.meters = msg; S.metersDirty = true; wake(); break;
    case "values": onValues(msg.values || {}); break;
    case "state": onState(msg); break;
    case "message": addMessage(msg.level || "info", msg.text); break;
    default: break;
  }
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i].type === msg.type) { waiters[i].resolve(msg); waiters.splice(i, 1); }
  }
}

// ---------------------------------------------------------------------------------------------
// the frame loop: meters from the latest snapshot, EQ and thumbnails when dirty. A frame is
// asked for only when something changed (wake()): meters arrive at ~20 Hz, so an idle page draws
// at most 20 times a second and nothing at all when the engine is stopped (an endless
// requestAnimationFrame loop would make the browser run 60 frames a second for nothing, which
// with software rendering is CPU taken from the audio on a small machine).
let lastPos = -1, lastPlaying = null, lastStatus = "";
let frameScheduled = false;
function wake() {
  if (!frameScheduled) { frameScheduled = true; requestAnimationFrame(frame); }
}
function frame(now) {
  frameScheduled = false;
  S.frames += 1;
  if (pendingSets.size) flushSets();
  const m = S.meters;
  if (m && S.metersDirty) {
    S.metersDirty = false;
    const n = Math.min(strips.length, (m.peak_db || []).length);
    for (let i = 0; i < n; i++) {
      const s = strips[i];
      if (!s.visible) continue;          // scrolled away: drawn again when it comes into view
      drawMeter(s.meter, m.peak_db[i], m.rms_db[i], now);
      drawGr(s.gr, m.gr_db[i]);
    }
    if (masterUI && m.master) {
      drawMeter(masterUI.meter, m.master.peak_db, m.master.rms_db, now);
      drawGr(masterUI.gr, m.master.gr_db);
      for (const [k, node] of Object.entries(masterUI.lv)) {
        const v = m.master[k];
        if (typeof v !== "number") continue;
        const text = `${fmtDb(v)} ${node.dataset.unit}`;
        if (masterUI.lvText[k] !== text) { node.textContent = text; masterUI.lvText[k] = text; }
      }
    }
    if (m.position_s !== lastPos) {
      lastPos = m.position_s;
      const w = overviewWidth;
      $("playhead").style.transform = `translateX(${((m.position_s / S.length) * w).toFixed(1)}px)`;
      $("time").textContent = fmtTime(m.position_s);
    }
    if (m.playing !== lastPlaying) { lastPlaying = m.playing; $("play").classList.toggle("on", !!m.playing); }
    const status = `xruns ${m.xruns ?? 0} \u00b7 late ${m.late ?? 0}`;
    if (status !== lastStatus) {
      lastStatus = status;
      $("status").textContent = status;
      $("status").classList.toggle("warn", (m.xruns || 0) > 0);
      $("status").classList.toggle("bad", (m.late || 0) > 0);
    }
  }
  if (dirtyThumbs.size) {
    for (const where of dirtyThumbs) {
      if (where === "master") { if (masterUI) drawThumb(masterUI.thumb, "master"); }
      else { const s = strips.find((x) => x.where === where); if (s) drawThumb(s.thumb, where); }
    }
    dirtyThumbs.clear();
  }
  if (eq.dirty) { eq.dirty = false; drawEq(); }
}

// ---------------------------------------------------------------------------------------------
// connection + buttons
function connect() {
  const token = new URLSearchParams(location.search).get("token") || "";
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.onmessage = onMessage;
  ws.onopen = () => { $("status").classList.remove("bad"); };
  ws.onclose = (ev) => {
    document.body.dataset.ready = "";
    $("status").textContent = ev.code === 1008 ? "refused: wrong or missing token" : "disconnected: reconnecting\u2026";
    $("status").classList.add("bad");
    if (ev.code !== 1008) setTimeout(connect, 1000);
  };
}
function setupButtons() {
  $("play").addEventListener("click", () => send({ type: "transport", action: "play" }));
  $("stop").addEventListener("click", () => send({ type: "transport", action: "stop" }));
  $("clear-loop").addEventListener("click", () => { S.loop = null; showLoop(); send({ type: "transport", action: "clear_loop" }); });
  $("save").addEventListener("click", () => send({ type: "save" }));
  $("keep").addEventListener("click", () => send({ type: "keep" }));
  $("learn-mode").addEventListener("click", () => {
    S.learning = !S.learning;
    document.body.classList.toggle("learning", S.learning);
    if (!S.learning) document.querySelectorAll(".lrn.waiting").forEach((e) => e.classList.remove("waiting"));
  });
  $("plugin-add").addEventListener("click", () => {
    const plugin = $("plugin-select").value;
    if (plugin && S.selected) send({ type: "insert_add", where: S.selected, plugin });
  });
  let strengthPending = false;
  $("strength").addEventListener("input", () => {
    S.strength = parseFloat($("strength").value);
    $("strength-v").textContent = S.strength.toFixed(2);
    if (!strengthPending) {
      strengthPending = true;
      requestAnimationFrame(() => { strengthPending = false; send({ type: "strength", value: S.strength }); });
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement
        || e.target instanceof HTMLButtonElement) return;   // space on a button presses it
    if (e.code === "Space") {
      e.preventDefault();
      send({ type: "transport", action: lastPlaying ? "stop" : "play" });
    }
  });
  window.addEventListener("resize", () => { drawWave(); });
  // a plain mouse wheel over the console scrolls the strips sideways (controls take their own)
  $("strips").addEventListener("wheel", (e) => {
    if (e.defaultPrevented || e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) return;
    $("strips").scrollLeft += e.deltaY;
    e.preventDefault();
  }, { passive: false });
}

// A small handle for scripts and the browser tests: read-only views plus `record`, which asks
// the engine for a WAV of what it plays (the same message any page may send).
window.studio = {
  get state() { return S; },
  record(seconds, timeoutMs = 20000 + 2000 * seconds) {
    return new Promise((resolve, reject) => {
      const w = { type: "recorded", resolve };
      waiters.push(w);
      send({ type: "record", seconds });
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) { waiters.splice(i, 1); reject(new Error(`no recording after ${timeoutMs} ms`)); }
      }, timeoutMs);
    });
  },
  nodePosition(bandId) {            // page coordinates of an EQ node (for tests and scripts)
    const b = bandsOf(eqSection()).find((x) => x.id === bandId);
    const n = nodeOf(b);
    const r = eq.canvas.getBoundingClientRect();
    return { x: r.left + n.x, y: r.top + n.y };
  },
  select,
};

setupEq();
setupOverview();
setupButtons();
connect();
wake();
