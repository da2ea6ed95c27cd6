"""Shared by the host tests: a real JACK dummy server that PortAudio can see."""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest

from host.jack_server import JackServer


@contextlib.contextmanager
def jack_for_portaudio(sample_rate_hz: float, period_frames: int) -> Iterator[JackServer]:
    """Start ``jackd -d dummy`` and re-initialise PortAudio so it sees JACK (it only lists JACK
    if it starts after the server); skip (a failure under CI) if PortAudio has no JACK API.
    On exit PortAudio lets go of JACK before the server stops."""
    from host.io import JACK_API, host_apis, refresh_portaudio, release_portaudio
    srv = JackServer(sample_rate_hz=sample_rate_hz, period_frames=period_frames)
    srv.start()
    refresh_portaudio()
    apis = host_apis()
    if JACK_API not in apis:
        release_portaudio()
        srv.stop()
        refresh_portaudio()
        pytest.skip(f"PortAudio has no JACK host API here (have {apis})")
    try:
        yield srv
    finally:
        release_portaudio()
        srv.stop()
        refresh_portaudio()


@pytest.fixture(scope="module")
def jack() -> Iterator[JackServer]:
    """The server at 48 kHz, 128-frame periods, for one test module."""
    with jack_for_portaudio(48000, 128) as srv:
        yield srv
