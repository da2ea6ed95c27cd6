"""The real set: one short song from a real Debian package (gweled's ``autonom.s3m``, a 260 kB
.deb cached under build/), rendered with the real libopenmpt. Its stems as mixed add up to the
author's mix, its dry stems sit in the middle, its files carry the expected names; plus the pure
parts (field resets, names, section choice, Hydrogen song variants, missing tools)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mixstyle.demo.realset import debs, hydrogen, modfields
from mixstyle.demo.realset.errors import RealSetToolError
from mixstyle.demo.realset.excerpt import choose_window, residual_db
from mixstyle.demo.realset.names import meaningful, stem_names
from mixstyle.io.audio import read_audio
from mixstyle.sessions.load import load_song

REPO = Path(__file__).resolve().parents[3]
CACHE = REPO / "build" / "realset-cache"      # gitignored; the .deb is downloaded once
PACKAGE = "gweled"
SONG = "gweled-autonom"
SECONDS = 3.0


@pytest.fixture(scope="module")
def module_bytes() -> bytes:
    try:
        pkg = debs.unpack(PACKAGE, CACHE)
    except RealSetToolError as exc:
        pytest.skip(f"Debian package '{PACKAGE}' cannot be fetched: {exc}")
    return (pkg.root / "usr/share/sounds/gweled/autonom.s3m").read_bytes()


@pytest.fixture(scope="module")
def rendered(module_bytes):
    from mixstyle.demo.realset import openmpt
    from mixstyle.demo.realset.tracker import render_module
    try:
        openmpt.library()
    except RealSetToolError as exc:
        pytest.skip(str(exc))
    return render_module(module_bytes, SONG, SECONDS, SECONDS / 2)


@pytest.fixture(scope="module")
def built(module_bytes, rendered, tmp_path_factory):
    from mixstyle.demo.realset.build import build_realset
    out = tmp_path_factory.mktemp("realset")
    folders = build_realset(out, seconds=SECONDS, sources=(PACKAGE,), cache=CACHE, jobs=1,
                            log=lambda m: None)
    assert folders == [out / SONG]
    return out / SONG


def test_tracks_as_mixed_add_up_to_the_mix(rendered):
    assert not rendered.skip
    assert len(rendered.tracks) >= 2
    assert residual_db(rendered.mix, [t.mixed for t in rendered.tracks]) <= -60.0
    assert rendered.meta["residual_db"] <= -60.0


def test_dry_stems_are_centred(rendered):
    for t in rendered.tracks:
        assert np.array_equal(t.dry[0], t.dry[1]), t.index
        assert np.max(np.abs(t.dry)) > 1e-4          # audible, not a muted render


def test_files_and_names(built, rendered):
    meta = json.loads((built / "source.json").read_text())
    stems = sorted(p.name for p in (built / "stems").glob("*.wav"))
    assert stems == sorted(Path(s["file"]).name for s in meta["stems"])
    assert len(stems) == len(rendered.tracks)
    for s in meta["stems"]:
        name = Path(s["file"]).stem
        # the instrument's own name when it says what plays, else a neutral "Track NN"
        assert name == f"Track {s['track']:02d}" or meaningful(s["name_in_file"]), s
        assert s["channels"] == 1                       # mono sources: written mono
    assert (built / "mix.wav").is_file() and (built / "COPYRIGHT").is_file()
    assert meta["package"] == PACKAGE and meta["file"].endswith("/autonom.s3m")
    assert meta["licence"] == "GPL-2+" and "Sebastien Delestaing" in meta["copyright_holders"]
    assert "(C)omposed by Skaven/FC" in meta["credits_in_file"]
    assert meta["seconds"] == SECONDS and meta["residual_db"] <= -60.0
    assert "channel pan table -> centre" in meta["dry_reset"]
    assert not list(built.parent.glob(".*.partial"))


def test_written_song_is_the_render_and_loads_as_a_session(built, rendered):
    mix, sr = read_audio(built / "mix.wav")
    assert sr == 44100 and np.array_equal(mix, rendered.mix)   # deterministic, float, as is
    song = load_song(built)
    # the only warnings: roles heard from the audio for stems whose names say nothing
    assert len(song.stems) == len(rendered.tracks)
    assert {w.code for w in song.warnings} <= {"role_from_audio", "role_unknown"}
    assert all(s.name.startswith("Track ") for s in song.stems
               if any(s.name in w.message for w in song.warnings))


def test_rebuild_keeps_a_built_song(built):
    from mixstyle.demo.realset.build import build_realset
    before = (built / "mix.wav").stat().st_mtime_ns
    build_realset(built.parent, seconds=SECONDS, sources=(PACKAGE,), cache=CACHE, jobs=1,
                  log=lambda m: None)
    assert (built / "mix.wav").stat().st_mtime_ns == before


def test_s3m_fields_reset(module_bytes):
    data, done = modfields.reset_mix_fields(module_bytes)
    assert modfields.kind_of(data) == "s3m" and len(data) == len(module_bytes)
    orders, n_ins, n_pat = (int.from_bytes(data[k:k + 2], "little") for k in (0x20, 0x22, 0x24))
    table = 0x60 + orders + 2 * (n_ins + n_pat)
    assert data[0x35] == 0xFC and set(data[table:table + 32]) == {0x28}
    for k in range(n_ins):
        o = 16 * int.from_bytes(data[0x60 + orders + 2 * k:0x62 + orders + 2 * k], "little")
        if data[o] == 1:
            assert data[o + 0x1C] == 64
    assert done == ["sample default volume -> 64", "channel pan table -> centre"]


def test_names():
    assert meaningful("deep-strings") and meaningful("MiniBassDrum") and meaningful("Kick")
    assert not meaningful(" (C)omposed by Skaven/FC ") and not meaningful("Started Mar 1997")
    assert not meaningful("   ") and not meaningful("Pure Sine")
    assert stem_names([(0, "bass:nino"), (1, "Emissions #3"), (4, "bass")]) == \
        {0: "bass nino", 1: "Track 02", 4: "bass"}
    assert stem_names([(0, "bass"), (3, "bass")]) == {0: "bass", 3: "bass 04"}
    assert stem_names([(2, "Stick")], trust=True) == {2: "Stick"}


def test_section_is_where_most_tracks_play():
    energy = np.full((3, 10), 1e-12)
    energy[0, :] = 1e-2                 # plays throughout
    energy[1, 6:9] = 1e-3               # joins late
    energy[2, 7:10] = 1e-4
    assert choose_window(energy, 3) == 6
    assert choose_window(energy, 20) == 0


def test_hydrogen_variant_is_deterministic_and_dry():
    src = next(iter(sorted(hydrogen.DEMO_SONGS.glob("*.h2song"))), None)
    if src is None:
        pytest.skip("Hydrogen's demo songs are missing (Debian package 'hydrogen-data')")
    song = hydrogen.read_song(src)
    sec = hydrogen.choose_section(song, 8.0)
    assert sec.first <= sec.start < sec.stop <= len(song.columns)
    solo = song.instruments[-1]
    root = ET.fromstring(hydrogen.variant(song, sec, solo.id, True, 0.5))
    assert root.findtext("humanize_time") == "0" and root.findtext("humanize_velocity") == "0"
    assert len(root.find("patternSequence")) == sec.stop - sec.first
    assert float(root.findtext("volume")) == pytest.approx(song.master_volume * 0.5)
    for inst in root.find("instrumentList").iter("instrument"):
        mine = inst.findtext("id") == solo.id
        assert inst.findtext("isMuted") == ("false" if mine else "true")
        if mine:
            assert (inst.findtext("volume"), inst.findtext("gain"), inst.findtext("pan")) == \
                ("1", "1", "0")


def test_missing_apt_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(debs.shutil, "which", lambda name: None)
    with pytest.raises(RealSetToolError, match=r"'apt-get'.*Debian package 'apt'"):
        debs.unpack("gweled", tmp_path)


def test_missing_h2cli_names_the_packages(monkeypatch):
    monkeypatch.setattr(hydrogen.shutil, "which", lambda name: None)
    with pytest.raises(RealSetToolError, match=re.escape("hydrogen hydrogen-data")):
        hydrogen.check_h2cli()


def test_a_skipped_song_says_why_and_is_not_retried(module_bytes, tmp_path):
    from mixstyle.demo.realset.build import SKIPPED_DIR, build_realset
    said: list[str] = []
    # a 3 s excerpt cannot meet a 1000 s minimum: the song is skipped, with the reason kept
    assert build_realset(tmp_path, seconds=SECONDS, sources=(PACKAGE,), cache=CACHE, jobs=1,
                         min_seconds=1000.0, log=said.append) == []
    assert any(m.startswith(f"skipped {SONG}: ") and "under 1000 s" in m for m in said)
    assert (tmp_path / SKIPPED_DIR / f"{SONG}.json").is_file() and not (tmp_path / SONG).exists()
    said.clear()
    build_realset(tmp_path, seconds=SECONDS, sources=(PACKAGE,), cache=CACHE, jobs=1,
                  min_seconds=1000.0, log=said.append)
    assert any("(as before)" in m for m in said)


def test_an_antiphase_mix_is_refused():
    from mixstyle.demo.realset.excerpt import antiphase
    x = np.sin(np.linspace(0, 300, 4000)).astype(np.float32)
    assert antiphase(np.stack([x, -x])).startswith("the author's mix is in anti-phase")
    assert antiphase(np.stack([x, 0.2 * x])) == "" and antiphase(np.stack([x, 0 * x])) == ""
