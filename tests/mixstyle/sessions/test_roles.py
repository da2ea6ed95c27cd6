"""Track roles: the rules table on real-world file names, roles.toml overrides and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from dsp.errors import SessionError
from mixstyle.sessions.roles import ROLES, assign_roles, load_roles_override, role_from_name, tokens
from mixstyle.sessions.load import load_stems


@pytest.mark.parametrize("filename, role", [
    ("Kick In.wav", "kick"), ("kick_out_02.flac", "kick"), ("BD.wav", "kick"),
    ("BassDrum.wav", "kick"), ("bass drum.aif", "kick"), ("bassdrum.wav", "kick"),
    ("808 Kick.wav", "kick"),
    ("Snare Top.wav", "snare"), ("SD_bottom.wav", "snare"), ("snr.wav", "snare"),
    ("OH L.wav", "overheads"), ("Overheads.wav", "overheads"), ("Drum Room.wav", "overheads"),
    ("cymbals.mp3", "overheads"),
    ("HiHat.wav", "drums"), ("hat_closed.wav", "drums"), ("Tom 1.wav", "drums"),
    ("perc.ogg", "drums"), ("Drums.wav", "drums"), ("drum loop 3.wav", "drums"),
    ("loop_120bpm.wav", "drums"),
    ("Bass DI.wav", "bass"), ("SUB.wav", "bass"), ("808.wav", "bass"), ("SynthBass.wav", "bass"),
    ("bass gtr.wav", "bass"),
    ("Gtr L.wav", "guitar"), ("acoustic_guitar.wav", "guitar"), ("Lead Gtr.wav", "guitar"),
    ("Piano.wav", "keys"), ("Rhodes.wav", "keys"), ("EPiano.wav", "keys"),
    ("e-piano.wav", "keys"), ("organ.wav", "keys"), ("keys2.wav", "keys"),
    ("Synth Pad.wav", "synth"), ("arp.wav", "synth"), ("Lead Synth.wav", "synth"),
    ("lead.wav", "lead"), ("Solo.wav", "lead"), ("melody-1.wav", "lead"),
    ("Vox.wav", "vocals"), ("LeadVox_02.wav", "vocals"), ("lead vocal.wav", "vocals"),
    ("Voice Memo.wav", "vocals"),
    ("BV 1.wav", "backing_vocals"), ("bgv_stack.wav", "backing_vocals"),
    ("Backing Vocals.wav", "backing_vocals"), ("Harmony.wav", "backing_vocals"),
    ("choir.wav", "backing_vocals"),
    ("FX.wav", "fx"), ("sfx_hit.wav", "fx"), ("Riser.wav", "fx"), ("Impact 2.wav", "fx"),
    ("white noise.wav", "fx"), ("vox fx.wav", "fx"),
    ("Strings.wav", "other"), ("Audio 07.wav", "other"), ("", "other"),
])
def test_role_from_name(filename, role):
    assert role_from_name(filename) == role
    assert role in ROLES


def test_tokens_split_on_separators_digits_and_camel_case():
    assert tokens("LeadVox_02.wav") == ["lead", "vox", "02"]
    assert tokens("Kick-In.Take3 final.flac") == ["kick", "in", "take", "3", "final"]
    assert tokens("my.stem.name") == ["my", "stem", "name"]  # not an audio extension: kept


def test_override_wins_over_rules(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('# producer notes\n"Audio 07" = "Backing_Vocals"\nkick = "drums"\n'
                    '"gtr.wav" = "fx"\n')
    override = load_roles_override(path)
    assert override == {"Audio 07": "backing_vocals", "kick": "drums", "gtr": "fx"}
    roles = assign_roles(["Audio 07", "kick", "gtr", "vox"], override)
    assert roles == {"Audio 07": "backing_vocals", "kick": "drums", "gtr": "fx",
                     "vox": "vocals"}


def test_override_in_a_stems_folder_and_unused_entry_warning(tmp_path):
    t = np.arange(4410) / 44100
    for name in ("kick", "Audio 07"):
        with AudioFile(str(tmp_path / f"{name}.wav"), "w", 44100, 1, bit_depth=24) as f:
            f.write((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)[None])
    (tmp_path / "roles.toml").write_text('"Audio 07" = "lead"\nsnare = "snare"\n')
    seen = []
    stems = load_stems(tmp_path, on_warning=seen.append)
    assert {s.name: s.role for s in stems} == {"Audio 07": "lead", "kick": "kick"}
    assert [w.code for w in seen] == ["unused_role"]
    assert "names track 'snare' but there is no such stem" in str(seen[0])


@pytest.mark.parametrize("text, pattern", [
    ('vox = "vocal"\n', r"track 'vox': unknown role 'vocal' \(did you mean 'vocals'\?\); "
                        r"allowed roles: drums, kick, snare, .*, other$"),
    ('vox = "banana"\n', r"track 'vox': unknown role 'banana'; allowed roles: drums"),
    ('vox = 3\n', r"track 'vox': expected a role string like \"vocals\", got int 3"),
    ('[vox]\nrole = "vocals"\n', r"track 'vox': expected a role string"),
    ('vox = "vocals"\n"vox.wav" = "lead"\n', r"track 'vox' is given twice"),
    ('vox = vocals\n', r"is not valid TOML: .*expected lines like vox_main = \"vocals\""),
])
def test_bad_roles_file(tmp_path, text, pattern):
    path = tmp_path / "roles.toml"
    path.write_text(text)
    with pytest.raises(SessionError, match=r"roles file '.*roles\.toml'.*" + pattern):
        load_roles_override(path)


def test_missing_roles_file(tmp_path):
    with pytest.raises(SessionError, match=r"roles file '.*nope\.toml' does not exist"):
        load_roles_override(tmp_path / "nope.toml")
