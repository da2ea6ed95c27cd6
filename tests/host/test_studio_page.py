"""The studio page in a real browser (Debian's headless Chromium driven by Playwright) against the
real studio: `mixstyle studio` on the JACK dummy server, its web process and engine. Edits are made
with the page's own controls (keyboard on the fader, mouse drags on the fader and the EQ nodes,
the insert panel) and their effect is measured on the audio the engine plays (the protocol's
`record`). The EQ math of the page (eq.js) is checked against dsp.eq."""

from __future__ import annotations

import json
import os
import re
import shutil
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
        return "Python playwright is not installed (pip: playwright==1.65.2; never `playwright install`)"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found (Debian package chromium)"
    return jack_missing_reason()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=f"studio page tests: {_missing()}")
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
        "([t, v]) => Math.abs(window.studio.state.confirmed[t] - v) <= 1e-5 * Math.max(1, Math.abs(v))",
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


def record(page, seconds: float = 1.5) -> np.ndarray:
    path = page.evaluate("(s) => window.studio.record(s).then((m) => m.path)", seconds)
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
    box = page.locator("#overview").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.up()
    length = page.evaluate("() => window.studio.state.length")
    page.wait_for_function("() => window.studio.state.engineLoop")
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
            assert np.max(np.abs(np.asarray(got) - ref)) < 1e-6   # the same formulas, not close ones


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
    assert expected.max() > 5.0                          # the drag is audible ...
    np.testing.assert_allclose(measured, expected, atol=0.3)   # ... and heard as drawn


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
    assert gain[1000] == pytest.approx(6.0, abs=0.5), gain
    assert abs(gain[100]) < 0.5 and abs(gain[10000]) < 0.5, gain
    assert "FX 1" in page.locator(".strip[data-track='keys'] .ins").inner_text()


def test_a_request_without_the_token_is_refused(studio, browser):
    base = f"http://127.0.0.1:{studio.port}"
    for url in (f"{base}/", f"{base}/static/studio.js", f"{base}/?token=wrong"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        assert e.value.code == 403, url
    with urllib.request.urlopen(studio.url, timeout=10) as r:
        assert r.status == 200 and b"studio.js" in r.read()
    # a page from a foreign origin cannot open the socket either
    import asyncio

    import websockets

    async def attempt(headers, token):
        try:
            async with websockets.connect(f"ws://127.0.0.1:{studio.port}/ws?token={token}",
                                          additional_headers=headers, open_timeout=10) as ws:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return msg.get("type")
        except (websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed):
            return "refused"
    assert asyncio.run(attempt({}, "")) == "refused"
    assert asyncio.run(attempt({"Origin": "http://evil.example"}, studio.token)) == "refused"
    assert asyncio.run(attempt({"Origin": base}, studio.token)) == "hello"


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
        pg.mouse.move(x, y)
        pg.mouse.down()
        pg.mouse.move(x, y + 20, steps=5)
        pg.mouse.move(x, y + 40, steps=5)
        pg.mouse.up()
        v1 = pg.evaluate(f"() => window.studio.state.values['{target}']")
        shown = float(pg.locator(f".fader-val[data-target='{target}']").inner_text().split()[0])
        assert v1 < v0 - 3.0 and shown == pytest.approx(v1, abs=0.05)
        wait_confirmed(pg, target, v1)
        after = record(pg, 1.2)
        assert rms_db(after) - rms_db(before) == pytest.approx(v1 - v0, abs=0.1)
        assert not pg.errors, pg.errors
        pg.close()
    finally:
        s.stop()
