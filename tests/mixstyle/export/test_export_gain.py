"""``mixstyle export`` carries the master gain the song's loudness needs: a DAW that plays the
exported project (its limiter's input gain and ceiling, no loudness meter) gives the loudness
of ``mixstyle mix`` on the same stems, and the JSON keeps the target it was set for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.loudness import integrated_loudness
from dsp.params import ConsoleSetting
from dsp.render import render
from mixstyle.cli import main
from mixstyle.export import import_dawproject
from mixstyle.io.audio import read_audio, write_audio_atomic

ROOT = Path(__file__).resolve().parents[3]
PRESET = str(ROOT / "presets" / "default")
NAMES = ("bass", "drums", "keys", "vocals")
SR = 48000


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import synthetic_stems
    folder = tmp_path_factory.mktemp("export_gain")
    for name, audio in zip(NAMES, synthetic_stems(11, 4.0, len(NAMES), SR)):
        write_audio_atomic(folder / f"{name}.wav", audio, SR)
    return folder


def test_the_exported_gain_plays_the_mix_at_its_loudness(stems_dir, tmp_path):
    mix, params = tmp_path / "mix.wav", tmp_path / "params.json"
    assert main(["mix", str(stems_dir), "--profile", PRESET, "--out", str(mix),
                 "--params", str(params)]) == 0
    audio, rate = read_audio(mix)
    want = integrated_loudness(audio, rate)
    predicted = json.loads(params.read_text())["master"]

    project = tmp_path / "song.dawproject"
    assert main(["export", str(stems_dir), "--profile", PRESET, "--format", "dawproject",
                 "--out", str(project)]) == 0
    imported = import_dawproject(project)
    # the DAW's view: its limiter with the exported input gain and ceiling, no target
    daw = ConsoleSetting(imported.tracks, dict(imported.master, target_lufs=None))
    stems = np.stack([read_audio(stems_dir / f"{n}.wav")[0] for n in NAMES])
    got = render(stems, SR, daw).loudness_lufs
    assert abs(got - want) <= 0.05, (got, want, imported.master["gain_db"])
    # the network's own table value (what was exported before) would miss it
    stale = ConsoleSetting(imported.tracks, dict(imported.master, target_lufs=None,
                                                 gain_db=predicted["gain_db"]))
    assert abs(render(stems, SR, stale).loudness_lufs - want) > 0.5

    out = tmp_path / "song.json"
    assert main(["export", str(stems_dir), "--profile", PRESET, "--format", "json",
                 "--out", str(out)]) == 0
    saved = json.loads(out.read_text())["master"]
    assert saved["target_lufs"] == pytest.approx(predicted["target_lufs"])
    assert saved["gain_db"] == pytest.approx(imported.master["gain_db"], abs=1e-3)
