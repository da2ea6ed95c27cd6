"""The studio's engine side without any web server: page messages applied to a real engine,
measured on the audio it renders (offline, block by block through ``Engine.process``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.params import loads
from host.engine import Engine, EngineConfig
from host.offline import render_engine
from host.reader import TrackSource
from host.studio.run import prepare, song_folders

SR = 48000
HAVE_ZAM = os.path.exists("/usr/lib/vst3/ZamEQ2.vst3") and \
    os.path.exists("/usr/lib/vst3/ZamCompX2.vst3")
needs_zam = pytest.mark.skipif(not HAVE_ZAM, reason="zam-plugins VST3 (Debian package "
                               "zam-plugins) not installed in /usr/lib/vst3")


def _write(path, audio):
    with AudioFile(str(path), "w", SR, 2, bit_depth=32) as f:
        f.write(np.asarray(audio, dtype=np.float32))


@pytest.fixture
def song(tmp_path, make_stems):
    """<song>/stems/{bass,tone,vox}.wav + <song>/mix.wav (the mix 6 dB quieter than the sum)."""
    stems = make_stems(3, seconds=2.0, n_stems=3, sample_rate=SR)
    t = np.arange(stems.shape[2]) / SR
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stems[1] = np.stack([tone, tone])
    folder = tmp_path / "song"
    (folder / "stems").mkdir(parents=True)
    for name, s in zip(("bass", "tone", "vox"), stems):
        _write(folder / "stems" / f"{name}.wav", s)
    _write(folder / "mix.wav", 0.5 * stems.sum(axis=0))
    return folder, stems


def _service(folder, **kw):
    song_dir, stems_dir = song_folders(str(folder))
    names = ("bass", "tone", "vox")
    eng = Engine([TrackSource(n, path=os.path.join(stems_dir, f"{n}.wav")) for n in names],
                 None, EngineConfig(SR, 128))
    return prepare(eng, song_dir, stems_dir, **kw)


def _db(x):
    return 20 * np.log10(np.max(np.abs(x)) + 1e-30)


def _rms_db(x):
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-30)


def _errors(replies):
    return [r["text"] for r in replies if r["type"] == "message" and r["level"] == "error"]


def test_hello_lists_tracks_params_values_and_the_ab_sources(song):
    svc = _service(song[0])
    h = svc.hello()
    assert [t["name"] for t in h["tracks"]] == ["bass", "tone", "vox"]
    names = {p["name"] for p in h["params"]["track"]}
    assert {"output_gain_db", "pan", "comp_threshold_db", "peak2_freq_hz"} <= names
    assert all({"unit", "min", "max", "scale", "default", "neutral"} <= set(p)
               for p in h["params"]["track"] + h["params"]["master"])
    assert h["values"]["track:vox:output_gain_db"] == 0.0
    assert "master:target_lufs" not in h["values"]            # offline-only: not live
    assert h["ab_available"] == ["learned", "plain", "mix"]
    # the mix is the plain sum at -6 dB: loudness-matched, it gets +6 dB
    assert h["ab_gain_db"]["mix"] == pytest.approx(6.0, abs=0.3)
    assert h["ab_gain_db"]["plain"] == pytest.approx(0.0, abs=0.05)  # neutral = plain here
    assert len(h["waveform"]) == 1000 and all(lo <= hi for lo, hi in h["waveform"])
    json.dumps(h, allow_nan=False)                                  # valid JSON, finite


def test_set_release_and_strength_move_the_engine_and_reply_what_changed(song):
    svc = _service(song[0])
    replies = svc.handle({"type": "set", "target": "track:vox:output_gain_db", "value": -7.5})
    assert replies[0] == {"type": "values", "values": {"track:vox:output_gain_db": -7.5}}
    assert svc.engine.control.value("vox", "output_gain_db") == -7.5
    err = _errors(svc.handle({"type": "set", "target": "track:vox:output_gain_db",
                              "value": 40}))
    assert err and "output_gain_db" in err[0] and "-60 .. 12 dB" in err[0]
    assert _errors(svc.handle({"type": "set", "target": "track:nobody:pan", "value": 0}))
    assert _errors(svc.handle({"type": "set", "target": "master:target_lufs", "value": -14}))
    replies = svc.handle({"type": "release", "target": "track:vox:output_gain_db"})
    assert replies[0]["values"] == {"track:vox:output_gain_db": 0.0}
    assert _errors(svc.handle({"type": "strength", "value": 2}))
    assert _errors(svc.handle({"type": "nonsense"}))
    assert _errors(svc.handle(["not", "an", "object"]))


def test_mute_and_solo_change_what_the_engine_renders(song):
    folder, stems = song
    svc = _service(folder)
    svc.handle({"type": "solo", "track": "tone", "on": True})
    svc.handle({"type": "mute", "track": "vox", "on": True})
    assert svc.hello()["solo"] == ["tone"] and svc.hello()["mute"] == ["vox"]
    svc.engine.settle()
    out = render_engine(svc.engine)
    # only the tone plays, through a neutral console: the output is the tone stem itself
    assert _db(out - stems[1]) < -90.0
    assert _errors(svc.handle({"type": "mute", "track": "ghost", "on": True}))


def test_ab_plain_and_mix_are_played_loudness_matched(song):
    folder, stems = song
    svc = _service(folder)
    svc.handle({"type": "set", "target": "track:bass:output_gain_db", "value": -12.0})
    assert svc.handle({"type": "ab", "source": "mix"})[0] == {"type": "state", "ab": "mix"}
    svc.engine.settle()
    out = render_engine(svc.engine)
    gain = 10 ** (svc.analysis.gain_db["mix"] / 20)
    # the mix file (half the sum) played straight, at the loudness-match gain
    assert _db(out - gain * 0.5 * stems.sum(axis=0)) < -80.0
    assert _errors(svc.handle({"type": "ab", "source": "nothing"}))


def test_the_ab_match_follows_edits_of_the_learned_mix(song):
    """All faders 6 dB down make the learned mix 6 LU quieter: once the edits rest, its loudness
    is measured again (in a worker process) and the plain sum and the mix are matched to it."""
    import time
    from dsp.loudness import integrated_loudness
    folder, stems = song
    svc = _service(folder)
    try:
        before, before_lufs = dict(svc.analysis.gain_db), svc.analysis.lufs["learned"]
        for name in ("bass", "tone", "vox"):
            svc.handle({"type": "set", "target": f"track:{name}:output_gain_db", "value": -6.0})
        replies, deadline = [], time.monotonic() + 60.0
        while not any("ab_gain_db" in r for r in replies) and time.monotonic() < deadline:
            replies += svc.tick(meters=False)
            time.sleep(0.05)
        state = [r for r in replies if "ab_gain_db" in r]
        assert state, "the match was not measured again within 60 s"
        gains = state[-1]["ab_gain_db"]
        assert gains["plain"] == pytest.approx(before["plain"] - 6.0, abs=0.05)
        assert gains["mix"] == pytest.approx(before["mix"] - 6.0, abs=0.05)
        assert svc.rematch.measurements == 1
        assert svc.analysis.lufs["learned"] == pytest.approx(before_lufs - 6.0, abs=0.05)
        # what plays on "mix" now is as loud as the edited learned mix (the song is shorter
        # than the excerpt: the whole song was measured)
        svc.handle({"type": "ab", "source": "mix"})
        svc.engine.settle()
        mix_out = render_engine(svc.engine)
        assert integrated_loudness(mix_out, SR) == pytest.approx(svc.analysis.lufs["learned"],
                                                                 abs=0.1)
        for _ in range(30):   # nothing changed since: no other measurement
            assert not any("ab_gain_db" in r for r in svc.tick(meters=False))
            time.sleep(0.05)
        assert svc.rematch.measurements == 1
        proc = svc.rematch._proc
        assert proc is not None and proc.is_alive()
    finally:
        svc.close()
    assert not proc.is_alive(), "the measuring process outlived the studio"


def test_the_measuring_process_ends_when_the_studio_is_killed(song, tmp_path):
    """A studio killed with SIGKILL (no clean-up runs) must leave no measuring process behind
    holding its output streams: the pipe to it ends, and so does the process."""
    import signal
    import subprocess
    import sys
    import time
    folder, stems = song
    script = tmp_path / "studio_like.py"
    script.write_text(
        "import os, sys, time\n"
        "from dsp.params import setting_to_dict\n"
        "from host.engine import Engine, EngineConfig\n"
        "from host.reader import TrackSource\n"
        "from host.studio.run import prepare, song_folders\n"
        "if __name__ == '__main__':\n"
        f"    song_dir, stems_dir = song_folders({str(folder)!r})\n"
        "    eng = Engine([TrackSource(n, path=os.path.join(stems_dir, n + '.wav'))\n"
        "                  for n in ('bass', 'tone', 'vox')], None, EngineConfig(48000, 128))\n"
        "    svc = prepare(eng, song_dir, stems_dir)\n"
        "    r = svc.rematch.start()\n"
        "    r._conn.send(setting_to_dict(svc.control.setting()))\n"
        "    assert r._conn.recv()[0] == 'lufs'  # it is in its loop now\n"
        "    print(r._proc.pid, flush=True)\n"
        "    time.sleep(600)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        child = int(proc.stdout.readline())
        assert os.path.exists(f"/proc/{child}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{child}/stat") as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        break    # a zombie: it ended (init has not reaped it yet)
            except FileNotFoundError:
                break
            time.sleep(0.1)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the measuring process outlived the killed studio by 20 s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_save_refuses_paths_outside_and_foreign_files_and_writes_a_session(song, tmp_path):
    folder, _ = song
    svc = _service(folder)
    outside = tmp_path / "elsewhere.json"
    assert "outside the song folder" in _errors(svc.handle({"type": "save",
                                                             "path": str(outside)}))[0]
    assert _errors(svc.handle({"type": "save", "path": str(folder / ".." / "x.json")}))
    notes = folder / "notes.json"
    notes.write_text('{"mine": true}')
    assert "not overwritten" in _errors(svc.handle({"type": "save", "path": str(notes)}))[0]
    assert json.loads(notes.read_text()) == {"mine": True}
    replies = svc.handle({"type": "save"})
    assert replies[0] == {"type": "state",
                          "session_path": str(folder / "studio_session.json")}
    assert json.loads((folder / "studio_session.json").read_text())["version"] == 2


def test_keep_writes_setting_json_as_mix_params_does_and_keeps_the_old_one(song):
    from mixstyle.export.json_export import setting_json
    folder, _ = song
    svc = _service(folder)
    svc.handle({"type": "set", "target": "track:vox:output_gain_db", "value": 4.0})
    svc.handle({"type": "set", "target": "track:bass:peak1_gain_db", "value": -3.0})
    svc.handle({"type": "keep"})
    text = (folder / "setting.json").read_text()
    setting = loads(text)  # what `mixstyle learn` and `mix --params` readers use
    assert setting.track("vox").params["output_gain_db"] == 4.0
    assert setting.track("bass").params["peak1_gain_db"] == -3.0
    assert text == setting_json(svc.engine.control.setting(), SR)  # byte for byte
    svc.handle({"type": "set", "target": "track:vox:output_gain_db", "value": 2.0})
    replies = svc.handle({"type": "keep"})
    assert "setting.1.json" in replies[0]["text"]
    assert (folder / "setting.1.json").read_text() == text
    assert loads((folder / "setting.json").read_text()).track("vox").params[
        "output_gain_db"] == 2.0


class NaNPlugin:
    """A Python insert (the insert protocol of host.plugins) that puts out NaN from block 3."""

    name = "NaNPlugin"

    def __init__(self):
        self.blocks = 0

    def process_into(self, buf):
        self.blocks += 1
        if self.blocks >= 3:
            buf[0, 5] = np.nan


class Crasher:
    """A Python insert that ruins its block and then raises, from block 2 on."""

    name = "Crasher"

    def __init__(self):
        self.blocks = 0

    def process_into(self, buf):
        self.blocks += 1
        if self.blocks >= 2:
            buf *= 100.0
            raise RuntimeError("segfault imminent")


def test_a_plugin_returning_nan_is_bypassed_on_its_track_alone(song):
    folder, stems = song
    svc = _service(folder)
    ref_svc = _service(folder)
    for s in (svc, ref_svc):
        s.handle({"type": "set", "target": "track:vox:output_gain_db", "value": -3.0})
        s.engine.settle()
    nan, crash = NaNPlugin(), Crasher()
    svc.engine.add_loaded_insert("tone", nan)
    svc.engine.add_loaded_insert("bass", crash)
    out = render_engine(svc.engine)
    ref = render_engine(ref_svc.engine)
    assert np.isfinite(out).all() and nan.failed and crash.failed
    assert nan.blocks == 3 and crash.blocks == 2      # not called again once bypassed
    assert _db(out - ref) < -90.0                     # every block as if no insert was there
    warnings = [r for r in svc.tick() if r["type"] == "message"]
    assert any("NaNPlugin" in r["text"] and "track 'tone'" in r["text"] and "bypassed"
               in r["text"] for r in warnings), warnings
    assert any("Crasher" in r["text"] and "track 'bass'" in r["text"] and "RuntimeError"
               in r["text"] for r in warnings), warnings
    assert svc.hello()["inserts"]["track:tone"][0]["failed"] is True


@needs_zam
def test_insert_add_param_bypass_remove_from_page_messages(song):
    folder, stems = song
    svc = _service(folder)
    assert "outside the VST3 folders" in _errors(svc.handle(
        {"type": "insert_add", "where": "track:tone", "plugin": str(folder / "x.vst3")}))[0]
    assert _errors(svc.handle({"type": "insert_add", "where": "track:ghost",
                               "plugin": "ZamCompX2"}))
    replies = svc.handle({"type": "insert_add", "where": "track:tone", "plugin": "ZamEQ2"})
    assert not _errors(replies), replies
    ins = replies[0]["inserts"]["track:tone"][0]
    assert ins["name"] and "boost_cut_1_db" in ins["parameters"]
    assert ins["parameters"]["frequency_1_hz"]["unit"] == "Hz"
    svc.handle({"type": "insert_param", "where": "track:tone", "index": 0,
                "name": "frequency_1_hz", "value": 440.0})
    svc.handle({"type": "insert_param", "where": "track:tone", "index": 0,
                "name": "boost_cut_1_db", "value": 6.0})
    svc.handle({"type": "insert_param", "where": "track:tone", "index": 0,
                "name": "bandwidth_1", "value": 1.0})
    assert _errors(svc.handle({"type": "insert_param", "where": "track:tone", "index": 0,
                               "name": "no_such", "value": 1.0}))
    svc.handle({"type": "solo", "track": "tone", "on": True})
    svc.engine.settle()
    out = render_engine(svc.engine)
    h = out.shape[1] // 2
    gain = _rms_db(out[:, h:]) - _rms_db(stems[1][:, h:])
    assert gain == pytest.approx(6.0, abs=0.2)        # the 440 Hz tone boosted by the EQ
    assert svc.handle({"type": "insert_bypass", "where": "track:tone", "index": 0,
                       "on": True})[0]["inserts"]["track:tone"][0]["bypassed"]
    assert svc.handle({"type": "insert_remove", "where": "track:tone",
                       "index": 0})[0]["inserts"] == {}
    assert _errors(svc.handle({"type": "insert_remove", "where": "track:tone", "index": 0}))


def test_midi_learn_from_the_page_binds_the_next_cc(song):
    svc = _service(song[0])
    replies = svc.handle({"type": "midi_learn", "target": "track:vox:pan"})
    assert replies[0]["level"] == "warning" and "no MIDI input" in replies[0]["text"]
    svc.router.feed([0xB2, 21, 127])                  # what the MIDI input thread does
    out = svc.tick()
    assert {"type": "state", "midi_map": [{"channel": 2, "cc": 21,
                                           "target": "track:vox:pan"}]} in out
    svc.router.feed([0xB2, 21, 0])
    svc.router.flush()
    assert svc.engine.control.value("vox", "pan") == -1.0
    assert any(r["type"] == "values" for r in svc.tick())
    assert svc.handle({"type": "midi_unbind", "channel": 2, "cc": 21})[0]["midi_map"] == []
    assert _errors(svc.handle({"type": "midi_learn", "target": "track:ghost:pan"}))


def test_record_writes_what_the_engine_played(song):
    folder, _ = song
    svc = _service(folder)
    eng = svc.engine
    eng.settle()
    played = []
    buf = np.zeros((2, eng.block), dtype=np.float32)
    eng.start()
    try:
        svc.handle({"type": "transport", "action": "play"})
        svc.handle({"type": "record", "seconds": 0.5})
        recorded = []
        while not recorded:
            eng.wait_ready()
            eng.process(buf)
            played.append(buf.copy())
            recorded = [r for r in svc.tick() if r["type"] == "recorded"]
    finally:
        eng.close()
    with AudioFile(recorded[0]["path"]) as f:
        audio = f.read(f.frames)
    assert audio.shape == (2, SR // 2)
    assert _db(audio - np.concatenate(played, axis=1)[:, :SR // 2]) < -120.0
    assert os.path.dirname(recorded[0]["path"]) == str(folder / "recordings")


def test_model_updates_reach_the_page_as_values_and_predicted(song):
    from dsp.params import ConsoleSetting, TrackSetting
    from host.worker import ModelWorker
    folder, _ = song
    svc = _service(folder)
    eng = svc.engine

    def predict(stems):
        assert len(stems) == 3
        return ConsoleSetting(tracks=(TrackSetting("vox", {"output_gain_db": -5.0}),))

    svc.worker = ModelWorker(predict, eng.tap, eng.control, SR, eng.control.roles,
                             interval_s=0.1, window_s=0.2, smoothing=0.0)
    svc.tick()
    svc.handle({"type": "strength", "value": 0.5})
    buf = np.zeros((2, eng.block), dtype=np.float32)
    eng.start()
    try:
        eng.play()
        for _ in range(100):
            eng.wait_ready()
            eng.process(buf)
    finally:
        eng.close()
    assert svc.worker.step()
    out = svc.tick()
    predicted = [r for r in out if r["type"] == "state" and "predicted" in r]
    assert predicted[0]["predicted"]["track:vox:output_gain_db"] == -5.0
    values = [r for r in out if r["type"] == "values"][0]["values"]
    assert values["track:vox:output_gain_db"] == pytest.approx(-2.5)   # strength 0.5


@needs_zam
def test_insert_add_from_the_control_thread_loads_on_the_main_thread(song):
    """pedalboard loads plugins only on the thread that loaded the first one: with a session's
    inserts loaded at start (main thread), a page's insert_add arrives on the control thread
    and is handed to the main thread (as `mixstyle studio` runs it)."""
    import threading

    from host.plugins import MainThreadPump, load_insert
    load_insert("ZamCompX2", SR, 128)                     # the main thread loads first
    svc = _service(song[0])
    replies = []
    worker = threading.Thread(target=lambda: replies.extend(svc.handle(
        {"type": "insert_add", "where": "track:vox", "plugin": "ZamEQ2"})))
    with MainThreadPump() as pump:
        worker.start()
        while worker.is_alive():
            pump.serve(0.05)
    assert not _errors(replies), replies
    assert [i["name"] for i in replies[0]["inserts"]["track:vox"]] == ["ZamEQ2"]


def test_studio_command_errors_name_what_is_wrong(tmp_path, capsys):
    from mixstyle.cli import main
    assert main(["studio", str(tmp_path / "nope"), "--no-browser", "--offline"]) == 2
    assert "nope' does not exist" in capsys.readouterr().err
    assert main(["studio", str(tmp_path), "--no-browser", "--offline", "--port", "70000"]) == 2
    assert "--port 70000: allowed 1 .. 65535" in capsys.readouterr().err
    assert main(["studio", str(tmp_path), "--no-browser", "--offline"]) == 2
    assert "has no audio files" in capsys.readouterr().err
