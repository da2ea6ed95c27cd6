"""``mixstyle report``: the numbers drawn come from the records, the files are all there and valid.

The profile is built synthetically (song records with known settings and features + an untrained
network), so every plotted number can be checked against a hand calculation.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from dsp.eq import eq_curve_db
from dsp.params import MASTER, TRACK, ConsoleSetting, TrackSetting, setting_to_dict, validate
from mixstyle.train.records import SongRecord, SourceFile, save_record
from mixstyle.errors import ProfileError
from mixstyle.train.features import FEATURE_NAMES
from mixstyle.train.model import MixNet, ModelConfig
from mixstyle.profile.store import save_profile
from mixstyle.profile.report import IMAGES, REPORT_SAMPLE_RATE_HZ, report_data, write_report

LOUD = FEATURE_NAMES.index("loudness_lufs")
PEAK = FEATURE_NAMES.index("peak_db")
VOX_PEAK2_DB = (6.0, 3.0, 0.0)       # vocals' 1 kHz bell in the three songs -> median +3 dB


def _track(name: str, role: str, **params: float) -> TrackSetting:
    return TrackSetting(name, validate(TRACK, params, name), role)


def _song(k: int) -> tuple[ConsoleSetting, list[list[float]]]:
    """Song k: kick, bass, vocals <script>; features carry loudness -23 LUFS, peak -10 dBFS."""
    tracks = (
        _track("kick", "kick", input_gain_db=0.0, output_gain_db=-2.0, hpf_freq_hz=30.0,
               comp_threshold_db=-20.0, comp_ratio=4.0, comp_knee_db=0.0,
               comp_attack_ms=5.0 + k, comp_release_ms=80.0),
        _track("bass", "bass", input_gain_db=3.0, output_gain_db=-6.0 - k,
               low_shelf_gain_db=2.0 + k, pan=0.0),
        _track("<script>vox</script>", "vocals", input_gain_db=-1.0, output_gain_db=1.0,
               peak2_freq_hz=1000.0, peak2_gain_db=VOX_PEAK2_DB[k], peak2_q=1.0,
               hpf_freq_hz=100.0 + 20 * k, pan=[-0.2, 0.0, 0.4][k]),
    )
    master = validate(MASTER, {"target_lufs": -14.0 + k, "limiter_ceiling_db": -1.0})
    feats = []
    for _ in tracks:
        f = [0.0] * len(FEATURE_NAMES)
        f[LOUD], f[PEAK] = -23.0, -10.0
        feats.append(f)
    return ConsoleSetting(tracks, master), feats


def _make_profile(folder: Path, n_songs: int = 3) -> Path:
    records = []
    for k in range(n_songs):
        setting, feats = _song(k)
        files = [SourceFile(f"/sessions/song{k}/stems/{t.name}.wav",
                            hashlib.sha256(f"{k}{t.name}".encode()).hexdigest(), 8.0)
                 for t in setting.tracks]
        rec = SongRecord(f"song{k}", [t.name for t in setting.tracks],
                         [t.role for t in setting.tracks], feats, [0.0] * len(FEATURE_NAMES),
                         setting_to_dict(setting),
                         {"error_db": -12.0 - k, "band_error_db": 0.5 + 0.25 * k}, files)
        save_record(folder / "songs", rec)
        records.append(rec)
    card = {"created": "2024-01-01T00:00:00+00:00", "model_parameters": 1234,
            "held_out_songs": [], "held_out_score": None, "seed": 0, "privacy": "local",
            "trained_on": [{"song": r.song, "tracks": [{"name": t, "role": x} for t, x in
                                                       zip(r.track_names, r.roles)],
                            "files": [f.__dict__ for f in r.files], "fit_quality": r.quality}
                           for r in records]}
    save_profile(folder, MixNet(ModelConfig()), {"created": card["created"],
                                                  "songs": [r.song for r in records]},
                 card, "# model card\n")
    return folder


MASTER_JSON = {"master": {"low_shelf_gain_db": 2.0, "target_lufs": -10.0,
                          "limiter_ceiling_db": -0.5}}


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    folder = _make_profile(tmp_path_factory.mktemp("report") / "profile")
    (folder / "master.json").write_text(json.dumps(MASTER_JSON))
    return folder


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def written(profile, tmp_path_factory) -> tuple[Path, Path, dict[Path, bytes]]:
    """(profile, index.html, the profile's files before the report was written).

    The output folder starts with a symlink ``eq_curves.png`` to a file outside it, which the
    report must replace, never write through."""
    before = _snapshot(profile)
    base = tmp_path_factory.mktemp("report_out")
    (base / "outside.png").write_bytes(b"keep me")
    (base / "out").mkdir()
    (base / "out" / "eq_curves.png").symlink_to(base / "outside.png")
    return profile, write_report(profile, base / "out"), before


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return w, h


def test_median_eq_curve_is_median_of_record_curves(profile):
    d = report_data(profile)
    f = d["freqs_hz"]
    assert f[0] == pytest.approx(20.0) and f[-1] == pytest.approx(20000.0)
    assert d["roles"] == ["kick", "bass", "vocals"]
    for role, name in (("vocals", "<script>vox</script>"), ("bass", "bass"), ("kick", "kick")):
        curves = []
        for k in range(3):
            setting, _ = _song(k)
            curves.append(eq_curve_db(TRACK, setting.track(name).params, f,
                                      REPORT_SAMPLE_RATE_HZ))
        e = d["by_role"][role]
        np.testing.assert_allclose(e["eq_median_db"], np.median(curves, axis=0), atol=1e-9)
        np.testing.assert_allclose(e["eq_p25_db"], np.percentile(curves, 25, axis=0), atol=1e-9)
        np.testing.assert_allclose(e["eq_p75_db"], np.percentile(curves, 75, axis=0), atol=1e-9)
    vox = d["by_role"]["vocals"]
    i1k = int(np.argmin(np.abs(np.log(f / 1000.0))))
    assert 2.8 < vox["eq_median_db"][i1k] <= 3.0        # median of +6/+3/0 dB bells at 1 kHz
    assert vox["eq_p25_db"][i1k] == pytest.approx(1.5, abs=0.15)   # between 0 and +3 dB
    assert vox["eq_p75_db"][i1k] == pytest.approx(4.5, abs=0.15)   # between +3 and +6 dB
    i10k = int(np.argmin(np.abs(f - 10000.0)))
    assert abs(vox["eq_median_db"][i10k]) < 0.3          # the bell does not reach 10 kHz
    assert vox["eq_median_db"][0] < -20.0                # 100-140 Hz high-pass at 20 Hz
    bass = d["by_role"]["bass"]
    assert bass["eq_median_db"][0] == pytest.approx(3.0, abs=0.2)   # shelf 2/3/4 dB -> 3 dB


def test_balance_compressor_pan_and_loudness_numbers(profile):
    d = report_data(profile)
    b = d["by_role"]
    # levels: kick -23-2 = -25, bass -23+3-6-k, vox -23-1+1 = -23 (the loudest)
    np.testing.assert_allclose(b["vocals"]["level_rel_db"], [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(b["kick"]["level_rel_db"], [-2.0, -2.0, -2.0], atol=1e-9)
    np.testing.assert_allclose(b["bass"]["level_rel_db"], [-3.0, -4.0, -5.0], atol=1e-9)
    # kick peak -10 dBFS against threshold -20, 4:1, hard knee: 10 dB over -> 7.5 dB reduction
    np.testing.assert_allclose(b["kick"]["gain_reduction_db"], [7.5] * 3, atol=1e-9)
    np.testing.assert_allclose(b["bass"]["gain_reduction_db"], [0.0] * 3, atol=1e-9)
    assert b["kick"]["compressing"].all() and not b["vocals"]["compressing"].any()
    np.testing.assert_allclose(b["kick"]["comp_attack_ms"], [5.0, 6.0, 7.0])
    np.testing.assert_allclose(b["vocals"]["pan"], [-0.2, 0.0, 0.4])
    assert b["vocals"]["typical"]["hpf_freq_hz"] == pytest.approx(120.0)
    assert [s["target_lufs"] for s in d["songs"]] == [-14.0, -13.0, -12.0]
    assert [s["error_db"] for s in d["songs"]] == [-12.0, -13.0, -14.0]
    assert [s["band_error_db"] for s in d["songs"]] == [0.5, 0.75, 1.0]
    assert len(d["files"]) == 9
    assert d["master"]["params"]["target_lufs"] == -10.0
    assert d["master"]["params"]["limiter_ceiling_db"] == -0.5
    assert d["master"]["eq_db"][0] == pytest.approx(2.0, abs=0.1)   # master low shelf


def test_every_png_exists_is_valid_and_html_references_all(written):
    profile, index, _ = written
    out = index.parent
    assert index.name == "index.html"
    text = index.read_text(encoding="utf-8")
    for name in IMAGES:
        w, h = _png_size(out / name)
        assert 600 <= w <= 2000 and 250 <= h <= 1600, (name, w, h)
        assert (out / name).stat().st_size > 10_000
        assert f"src='{name}'" in text
    srcs = re.findall(r"src='([^']+)'", text)
    assert sorted(srcs) == sorted(IMAGES)            # relative links only, nothing external
    assert "http" not in text
    card = json.loads((profile / "model_card.json").read_text())
    for song in card["trained_on"]:
        for f in song["files"]:
            assert f["sha256"] in text
            assert f["path"].replace("<", "&lt;").replace(">", "&gt;") in text
    assert "<script>" not in text and "&lt;script&gt;vox&lt;/script&gt;" in text
    assert "Typical master (master.json)" in text
    assert sorted(p.name for p in out.iterdir()) == sorted(IMAGES + ("index.html",))
    assert not (out / "eq_curves.png").is_symlink()
    assert (out.parent / "outside.png").read_bytes() == b"keep me"


def test_report_leaves_profile_untouched_and_rewrites_in_place(written):
    profile, index, before = written
    first = index.read_text()
    assert write_report(profile, index.parent) == index
    assert index.read_text() == first
    assert _snapshot(profile) == before
    assert sorted(p.name for p in index.parent.iterdir()) == sorted(IMAGES + ("index.html",))


def test_without_master_json(tmp_path):
    d = report_data(_make_profile(tmp_path / "p", n_songs=1))
    assert d["master"] is None and [s["song"] for s in d["songs"]] == ["song0"]


def test_missing_folder_and_missing_profile_json(tmp_path):
    with pytest.raises(ProfileError, match="no such folder"):
        report_data(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProfileError, match="no profile.json"):
        write_report(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, match", [
    (lambda p: (p / "profile.json").write_text("{not json"), r"profile.json: unreadable"),
    (lambda p: (p / "weights.npz").write_bytes(b"garbage"), r"weights.npz: cannot be loaded"),
    (lambda p: (p / "songs" / "song0.json").write_text("[]"), r"song0.json: not a valid song"),
    (lambda p: [q.unlink() for q in (p / "songs").glob("*.json")], r"no training songs"),
    (lambda p: (p / "model_card.json").write_text("{"), r"model card .*model_card.json"),
    (lambda p: (p / "model_card.json").write_text('{"trained_on": 3}'), r"model card: bad"),
    (lambda p: (p / "master.json").write_text('{"gain_db": 99}'),
     r"master\.gain_db .*allowed -24 .. 24"),
    (lambda p: (p / "master.json").write_text('{"x": 1}'), r"master.json: no master param"),
])
def test_broken_profile_gives_clear_error(tmp_path, damage, match):
    profile = _make_profile(tmp_path / "p", n_songs=1)
    damage(profile)
    with pytest.raises(ProfileError, match=match):
        write_report(profile, tmp_path / "out")


def test_out_must_not_be_the_profile_or_a_file(profile, tmp_path):
    with pytest.raises(ProfileError, match="is the profile folder"):
        write_report(profile, profile)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ProfileError, match="not a folder"):
        write_report(profile, tmp_path / "f")
    assert (tmp_path / "f").read_text() == "x"
