"""Screenshots of the studio page for the README: docs/img/studio.png (the whole desk at
1600x1000) and docs/img/studio_eq.png (the EQ view of one track).

Makes a demo song (mixstyle.demo: MMA + fluidsynth) in --work unless it is there, starts
`mixstyle studio SONG --profile presets/default --offline --no-browser` (the offline driver: real
time, no sound card needed), opens the page in Debian's headless Chromium through Playwright,
lets it play a few seconds so the meters move, drags an EQ node of the vocal track and saves
the screenshots (atomically; an existing picture is replaced, these are generated files).

    PYTHONPATH=. .venv/bin/python scripts/studio_screenshots.py [--out docs/img] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_\-]+")


def demo_song(work: Path, seed: int) -> Path:
    song = work / f"song_{seed}"
    if not (song / "stems").is_dir():
        from mixstyle.demo.songs import make_song
        make_song(song, seed, seconds=40.0)
    return song


def start_studio(song: Path, profile: str | None, log: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-c", "import sys; from mixstyle.cli import main; sys.exit(main())",
           "studio", str(song), "--no-browser", "--offline"]
    if profile:
        cmd += ["--profile", profile]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    logf = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while True:
        m = URL.search(log.read_text())
        if m:
            return proc, m.group(0)
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"the studio did not start; its output:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def shoot(url: str, out: Path, track_hint: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from dsp.files import atomic_path
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60000)
        playing = "() => window.studio.state.meters && window.studio.state.meters.playing"
        if not page.evaluate(playing):
            page.click("#play")
        # seek into the song (a click on the overview), where every part plays
        box = page.locator("#overview").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
        names = page.eval_on_selector_all(".strip[data-track]",
                                          "els => els.map(e => e.dataset.track)")
        pick = next((n for n in names if track_hint in n.lower()), names[0])
        page.click(f".strip[data-track='{pick}'] .strip-head")
        # an insert on that track, where the zam-plugins are installed
        plugins = page.eval_on_selector_all("#plugin-select option", "os => os.map(o => o.text)")
        for wanted in ("ZamCompX2", "ZamEQ2"):
            if wanted in plugins:
                page.select_option("#plugin-select", label=wanted)
                page.click("#plugin-add")
                page.locator("#inserts .insert").first.wait_for(timeout=30000)
                break
        # a visible edit: the mid peak up and to the left, marked as the user's value
        node = page.evaluate("() => window.studio.nodePosition('peak2')")
        page.mouse.move(node["x"], node["y"])
        page.mouse.down()
        page.mouse.move(node["x"] - 30, node["y"] - 40, steps=6)
        page.mouse.up()
        page.wait_for_timeout(3000)           # meters and loudness settle
        node = page.evaluate("() => window.studio.nodePosition('peak2')")
        page.mouse.move(node["x"], node["y"])  # hover: the band's readout
        page.wait_for_timeout(300)
        out.mkdir(parents=True, exist_ok=True)
        for name, shot in (("studio.png", lambda path: page.screenshot(path=path)),
                           ("studio_eq.png", lambda path: page.locator("#eq-panel").screenshot(
                               path=path))):
            with atomic_path(out / name) as tmp:
                shot(str(tmp))
            written.append(out / name)
        browser.close()
        if errors:
            raise SystemExit(f"the page raised: {errors}")
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs")
    ap.add_argument("--work", default="/tmp/mixstyle_studio_shots",
                    help="folder for the demo song (kept and reused)")
    ap.add_argument("--seed", type=int, default=7, help="demo song seed")
    ap.add_argument("--profile", default=str(ROOT / "presets" / "default"),
                    help="profile the studio predicts with ('' for none)")
    ap.add_argument("--track", default="lead", help="track whose EQ is shown (part of its name)")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    song = demo_song(work, args.seed)
    proc, url = start_studio(song, args.profile or None, work / "studio.log")
    try:
        for path in shoot(url, Path(args.out), args.track.lower()):
            print(f"wrote {path}")
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
