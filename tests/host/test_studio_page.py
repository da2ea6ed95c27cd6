"""The studio page in a real browser (Debian's headless Chromium driven by Playwright) against the
real studio: `mixstyle studio` on the JACK dummy server, its web process and engine. Edits are made
with the page's own controls (keyboard on the fader, mouse drags on the fader and the EQ nodes,
the insert panel) and their effect is measured on the audio the engine plays (the protocol's
`record`). The EQ math of the page (eq.js) is checked against dsp.eq."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from dsp.eq import eq_curve_db
from dsp.params import MASTER_NAMES, TRACK_NAMES
from host.jack_server import JackServer, jack_missing_reason

SR = 48000
BLOCK = 128
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("Python playwright is not installed (pip: playwright==1.65.2; never "
                "`playwright install`)")
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found (Debian package chromium)"
    return jack_missing_reason()


pytestmark = [pytest.mark.skipif(_missing() is not None, reason=f"studio page tests: {_missing()}"),
              pytest.mark.long(90)]   # seconds: scheduled first (tests/conftest.py)
HAVE_ZAM = os.path.exists("/usr/lib/vst3/ZamEQ2.vst3")

# --- material: stationary multitones at whole-Hz frequencies (1 s periodic), so one 48000-sample
# stretch of any recording gives each tone's exact amplitude, wherever the playhead was ------------
TONES = {
    "drums": [60, 150, 3000, 9000],
    "bass": [50, 90, 180, 360],
    "vocals": [220, 440, 880, 1760, 3520],
    "keys": [100, 200, 400, 700, 1000, 1500, 2500, 4000, 7000, 10000],
}


def _multitone(freqs, seconds, amp, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    return np.stack([x, x]).astype(np.float32)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    scipy.io.wavfile.write(path, SR, np.ascontiguousarray(pcm.T))


def make_song(folder: Path, tracks: dict[str, list[int]], seconds: float, amp: float) -> Path:
    stems = folder / "stems"
    stems.mkdir(parents=True)
    for i, (name, freqs) in enumerate(tracks.items()):
        _write_wav(stems / f"{name}.wav", _multitone(freqs, seconds, amp, i))
    return stems


def read_wav(path: str) -> np.ndarray:
    rate, data = scipy.io.wavfile.read(path)
    assert rate == SR, (path, rate)
    if np.issubdtype(data.dtype, np.integer):
        return data.T.astype(np.float64) / float(np.iinfo(data.dtype).max)
    return np.asarray(data, dtype=np.float64).T


def tone_db(audio: np.ndarray, freqs) -> np.ndarray:
    """Level (dB) of each whole-Hz tone over the last full second of ``audio`` (both channels)."""
    seg = audio[:, -SR:]
    spec = np.abs(np.fft.rfft(seg, axis=1)).mean(axis=0)
    return 20 * np.log10(spec[np.asarray(freqs)] + 1e-30)


def rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio[:, -SR:] ** 2) + 1e-30))


# --- the studio process --------------------------------------------------------------------------
class Studio:
    """`mixstyle studio STEMS --no-browser` as a subprocess; ``url`` is the URL it prints."""

    URL = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_\-]+)")

    def __init__(self, stems: Path, *extra: str, timeout_s: float = 120.0) -> None:
        self.log = stems.parent / f"studio_{int(time.time() * 1000)}.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-c", "import sys; from mixstyle.cli import main; sys.exit(main())",
               "studio", str(stems), "--no-browser", "--block", str(BLOCK), *extra]
        self._logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(ROOT), start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log.read_text()
            m = self.URL.search(text)
            if m:
                self.port, self.token, self.url = int(m.group(1)), m.group(2), m.group(0)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the studio did not print its URL:\n{text[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._logf.close()


@pytest.fixture(scope="module")
def jack():
    srv = JackServer(sample_rate_hz=SR, period_frames=BLOCK)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, studio: Studio, width=1600, height=1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(studio.url)
    page.wait_for_selector("body[data-ready='1']", timeout=30000)
    page.errors = errors
    return page


def wait_confirmed(page, target: str, value: float, timeout_s: float = 10.0) -> None:
    """Until the engine reports ``target`` at ``value`` (its `values` echo), plus settling."""
    page.wait_for_function(
        "([t, v]) => Math.abs(window.studio.state.confirmed[t] - v)"
        " <= 1e-5 * Math.max(1, Math.abs(v))",
        arg=[target, value], timeout=timeout_s * 1000)
    page.wait_for_timeout(300)          # parameter smoothing and the meters settle


def rewind_and_play(page, at_s: float = 0.5) -> None:
    """Click the overview near the start (seek) and press play: every measurement starts well
    before the end of the song (the material is 1 s periodic, so where does not matter)."""
    box = page.locator("#overview").bounding_box()
    length = page.evaluate("() => window.studio.state.length")
    page.mouse.click(box["x"] + box["width"] * at_s / length, box["y"] + box["height"] / 2)
    page.wait_for_function("(s) => { const m = window.studio.state.meters; "
                           "return m && m.position_s < s + 3; }", arg=at_s)
    if not page.evaluate("() => window.studio.state.meters.playing"):
        page.click("#play")
        page.wait_for_function("() => window.studio.state.meters.playing")


def drag_loop(page, a: float, b: float) -> None:
    """Drag across the overview from fraction ``a`` to ``b`` of the song (the loop gesture)."""
    box = page.locator("#overview").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * a, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (a + b) / 2, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * b, y, steps=4)
    page.mouse.up()
    page.wait_for_function("() => window.studio.state.engineLoop")


def record(page, seconds: float = 1.5) -> np.ndarray:
    """What the engine played for ``seconds`` (the page's `record`). A take during which the
    disk reader was late (the engine played silence for a block: an overloaded machine, shown
    as `late` in the page's status) is taken again, at most twice."""
    late = "() => window.studio.state.meters ? window.studio.state.meters.late : 0"
    for _ in range(3):
        late0 = page.evaluate(late)
        path = page.evaluate("(s) => window.studio.record(s).then((m) => m.path)", seconds)
        page.wait_for_timeout(150)                     # the next meters carry the count
        if page.evaluate(late) == late0:
            break
    return read_wav(path)


def solo_only(page, name: str | None) -> None:
    """Click the solo buttons so that only ``name`` (or nothing) is soloed; wait for the engine."""
    soloed = page.evaluate("() => [...window.studio.state.solo]")
    for other in soloed:
        if other != name:
            page.click(f"button.solo[data-track='{other}']")
    if name is not None and name not in soloed:
        page.click(f"button.solo[data-track='{name}']")
    want = [] if name is None else [name]
    page.wait_for_function("(w) => JSON.stringify([...window.studio.state.solo]) === "
                           "JSON.stringify(w)", arg=want)
    page.wait_for_timeout(400)          # the solo gain ramps


def track_values(page, name: str) -> dict[str, float]:
    vals = page.evaluate("() => window.studio.state.values")
    return {p: vals[f"track:{name}:{p}"] for p in TRACK_NAMES}


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("song"), TONES, seconds=30.0, amp=0.02)


@pytest.fixture(scope="module")
def studio(jack, song):
    s = Studio(song)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def page(browser, studio):
    pg = open_page(browser, studio)
    yield pg
    assert not pg.errors, pg.errors
    pg.close()


# --- tests ----------------------------------------------------------------------------------------
def test_loop_drag_and_clear_reach_the_engine(page):
    drag_loop(page, 0.25, 0.5)
    length = page.evaluate("() => window.studio.state.length")
    a, b = page.evaluate("() => window.studio.state.engineLoop")
    assert a == pytest.approx(0.25 * length, abs=0.05 * length)
    assert b == pytest.approx(0.5 * length, abs=0.05 * length)
    page.click("#clear-loop")
    page.wait_for_function("() => window.studio.state.engineLoop === null")


def test_all_tracks_are_listed_with_units(page):
    names = page.eval_on_selector_all(".strip[data-track]", "els => els.map(e => e.dataset.track)")
    assert names == sorted(TONES)
    # every value shows its unit
    vox = page.locator(".strip[data-track='vocals']")
    texts = vox.locator(".ctl .val").all_inner_texts()
    assert any(t.endswith("dBFS") for t in texts) and any(t.endswith(":1") for t in texts)
    assert any(t.endswith(" ms") for t in texts)
    assert vox.locator(".fader-val").inner_text().endswith("dB")
    assert page.locator("#master-strip .loud").inner_text().count("LUFS") == 3


SETTINGS = [
    {},
    {"hpf_freq_hz": 80.0, "hpf_q": 1.2, "low_shelf_gain_db": 4.5, "low_shelf_freq_hz": 90.0,
     "peak1_freq_hz": 300.0, "peak1_gain_db": -6.0, "peak1_q": 2.5, "lpf_freq_hz": 9000.0},
    {"peak2_freq_hz": 2200.0, "peak2_gain_db": 12.0, "peak2_q": 0.4, "peak3_freq_hz": 15000.0,
     "peak3_gain_db": -18.0, "peak3_q": 8.0, "high_shelf_freq_hz": 1500.0,
     "high_shelf_gain_db": -9.0, "lpf_freq_hz": 1000.0, "lpf_q": 1.5},
    {"hpf_freq_hz": 1000.0, "hpf_q": 0.5, "low_shelf_freq_hz": 600.0, "low_shelf_gain_db": -18.0,
     "high_shelf_freq_hz": 16000.0, "high_shelf_gain_db": 18.0},
]


@pytest.mark.parametrize("sample_rate", [48000.0, 22050.0])
def test_eq_js_matches_dsp_eq(page, sample_rate):
    """eq.js draws the same curve as dsp.eq (RBJ designs of dsp.biquad), within 0.1 dB."""
    freqs = np.geomspace(10.0, 0.499 * sample_rate, 300)
    for i, setting in enumerate(SETTINGS):
        for section, names in (("track", TRACK_NAMES), ("master", MASTER_NAMES)):
            values = {k: v for k, v in setting.items() if k in names}
            ref = eq_curve_db(section, values, freqs, sample_rate)
            full = {p: (values.get(p, d)) for p, d in _neutral(section).items()}
            got = page.evaluate(
                """async ([section, vals, freqs, sr]) => {
                    const eq = await import('/static/eq.js');
                    return Array.from(eq.eqCurveDb(section, eq.getterOf(vals), freqs, sr));
                }""", [section, full, freqs.tolist(), sample_rate])
            np.testing.assert_allclose(got, ref, atol=0.1, err_msg=f"setting {i} {section}")
            print(f"eq.js vs dsp.eq at {sample_rate:g} Hz, setting {i} {section}: "
                  f"max {np.max(np.abs(np.asarray(got) - ref)):.2e} dB")
            # the same formulas, not close ones
            assert np.max(np.abs(np.asarray(got) - ref)) < 1e-6


def _neutral(section):
    from dsp.params import neutral
    return {k: v for k, v in neutral(section).items() if v is not None}


def test_fader_keys_change_the_track_level_by_the_shown_amount(page):
    solo_only(page, "vocals")
    rewind_and_play(page)
    target = "track:vocals:output_gain_db"
    fader = page.locator(f".fader[data-target='{target}']")
    shown = page.locator(f".fader-val[data-target='{target}']")
    before_text = shown.inner_text()
    before = record(page)
    fader.focus()
    for _ in range(12):                 # 12 x 0.5 dB down
        page.keyboard.press("ArrowDown")
    after_text = shown.inner_text()
    shown_change = float(after_text.split()[0]) - float(before_text.split()[0])
    assert shown_change == pytest.approx(-6.0, abs=0.05), (before_text, after_text)
    wait_confirmed(page, target, page.evaluate(f"() => window.studio.state.values['{target}']"))
    after = record(page)
    measured = rms_db(after) - rms_db(before)
    print(f"fader: shown {shown_change:+.2f} dB, measured {measured:+.3f} dB")
    assert measured == pytest.approx(shown_change, abs=0.1), (measured, shown_change)
    # the other tracks are soloed away: the recording is the vocals alone
    assert tone_db(after, TONES["keys"]).max() < tone_db(after, TONES["vocals"]).max() - 60
    # the fader is marked as the user's value; releasing it goes back to the model's value
    assert "ovr" in page.locator(".fader-wrap", has=fader).get_attribute("class")


def test_eq_node_drag_changes_the_measured_response(page):
    solo_only(page, "keys")
    rewind_and_play(page)
    page.click(".strip[data-track='keys'] .strip-head")
    page.wait_for_function("() => window.studio.state.selected === 'track:keys'")
    before_vals = track_values(page, "keys")
    before = record(page)
    node = page.evaluate("() => window.studio.nodePosition('peak2')")
    page.mouse.move(node["x"], node["y"])
    page.mouse.down()
    page.mouse.move(node["x"] + 30, node["y"] - 40, steps=8)
    page.mouse.move(node["x"] + 60, node["y"] - 80, steps=8)
    page.mouse.up()
    after_vals = track_values(page, "keys")
    assert after_vals["peak2_gain_db"] > before_vals["peak2_gain_db"] + 6
    assert after_vals["peak2_freq_hz"] > before_vals["peak2_freq_hz"]
    for p in ("peak2_gain_db", "peak2_freq_hz"):
        wait_confirmed(page, f"track:keys:{p}", after_vals[p])
    after = record(page)
    freqs = TONES["keys"]
    measured = tone_db(after, freqs) - tone_db(before, freqs)
    expected = (eq_curve_db("track", after_vals_eq(after_vals), np.array(freqs, float), SR)
                - eq_curve_db("track", after_vals_eq(before_vals), np.array(freqs, float), SR))
    print(f"track EQ drag: expected up to {expected.max():+.2f} dB, "
          f"max |measured - expected| {np.max(np.abs(measured - expected)):.3f} dB")
    assert expected.max() > 5.0                          # the drag is audible ...
    np.testing.assert_allclose(measured, expected, atol=0.3)   # ... and heard as drawn


def test_master_eq_node_drag_changes_the_mix(page):
    """The master's EQ view: a drag of its low-mid peak is heard on every track's tones."""
    solo_only(page, None)
    rewind_and_play(page)
    page.click("#master-strip .strip-head")
    page.wait_for_function("() => window.studio.state.selected === 'master'")
    vals = page.evaluate("() => window.studio.state.values")
    eq_names = [n for n in MASTER_NAMES if n.startswith(("low_shelf", "high_shelf", "peak"))]
    before_vals = {n: vals[f"master:{n}"] for n in eq_names}
    before = record(page)
    node = page.evaluate("() => window.studio.nodePosition('peak1')")
    page.mouse.move(node["x"], node["y"])
    page.mouse.down()
    page.mouse.move(node["x"] + 20, node["y"] - 30, steps=6)
    page.mouse.move(node["x"] + 40, node["y"] - 50, steps=6)
    page.mouse.up()
    vals = page.evaluate("() => window.studio.state.values")
    after_vals = {n: vals[f"master:{n}"] for n in eq_names}
    assert after_vals["peak1_gain_db"] > before_vals["peak1_gain_db"] + 4
    for p in ("peak1_gain_db", "peak1_freq_hz"):
        wait_confirmed(page, f"master:{p}", after_vals[p])
    after = record(page)
    freqs = sorted(f for tones in TONES.values() for f in tones)
    measured = tone_db(after, freqs) - tone_db(before, freqs)
    f = np.array(freqs, float)
    expected = (eq_curve_db("master", after_vals, f, SR)
                - eq_curve_db("master", before_vals, f, SR))
    print(f"master EQ drag: expected up to {expected.max():+.2f} dB, "
          f"max |measured - expected| {np.max(np.abs(measured - expected)):.3f} dB")
    assert expected.max() > 3.0
    np.testing.assert_allclose(measured, expected, atol=0.3)


def after_vals_eq(vals):
    eq_names = [n for n in TRACK_NAMES if n.startswith(("hpf", "lpf", "low_shelf", "high_shelf",
                                                          "peak"))]
    return {n: vals[n] for n in eq_names}


@pytest.mark.skipif(not HAVE_ZAM, reason="zam-plugins VST3 (Debian package zam-plugins) missing")
def test_vst3_insert_added_from_the_page_processes_audio(page):
    solo_only(page, "keys")
    rewind_and_play(page)
    page.click(".strip[data-track='keys'] .strip-head")
    before = record(page)
    page.select_option("#plugin-select", label="ZamEQ2")
    page.click("#plugin-add")
    card = page.locator("#inserts .insert").first
    card.wait_for()
    assert "ZamEQ2" in card.locator(".iname").inner_text()
    for name, value in (("frequency_1_hz", "1000"), ("bandwidth_1", "1"), ("boost_cut_1_db", "6")):
        inp = card.locator(f"input[data-param='{name}']")
        inp.fill(value)
        inp.press("Enter")
        page.wait_for_function(
            """([n, v]) => { const i = window.studio.state.inserts['track:keys'];
                   return i && Math.abs(i[0].parameters[n].value - v) < 0.05; }""",
            arg=[name, float(value)])
        card = page.locator("#inserts .insert").first
    page.wait_for_timeout(400)
    after = record(page)
    freqs = TONES["keys"]
    gain = dict(zip(freqs, tone_db(after, freqs) - tone_db(before, freqs)))
    print(f"ZamEQ2 +6 dB at 1 kHz: measured {gain[1000]:+.2f} dB at 1 kHz, "
          f"{gain[100]:+.2f} dB at 100 Hz")
    assert gain[1000] == pytest.approx(6.0, abs=0.5), gain
    assert abs(gain[100]) < 0.5 and abs(gain[10000]) < 0.5, gain
    assert "FX 1" in page.locator(".strip[data-track='keys'] .ins").inner_text()
    # bypass from the page: the boost is gone; again: it is back
    for bypassed, boost in ((True, 0.0), (False, 6.0)):
        page.locator("#inserts .insert").first.locator("button.bypass").click()
        page.wait_for_function("(b) => window.studio.state.inserts['track:keys'][0].bypassed === b",
                               arg=bypassed)
        page.wait_for_timeout(400)
        level = tone_db(record(page), [1000])[0] - tone_db(before, [1000])[0]
        assert level == pytest.approx(boost, abs=0.5), (bypassed, level)
    # a second insert, removed again from the page
    page.select_option("#plugin-select", label="ZamCompX2")
    page.click("#plugin-add")
    page.wait_for_function("() => window.studio.state.inserts['track:keys'].length === 2")
    page.locator("#inserts .insert").nth(1).locator("button.remove").click()
    page.wait_for_function("() => window.studio.state.inserts['track:keys'].length === 1")
    assert page.locator("#inserts .insert").count() == 1


def test_release_mute_and_keep_from_the_page(page, song):
    """The release button gives a changed fader back to the model; mute silences its track on
    the audio; "Keep as my mix" writes the page's setting as <song>/setting.json."""
    target = "track:vocals:output_gain_db"
    predicted = page.evaluate(f"() => window.studio.state.hello.predicted['{target}']")
    fader = page.locator(f".fader[data-target='{target}']")
    fader.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function(f"() => '{target}' in window.studio.state.overrides")
    wrap = page.locator(".fader-wrap", has=fader)
    wrap.hover()
    wrap.locator(".rel").click()
    page.wait_for_function(f"() => !('{target}' in window.studio.state.overrides)")
    wait_confirmed(page, target, predicted)
    assert "ovr" not in wrap.get_attribute("class")

    solo_only(page, None)
    rewind_and_play(page)
    before = record(page)
    page.click("button.mute[data-track='drums']")
    page.wait_for_function("() => window.studio.state.mute.has('drums')")
    page.wait_for_timeout(400)
    after = record(page)
    page.click("button.mute[data-track='drums']")
    page.wait_for_function("() => !window.studio.state.mute.has('drums')")
    drums = tone_db(after, TONES["drums"]) - tone_db(before, TONES["drums"])
    vocals = tone_db(after, TONES["vocals"]) - tone_db(before, TONES["vocals"])
    assert np.all(drums < -60), drums
    np.testing.assert_allclose(vocals, 0.0, atol=0.1)

    page.click("#keep")
    page.wait_for_function("() => window.studio.state.messages.some(m => /setting/.test(m.text))")
    setting = json.loads((song.parent / "setting.json").read_text())
    values = page.evaluate("() => window.studio.state.values")
    keys = next(t for t in setting["tracks"] if t["name"] == "keys")
    for p in ("peak2_gain_db", "peak2_freq_hz", "output_gain_db"):
        assert keys["params"][p] == pytest.approx(values[f"track:keys:{p}"], abs=1e-4), p


def test_ab_plain_plays_the_neutral_console(page):
    """A/B from the page: "plain" is the neutral console (every stem's tone at the same level, as
    the stems were made), "learned" brings the edits back; no producer's mix in this song."""
    solo_only(page, None)
    rewind_and_play(page)
    target = "track:drums:output_gain_db"
    start = page.evaluate(f"() => window.studio.state.values['{target}']")
    page.locator(f".fader[data-target='{target}']").focus()
    page.keyboard.press("PageDown")                       # drums -3 dB in the learned console
    wait_confirmed(page, target, start - 3.0)
    buttons = page.eval_on_selector_all("#ab .btn", "els => els.map(e => e.dataset.source)")
    assert buttons == ["learned", "plain"]
    assert page.locator("#ab .btn[data-source='plain'] small").inner_text().endswith("dB")
    page.click("#ab .btn[data-source='plain']")
    page.wait_for_function("() => window.studio.state.ab === 'plain'")
    page.wait_for_timeout(400)
    plain = record(page)
    page.click("#ab .btn[data-source='learned']")
    page.wait_for_function("() => window.studio.state.ab === 'learned'")
    page.wait_for_timeout(400)
    learned = record(page)
    freqs = sorted(f for tones in TONES.values() for f in tones)
    levels = tone_db(plain, freqs)
    assert levels.max() - levels.min() < 0.2, dict(zip(freqs, levels.round(2)))
    # learned against plain: each drums and bass tone moves by its track's gains and EQ and the
    # master EQ as the page shows them (the -3 dB fader included), plus one loudness-match gain
    vals = page.evaluate("() => window.studio.state.values")
    master = {n: vals[f"master:{n}"] for n in MASTER_NAMES
              if n.startswith(("low_shelf", "high_shelf", "peak"))}
    residual = []
    for name in ("drums", "bass"):
        tv = track_values(page, name)
        f = np.array(TONES[name], float)
        expected = (tv["input_gain_db"] + tv["output_gain_db"]
                    + eq_curve_db("track", after_vals_eq(tv), f, SR)
                    + eq_curve_db("master", master, f, SR))
        residual += list(tone_db(learned, TONES[name]) - tone_db(plain, TONES[name]) - expected)
    assert max(residual) - min(residual) < 0.2, residual
    assert vals[target] == pytest.approx(start - 3.0)


def test_midi_learn_from_the_page(page):
    """MIDI learn on a control (the M badge in learn mode), then a knob on a JACK MIDI port
    moves it; right-click on the badge unbinds. A knob turned sends a stream of CCs, so the
    test sends until the binding shows, then until the knob's end value shows (at most 10 s
    each): JACK drops the MIDI events of a cycle a client missed (the dummy server runs
    without real-time priority; ~0.2-1% of CCs on a loaded 2-core machine), and a lone CC
    was lost twice (never bound in CI, 2026-12-06; the hard-left value once in a loop since).
    Learn mode is left whatever happens (left on, it failed the tests after it)."""
    import rtmidi
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "controller")
    bound = "() => window.studio.state.midiMap.some(m => m.target === '%s' && m.cc === 21)"
    try:
        ports = sender.get_ports()
        ours = [i for i, p in enumerate(ports) if "mixstyle" in p and "control" in p]
        assert ours, f"the studio's MIDI input is not on the JACK server: {ports}"
        sender.open_port(ours[0])
        target = "track:keys:pan"
        ctl = page.locator(f".ctl[data-target='{target}']")
        page.click("#learn-mode")
        ctl.locator(".lrn").click()
        page.wait_for_function("() => window.studio.state.messages.some("
                               "m => /MIDI learn/.test(m.text))")
        deadline = time.monotonic() + 10.0
        while not page.evaluate(bound % target) and time.monotonic() < deadline:
            sender.send_message([0xB2, 21, 64])           # channel 2 (0-based), CC 21
            page.wait_for_timeout(100)
        assert page.evaluate(bound % target), "no CC 21 binding 10 s into the knob turn"
        assert "mapped" in ctl.get_attribute("class")
        left = ("() => Math.abs(window.studio.state.confirmed['%s'] + 1.0) <= 1e-5" % target)
        deadline = time.monotonic() + 10.0                # knob fully left: pan hard left
        while not page.evaluate(left) and time.monotonic() < deadline:
            sender.send_message([0xB2, 21, 0])
            page.wait_for_timeout(100)
        wait_confirmed(page, target, -1.0)
        assert ctl.locator(".val").inner_text() == "L 1.00"
        ctl.locator(".lrn").click(button="right")
        page.wait_for_function("() => window.studio.state.midiMap.length === 0")
        assert "mapped" not in ctl.get_attribute("class")
    finally:
        if page.evaluate("() => window.studio.state.learning"):
            page.click("#learn-mode")
        sender.close_port()
        sender.delete()


def test_a_request_without_the_token_is_refused(studio, browser):
    base = f"http://127.0.0.1:{studio.port}"
    for url in (f"{base}/", f"{base}/static/studio.js", f"{base}/?token=wrong"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        assert e.value.code == 403, url
    with urllib.request.urlopen(studio.url, timeout=10) as r:
        assert r.status == 200 and b"studio.js" in r.read()
    # the WebSocket: no token, a wrong one, or a foreign Origin are refused
    import websockets.exceptions
    from websockets.sync.client import connect

    def attempt(token, headers=None):
        try:
            with connect(f"ws://127.0.0.1:{studio.port}/ws?token={token}",
                         additional_headers=headers, open_timeout=10) as ws:
                return json.loads(ws.recv(timeout=10)).get("type")
        except (websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed):
            return "refused"
    assert attempt("") == "refused"
    assert attempt("wrong" + studio.token) == "refused"
    assert attempt(studio.token, {"Origin": "http://evil.example"}) == "refused"
    assert attempt(studio.token, {"Origin": base}) == "hello"


def test_saving_and_reopening_a_session_restores_the_same_output(page, studio, song, browser):
    """Fader, EQ and (where installed) the insert from the tests above are in the session."""
    solo_only(page, None)
    rewind_and_play(page)
    target = "track:bass:output_gain_db"
    page.locator(f".fader[data-target='{target}']").focus()
    for _ in range(5):
        page.keyboard.press("ArrowUp")
    wait_confirmed(page, target, page.evaluate(f"() => window.studio.state.values['{target}']"))
    page.click("#save")
    page.wait_for_function("() => window.studio.state.hello.session_path")
    session = page.evaluate("() => window.studio.state.hello.session_path")
    assert os.path.exists(session)
    first = record(page, 2.5)
    page.close()
    studio.stop()
    again = Studio(song, "--session", session)
    try:
        pg = open_page(browser, again)
        rewind_and_play(pg)
        pg.wait_for_timeout(500)
        second = record(pg, 2.5)
        overrides = pg.evaluate("() => window.studio.state.overrides")
        pg.close()
    finally:
        again.stop()
    assert target in overrides
    residual = _aligned_residual_db(first, second)
    print(f"session reopened: residual {residual:.1f} dB")
    assert residual <= -90.0, residual
    # and the session did change the sound: against the plain song the difference is large
    fresh = Studio(song)
    try:
        pg = open_page(browser, fresh)
        rewind_and_play(pg)
        pg.wait_for_timeout(500)
        plain = record(pg, 2.5)
        pg.close()
    finally:
        fresh.stop()
    assert _aligned_residual_db(first, plain) > -30.0


def _aligned_residual_db(a: np.ndarray, b: np.ndarray) -> float:
    """Level of (b - a) against a, b shifted by the whole number of samples that matches best
    (the two recordings start at different places of the 1 s periodic material)."""
    seg = b[0, -SR:]
    ref = a[0, -2 * SR:]
    corr = np.fft.irfft(np.fft.rfft(ref, 4 * SR) * np.conj(np.fft.rfft(seg, 4 * SR)), 4 * SR)
    lag = int(np.argmax(corr[:SR + 1]))
    aa = a[:, -2 * SR + lag: -2 * SR + lag + SR]
    bb = b[:, -SR:]
    return float(10 * np.log10(np.mean((bb - aa) ** 2) / np.mean(aa ** 2) + 1e-30))


def test_64_tracks_render_and_a_fader_drag_works(jack, browser, tmp_path):
    tracks = {f"t{i:02d}": [100 + 10 * i, 1000 + 37 * i] for i in range(64)}
    stems = make_song(tmp_path, tracks, seconds=10.0, amp=0.003)
    s = Studio(stems)
    try:
        pg = open_page(browser, s)
        assert pg.locator(".strip[data-track]").count() == 64
        drag_loop(pg, 0.01, 0.99)        # a 64-track engine on a busy machine: never run out
        name = "t40"
        solo_only(pg, name)
        rewind_and_play(pg)
        before = record(pg, 1.2)
        target = f"track:{name}:output_gain_db"
        f = pg.locator(f".fader[data-target='{target}']")
        f.scroll_into_view_if_needed()
        v0 = pg.evaluate(f"() => window.studio.state.values['{target}']")
        cap = f.locator(".cap").bounding_box()
        x, y = cap["x"] + cap["width"] / 2, cap["y"] + cap["height"] / 2
        sets0, frames0 = pg.evaluate("() => [window.studio.state.sentSets, "
                                     "window.studio.state.frames]")
        pg.mouse.move(x, y)
        pg.mouse.down()
        for k in range(1, 41):           # 40 pointer moves
            pg.mouse.move(x, y + k)
        pg.mouse.up()
        pg.wait_for_timeout(100)
        sets1, frames1 = pg.evaluate("() => [window.studio.state.sentSets, "
                                     "window.studio.state.frames]")
        # throttled: at most one `set` per animation frame, whatever the pointer does
        assert 1 <= sets1 - sets0 <= frames1 - frames0 + 1
        v1 = pg.evaluate(f"() => window.studio.state.values['{target}']")
        shown = float(pg.locator(f".fader-val[data-target='{target}']").inner_text().split()[0])
        assert v1 < v0 - 3.0 and shown == pytest.approx(v1, abs=0.05)
        wait_confirmed(pg, target, v1)
        after = record(pg, 1.2)
        print(f"64 tracks: fader drag shown {v1 - v0:+.2f} dB, "
              f"measured {rms_db(after) - rms_db(before):+.3f} dB")
        assert rms_db(after) - rms_db(before) == pytest.approx(v1 - v0, abs=0.1)
        assert not pg.errors, pg.errors
        pg.close()
    finally:
        s.stop()
