"""`mixstyle host` on a machine without a sound card or JACK says how to get going."""

from __future__ import annotations

import re

import numpy as np
import pytest

import host.io as hio
from dsp.errors import HostError
from mixstyle.io.audio import write_audio_atomic
from mixstyle.cli import main


class _NoDevices:
    """What sounddevice reports on a server without a sound card and no JACK running
    (measured here: host APIs ALSA and OSS, no devices)."""

    class default:
        device = (-1, -1)

    @staticmethod
    def query_hostapis():
        return [{"name": n, "devices": [], "default_input_device": -1,
                 "default_output_device": -1} for n in ("ALSA", "OSS")]

    @staticmethod
    def query_devices(index=None):
        if index is None:
            return []
        raise ValueError(f"no device {index}")


class _OneCard(_NoDevices):
    @staticmethod
    def query_devices(index=None):
        card = {"name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "max_output_channels": 2}
        return [card] if index is None else card


HINT = (r"Start a JACK server and run again: without a sound card "
        r"'jackd -r -d dummy -r 48000 -p 128', with one 'jackd -d alsa -d hw:0 -r 48000 -p 128'"
        r"; or render offline, which needs no device: 'mixstyle host STEMS --render OUT\.wav'")


def test_no_device_says_how_to_start_jack_or_render(monkeypatch):
    monkeypatch.setattr(hio, "_sd", lambda: _NoDevices)
    with pytest.raises(HostError, match=r"^no stereo output device on any host API \(ALSA, OSS\);"
                                        r" devices: \[\]\. " + HINT + "$"):
        hio.find_output_device(None, None)


def test_a_device_name_that_matches_nothing_lists_the_devices_without_the_hint(monkeypatch):
    monkeypatch.setattr(hio, "_sd", lambda: _OneCard)
    assert hio.find_output_device(None, None) == 0
    with pytest.raises(HostError, match=r"no stereo output device matching 'usb' on any host API "
                                        r"\(ALSA, OSS\); devices: \['HDA Intel") as err:
        hio.find_output_device("usb", None)
    assert "jackd" not in str(err.value)


def test_mixstyle_host_prints_the_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(hio, "_sd", lambda: _NoDevices)
    monkeypatch.setattr(hio, "host_apis", lambda: ["ALSA", "OSS"])
    stems = tmp_path / "stems"
    stems.mkdir()
    t = np.arange(44100) / 44100
    for name, f in (("bass", 55.0), ("keys", 440.0)):
        tone = (0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        write_audio_atomic(stems / f"{name}.wav", np.stack([tone, tone]), 44100)
    assert main(["host", str(stems)]) == 2
    err = capsys.readouterr().err
    assert re.search(HINT, err), err
