"""A corrected song (``setting.json`` beside ``stems/``): its setting is read, checked against the
stems and put in their order; every bad setting is refused with a sentence naming the song, the
file and what was expected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp.errors import SessionError
from dsp.params import ConsoleSetting, TrackSetting, dumps, validate, TRACK
from mixstyle.io.audio import write_audio_atomic
from mixstyle.sessions.corrections import load_corrected_song
from mixstyle.sessions.load import load_song

SR = 44100.0
NAMES = ("bass", "drums", "vocals")


def _setting(names=NAMES, gains=None) -> ConsoleSetting:
    gains = gains or {}
    return ConsoleSetting(tuple(TrackSetting(n, validate(TRACK, {"output_gain_db":
                                                                 gains.get(n, 0.0)}), "other")
                                for n in names))


@pytest.fixture
def song(tmp_path, make_stems):
    folder = tmp_path / "ballad"
    (folder / "stems").mkdir(parents=True)
    for name, audio in zip(NAMES, make_stems(seed=3, seconds=1.0, n_stems=len(NAMES))):
        write_audio_atomic(folder / "stems" / f"{name}.wav", audio, SR)
    return folder


def test_setting_in_stem_order_with_loader_roles(song):
    # written in another order, with roles the loader would not give: stems' order and roles win
    s = _setting(names=("vocals", "bass", "drums"), gains={"vocals": 4.0, "bass": -2.0})
    (song / "setting.json").write_text(dumps(s))
    loaded = load_corrected_song(song)
    assert [t.name for t in loaded.setting.tracks] == [s.name for s in loaded.stems] == \
        sorted(NAMES)
    assert [t.role for t in loaded.setting.tracks] == ["bass", "drums", "vocals"]
    gains = {t.name: t.params["output_gain_db"] for t in loaded.setting.tracks}
    assert gains == {"bass": -2.0, "drums": 0.0, "vocals": 4.0}
    assert loaded.overridden_mix is None and not loaded.warnings
    assert loaded.setting_path == song / "setting.json"


def test_a_mix_beside_the_setting_is_overridden_with_a_warning(song, make_stems):
    write_audio_atomic(song / "mix.wav", make_stems(seed=3, seconds=1.0, n_stems=3).sum(0), SR)
    (song / "setting.json").write_text(dumps(_setting()))
    loaded = load_corrected_song(song)
    assert loaded.overridden_mix == song / "mix.wav"
    assert [w.code for w in loaded.warnings] == ["mix_overridden"]
    assert "'setting.json' is learned, not the mix 'mix.wav'" in str(loaded.warnings[0])


def test_a_silent_stems_track_drops_out_with_the_stem(song):
    write_audio_atomic(song / "stems" / "fx.wav", np.zeros((2, int(SR)), np.float32), SR)
    (song / "setting.json").write_text(dumps(_setting(NAMES + ("fx",))))
    loaded = load_corrected_song(song)
    assert [t.name for t in loaded.setting.tracks] == list(NAMES)


def test_song_without_mix_or_setting_names_both(song):
    with pytest.raises(SessionError, match=r"^song 'ballad' has no mix: expected 'mix' .* or "
                                           r"the producer's console setting 'setting.json'"):
        load_song(song)


@pytest.mark.parametrize("text, message", [
    ("{not json", r"^setting 'setting.json' of song 'ballad' cannot be read: Expecting .*; "
                  r"expected the console setting JSON that 'mixstyle mix --params' writes"),
    (json.dumps({"format": "other"}),
     r"^setting 'setting.json' of song 'ballad' is not a valid console setting: setting.json: "
     r"'format' must be 'mixstyle.console'"),
    (dumps(_setting()).replace('"output_gain_db": 0.0', '"output_gain_db": 40.0', 1),
     r"^setting 'setting.json' of song 'ballad' is not a valid console setting: "
     r"track.output_gain_db \(setting.json, track 'bass'\) = 40 is out of range: allowed "
     r"-60 .. 12 dB"),
])
def test_unreadable_or_invalid_setting(song, text, message):
    (song / "setting.json").write_text(text)
    with pytest.raises(SessionError, match=message):
        load_corrected_song(song)


def test_track_without_a_stem(song):
    (song / "setting.json").write_text(dumps(_setting(NAMES + ("lead_vox",))))
    with pytest.raises(SessionError, match=r"^setting 'setting.json' of song 'ballad' has a track "
                                           r"'lead_vox' but the song has no stem of that name; "
                                           r"expected one track per file in stems/, .*"
                                           r"\(bass, drums, vocals\)"):
        load_corrected_song(song)


def test_stem_without_a_track(song):
    (song / "setting.json").write_text(dumps(_setting(("bass", "drums"))))
    with pytest.raises(SessionError, match=r"^setting 'setting.json' of song 'ballad' has no track "
                                           r"for stem 'vocals.wav'; expected one track per file "
                                           r"in stems/ \(its tracks: bass, drums\)"):
        load_corrected_song(song)
