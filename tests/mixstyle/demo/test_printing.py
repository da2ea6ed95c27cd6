"""Demo producers who print bus effects into their mix (dex, zed, rio): measured behaviour.

dex drives a limiter to -10 LUFS, zed runs the real zam-plugins (ZamCompX2, ZaMaximX2) and rio
sends tracks to reverb and delay returns. The zed tests skip without zam-plugins (and fail then
under CI / MIXSTYLE_REQUIRE_REAL=1, see tests/conftest.py); the song tests need mma/fluidsynth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pedalboard as pb
import pytest

from dsp.errors import ParameterError
from mixstyle.demo import (DECISIONS_FILE, PRODUCERS, DemoToolError, make_sessions,
                           make_song, tools_missing)
from mixstyle.demo._analysis import loudness_lufs
from mixstyle.demo.sessions import song_stems
from mixstyle.demo.printing import DEX, JUCE_LIMITER_MAKEUP_DB, LimiterPrint
from mixstyle.demo.producers import check_stems, mix_tracks
from mixstyle.demo.sends import RIO, Return
from mixstyle.demo.zam import COMPRESSOR, MAXIMIZER, ZED, bundle_path, load_zam, set_params
from mixstyle.sessions.roles import role_from_name

SR = 44100
SECONDS = 7.0
SEED = 3


TOOLS_MISSING = tools_missing()
needs_tools = pytest.mark.skipif(bool(TOOLS_MISSING), reason=TOOLS_MISSING or "tools found")
VST3 = Path("/usr/lib/vst3")
ZAM_MISSING = ", ".join(p for p in (COMPRESSOR, MAXIMIZER) if not (VST3 / f"{p}.vst3").is_dir())
needs_zam = pytest.mark.skipif(bool(ZAM_MISSING), reason=(
    f"zam-plugins VST3 ({ZAM_MISSING}; Debian package zam-plugins) not installed in {VST3}"))
COMPRESSED = ("kick", "snare", "bass", "lead_vocal")       # zed's ZamCompX2 tracks in a rock song


@pytest.fixture(scope="module")
def stems(tmp_path_factory):
    song = make_song(tmp_path_factory.mktemp("song") / "rock_song", SEED, SECONDS, "rock")
    out, sr = song_stems(song)
    assert sr == SR
    return out


@pytest.fixture(scope="module")
def dex(stems):
    return DEX.mix(stems, SR, "rock_song")


@pytest.fixture(scope="module")
def zed(stems):
    return ZED.mix(stems, SR, "rock_song")


def _peak_db(audio):
    return 20 * np.log10(float(np.max(np.abs(audio))))


def _plr_db(audio):
    """Sample peak to integrated loudness ratio (dB): what a limiter lowers."""
    return _peak_db(audio) - loudness_lufs(audio, SR)


def _sum_without_compressors(producer, stems):
    """The producer's tracks with their chains minus the compressor, summed (no bus print)."""
    def process(chain, audio, sr, d):
        kept = chain[:-1] if "comp_ratio" in d else chain
        return pb.Pedalboard(kept)(audio, sr) if kept else audio
    sr, checked = check_stems(stems, SR, "rock_song")
    return mix_tracks(producer, checked, sr, "rock_song", process)[0].astype(np.float32)


# ------------------------------------------------------------------------------------- dex

@needs_tools
def test_dex_prints_a_limiter_to_minus_10_lufs_under_a_minus_0_3_dbfs_ceiling(stems, dex):
    mix, master, d = dex
    assert mix.dtype == np.float32 and mix.shape == (2, int(SECONDS * SR))
    assert loudness_lufs(mix, SR) == pytest.approx(-10.0, abs=0.3)
    assert _peak_db(mix) <= -0.3 + 0.005
    # the limiter really took something: at the same loudness the unlimited sum peaks higher
    sr, checked = check_stems(stems, SR, "rock_song")
    unlimited = mix_tracks(DEX, checked, sr, "rock_song")[0].astype(np.float32)
    taken = _plr_db(unlimited) - _plr_db(mix)
    assert taken >= 2.0, taken                                      # measured 8.3 dB
    bus = d["bus_print"]
    assert bus["target_lufs"] == -10.0 and bus["ceiling_db"] == -0.3
    assert bus["limiting_db"] >= 2.0 and bus["limiting_db"] <= taken + 0.01
    assert bus["loudness_lufs"] == pytest.approx(loudness_lufs(mix, SR), abs=0.002)
    assert "gain_into_limiter_db" in bus and bus["juce_limiter_threshold_db"] == -4.0
    assert bus["juce_limiter_makeup_db"] == 7.75
    assert loudness_lufs(master, SR) == pytest.approx(-9.0, abs=0.2)


@needs_tools
def test_dex_records_each_compressor_and_its_measured_gain_reduction(stems, dex):
    tracks = dex[2]["tracks"]
    for name, t in tracks.items():
        for key in ("comp_ratio", "comp_threshold_db", "comp_attack_ms", "comp_release_ms"):
            assert key in t, (name, key)
        gr = t["measured"]["comp_gain_reduction_db"]
        assert gr == pytest.approx(t["measured"]["comp_input_loud_level_dbfs"]
                                   - t["measured"]["comp_output_loud_level_dbfs"], abs=0.002)
        assert -0.1 <= gr < 20.0, (name, gr)
    # hard-hit drums: the kick and snare compressors, ratio 5.5, take several dB
    assert tracks["kick"]["comp_ratio"] > tracks["overheads"]["comp_ratio"] > 1.0
    assert tracks["kick"]["measured"]["comp_gain_reduction_db"] > 3.0
    assert tracks["snare"]["measured"]["comp_gain_reduction_db"] > 3.0


@needs_tools
def test_dex_tastes_differ_from_ava(stems, dex):
    ava = PRODUCERS["ava"].mix(stems, SR, "rock_song")[2]["tracks"]
    ours = dex[2]["tracks"]

    def bass_over_vocal(t):
        return t["bass"]["target_lufs"] - t["lead_vocal"]["target_lufs"]
    assert bass_over_vocal(ours) > bass_over_vocal(ava) + 3.0      # bass up, vocals tucked in
    assert ours["bass"]["comp_ratio"] > ava["bass"]["comp_ratio"]
    assert ours["kick"]["low_shelf_gain_db"] > ava["kick"]["low_shelf_gain_db"]


def test_juce_limiter_makeup_recorded_in_the_decisions_is_what_pedalboard_does():
    t = np.arange(SR) / SR
    sine = np.tile(np.float32(0.1) * np.sin(2 * np.pi * 1000 * t, dtype=np.float32), (2, 1))
    for threshold in (-4.0, -1.0):
        out = pb.Limiter(threshold_db=threshold, release_ms=40.0)(sine, SR)
        gain_db = 20 * np.log10(np.max(np.abs(out[:, SR // 2:])) / 0.1)
        assert gain_db == pytest.approx(JUCE_LIMITER_MAKEUP_DB - threshold, abs=0.01)


def test_bus_print_out_of_reach_names_the_song_and_target(make_stems):
    mix = make_stems(2, 3.0, 1)[0] * np.float32(0.01)
    bus = replace(DEX.bus, drive_range_db=(-1.0, 0.0))
    with pytest.raises(ParameterError, match=r"song 'quiet': the bus print reaches -\d+\.\d+ "
                                             r"LUFS, not the target -10.0 LUFS"):
        bus.apply(mix, SR, "song 'quiet'")


@pytest.mark.parametrize("kwargs, match", [
    ({"target_lufs": 0.0}, r"target_lufs = 0.0 is out of range: allowed -20 .. -6 LUFS"),
    ({"ceiling_db": 1.0}, r"ceiling_db = 1.0 is out of range: allowed -6 .. 0 dBFS"),
])
def test_limiter_print_rejects_bad_settings(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        replace(DEX.bus, **kwargs)
    assert isinstance(DEX.bus, LimiterPrint)


# ------------------------------------------------------------------------------------- zed

@needs_zam
def test_zam_plugins_load_with_the_parameters_zed_sets():
    comp, maxim = load_zam(COMPRESSOR), load_zam(MAXIMIZER)
    assert {"threshold_db", "ratio", "attack_ms", "release_ms", "knee_db",
            "makeup_db"} <= set(comp.parameters)
    assert {"threshold_db", "output_ceiling_db", "release_ms"} <= set(maxim.parameters)
    held = set_params(comp, COMPRESSOR, {"ratio": 50.0, "attack_ms": 3.0})
    assert held["ratio"] == 20.0 and held["attack_ms"] == pytest.approx(3.0, abs=0.1)
    with pytest.raises(ParameterError, match="ZamCompX2 has no parameter 'drive_db'; it has "):
        set_params(comp, COMPRESSOR, {"drive_db": 3.0})


def test_a_missing_zam_bundle_names_it_and_the_debian_package(tmp_path):
    with pytest.raises(DemoToolError, match=rf"VST3 plug-in {tmp_path}/ZamCompX2.vst3 "
                                            r"\(install the Debian package 'zam-plugins'"):
        bundle_path(COMPRESSOR, tmp_path)
    with pytest.raises(DemoToolError, match="ZaMaximX2.vst3"):
        load_zam(MAXIMIZER, tmp_path)


@needs_tools
@needs_zam
def test_zed_prints_zamaximx2_to_minus_12_lufs_under_a_minus_0_8_dbfs_ceiling(zed):
    mix, master, d = zed
    assert loudness_lufs(mix, SR) == pytest.approx(-12.0, abs=0.3)
    assert _peak_db(mix) <= -0.8 + 0.01                              # measured -0.87
    bus = d["bus_print"]
    assert bus["plugin"] == MAXIMIZER and bus["zamaximx2_output_ceiling_db"] == -0.8
    assert bus["gain_into_limiter_db"] == pytest.approx(-bus["zamaximx2_threshold_db"])
    assert bus["limiting_db"] >= 2.0
    assert loudness_lufs(master, SR) == pytest.approx(-11.0, abs=0.2)


@needs_tools
@needs_zam
def test_zed_mix_is_the_plugins_work_not_the_plain_chain(stems, zed):
    mix, _, d = zed
    plain = _sum_without_compressors(ZED, stems)
    plain *= np.float32(10 ** ((loudness_lufs(mix, SR) - loudness_lufs(plain, SR)) / 20))
    err_db = 10 * np.log10(np.mean((mix - plain) ** 2) / np.mean(mix ** 2))
    assert err_db > -25.0, err_db                                    # the plugins changed it
    assert _plr_db(plain) - _plr_db(mix) >= 2.0                      # ZaMaximX2 limited
    tracks = d["tracks"]
    for name in COMPRESSED:
        t = tracks[name]
        assert t["comp_plugin"] == COMPRESSOR and t["comp_knee_db"] == 2.0
        assert t["measured"]["comp_gain_reduction_db"] > 0.5, name   # ZamCompX2 acted
    uncompressed = [n for n, t in tracks.items() if "comp_ratio" not in t]
    assert set(uncompressed) == {"horns", "piano"}


@needs_tools
@needs_zam
def test_zed_is_deterministic(stems, zed):
    again = ZED.mix(stems, SR, "rock_song")
    np.testing.assert_array_equal(again.mix, zed[0])
    np.testing.assert_array_equal(again.master, zed[1])
    assert again.decisions == zed[2]


# ------------------------------------------------------------------------------------- rio

@needs_tools
def test_rio_leaves_a_reverb_and_delay_tail_the_dry_stems_cannot_make(stems):
    stop = int((SECONDS - 2.5) * SR)                     # every stem falls silent 2.5 s early
    early = [(n, r, np.concatenate([a[:, :stop], np.zeros_like(a[:, stop:])], axis=1))
             for n, r, a in stems]
    wet = RIO.mix(early, SR, "rock_song")
    dry = replace(RIO, reverb=None, delay=None).mix(early, SR, "rock_song")

    def tail_db(mix):
        window = mix[:, stop + int(0.3 * SR):stop + int(1.3 * SR)]
        return 10 * np.log10(np.mean(window ** 2) / np.mean(mix[:, :stop] ** 2) + 1e-30)

    assert tail_db(wet.mix) > -45.0, tail_db(wet.mix)    # measured -36 dB: returns ringing on
    assert tail_db(dry.mix) < -90.0, tail_db(dry.mix)    # the dry chain: filter tails only
    sends = wet.decisions["sends"]
    assert sends["reverb"]["tracks"] == ["lead_vocal", "piano"]       # vocals, keys
    assert sends["delay"]["tracks"] == ["lead_vocal"]
    for k in ("reverb", "delay"):
        assert -12.6 <= sends[k]["return_re_sent_dry_lu"] <= -5.4, k
    n = stop - int(0.5 * SR)
    corr = np.corrcoef(wet.mix[:, :n].mean(axis=0), dry.mix[:, :n].mean(axis=0))[0, 1]
    assert 0.8 < corr < 0.995, corr                      # the returns blur the dry sum


@needs_tools
def test_rio_leaves_headroom(stems):
    mix, master, d = RIO.mix(stems, SR, "rock_song")
    assert _peak_db(mix) <= -1.0 + 0.005
    assert loudness_lufs(mix, SR) <= -19.0 + 0.01
    assert loudness_lufs(master, SR) == pytest.approx(-13.0, abs=0.2)


def test_return_rejects_bad_levels():
    with pytest.raises(ParameterError, match=r"return_lu = 3.0 is out of range: allowed "
                                             r"-20 .. 0 LU"):
        Return({"vocals": 0.0}, return_lu=3.0, hpf_hz=200.0, lpf_hz=6000.0)
    with pytest.raises(ParameterError, match=r"send level for role 'keys' = 12.0 dB"):
        Return({"keys": 12.0}, return_lu=-8.0, hpf_hz=200.0, lpf_hz=6000.0)


# ------------------------------------------------------------------------ sessions, roster

@needs_tools
@pytest.mark.parametrize("producer", ["dex", "rio",
                                      pytest.param("zed", marks=needs_zam)])
def test_sessions_of_the_printing_producers(tmp_path, producer):
    from mixstyle.sessions.load import load_song

    (folder,) = make_sessions(tmp_path / producer, producer, 1, 5, 6.0,
                              cache_dir=tmp_path / "cache")
    d = json.loads((folder / DECISIONS_FILE).read_text())
    assert d["producer"] == producer and d["tracks"]
    assert ("sends" if producer == "rio" else "bus_print") in d
    song = load_song(folder)
    assert song.master is not None and song.mix.shape[1] == int(6.0 * SR)


def test_roster_names_every_producer():
    assert list(PRODUCERS) == ["ava", "ben", "cleo", "dex", "zed", "rio"]
    with pytest.raises(ParameterError, match="known producers: ava, ben, cleo, dex, zed, rio"):
        make_sessions("unused", "zoe", 1, 5, 6.0)


# ---------------------------------------------------------- ava, ben and cleo are unchanged

# sha256 (first 16 hex) of mix, master and decisions of synthetic stems, pinned before the
# producers were split for dex/zed/rio; a new pedalboard/numpy/scipy may need a re-pin
PINNED = {"ava": ("ebabc16268eb6edf", "efc6d333666fe73d", "cbc53ce0b7aee5ca"),
          "ben": ("b7ad57b4322e21c3", "b8ca635406cb7527", "ff682b770d6025fc"),
          "cleo": ("9eabede0c715d7a2", "5f579a0c8620eb49", "5f3a665d61fa01d4")}


@pytest.mark.parametrize("producer", list(PINNED))
def test_classic_producers_are_bit_identical(make_stems, producer):
    names = ("kick", "snare", "bass", "lead_vocal", "guitar")
    stems = [(n, role_from_name(n), a) for n, a in zip(names, make_stems(7, 3.0, 5))]
    r = PRODUCERS[producer].mix(stems, SR, "pinned")
    got = (hashlib.sha256(r.mix.tobytes()).hexdigest()[:16],
           hashlib.sha256(r.master.tobytes()).hexdigest()[:16],
           hashlib.sha256(json.dumps(r.decisions, sort_keys=True).encode()).hexdigest()[:16])
    assert got == PINNED[producer]
