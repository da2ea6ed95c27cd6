"""The studio page with 64 tracks in headless Chromium (software rendering, no GPU): how smoothly
it animates while the meters stream and a fader is dragged, and how many `set` messages the drag
sends per animation frame (the page coalesces them: at most one per target per frame).

The studio runs `--offline` (the paced driver: real time, no sound card) on 64 synthetic tracks.
Reference: the display's 60 Hz frame (16.7 ms). Software rendering on a shared 2-core machine is
the slow end of what a user has; a browser with a GPU draws the same page faster.

    PYTHONPATH=. .venv/bin/python bench/page_bench.py
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io.wavfile

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SR = 48000
TRACKS = 64
DRAG_S = 6.0


def _song(folder: Path) -> Path:
    stems = folder / "stems"
    stems.mkdir(parents=True)
    t = np.arange(SR * 20) / SR
    for i in range(TRACKS):
        env = 0.5 + 0.5 * np.sin(2 * np.pi * (0.5 + 0.1 * i) * t)
        x = 0.05 * np.sin(2 * np.pi * (60 + 37 * i) * t) * env
        pcm = np.round(np.stack([x, x]).T * 32767).astype(np.int16)
        scipy.io.wavfile.write(stems / f"ch{i + 1:02d}.wav", SR, pcm)
    return stems


def measure() -> dict[str, float]:
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        stems = _song(Path(tmp))
        log = Path(tmp) / "studio.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from mixstyle.cli import main; sys.exit(main())",
             "studio", str(stems), "--no-browser", "--offline"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not (m := re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", log.read_text())):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"studio did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                t0 = time.perf_counter()
                page.goto(m.group(0))
                page.wait_for_selector("body[data-ready='1']", timeout=60000)
                load_s = time.perf_counter() - t0
                page.click("#play")
                page.wait_for_timeout(1000)
                page.evaluate("""() => { window.__f = []; let last = performance.now();
                    const tick = (t) => { window.__f.push(t - last); last = t;
                                          requestAnimationFrame(tick); };
                    requestAnimationFrame(tick); }""")
                s0, f0 = page.evaluate("() => [window.studio.state.sentSets, "
                                       "window.studio.state.frames]")
                cap = page.locator(".strip[data-track='ch05'] .cap").bounding_box()
                x, y = cap["x"] + cap["width"] / 2, cap["y"] + cap["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                moves = 0
                end = time.monotonic() + DRAG_S
                while time.monotonic() < end:
                    page.mouse.move(x, y + 30 * np.sin(moves / 10))
                    moves += 1
                page.mouse.up()
                s1, f1 = page.evaluate("() => [window.studio.state.sentSets, "
                                       "window.studio.state.frames]")
                frames = np.array(page.evaluate("() => window.__f")[2:])
                browser.close()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"load_s": load_s, "p50_ms": float(np.median(frames)),
            "p95_ms": float(np.percentile(frames, 95)), "sets": s1 - s0, "frames": f1 - f0,
            "moves": moves}


def run() -> list[dict]:
    if not os.path.exists(CHROMIUM):
        return [{"name": "studio page: not available", "note": f"{CHROMIUM} missing"}]
    r = measure()
    note = f"{TRACKS} tracks, software rendering, fader dragged {DRAG_S:g} s"
    return [
        {"name": "studio page: open + hello, 64 tracks", "ours": r["load_s"], "unit": "s",
         "note": note},
        {"name": "studio page: frame interval p50 while dragging", "ours": r["p50_ms"],
         "reference": 1000 / 60, "ratio": r["p50_ms"] / (1000 / 60), "unit": "ms", "note": note},
        {"name": "studio page: frame interval p95 while dragging", "ours": r["p95_ms"],
         "reference": 1000 / 60, "ratio": r["p95_ms"] / (1000 / 60), "unit": "ms", "note": note},
        {"name": "studio page: set messages per animation frame", "ours": r["sets"] / r["frames"],
         "target": "<= 1", "unit": "",
         "note": f"{r['sets']} sets for {r['moves']} pointer moves in {r['frames']} frames"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
