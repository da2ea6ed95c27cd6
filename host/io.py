"""Audio output through PortAudio (sounddevice), by default on PortAudio's JACK host API.

PortAudio lists host APIs once, when it initialises (at ``import sounddevice``): a JACK server
started later is not seen until PortAudio is re-initialised. ``refresh_portaudio()`` does that
(only while no stream is open).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from dsp.errors import HostError

JACK_API = "JACK Audio Connection Kit"
NO_DEVICE_HINT = ("Start a JACK server and run again: without a sound card "
                  "'jackd -r -d dummy -r 48000 -p 128', with one 'jackd -d alsa -d hw:0 -r 48000 "
                  "-p 128'; or render offline, which needs no device: "
                  "'mixstyle host STEMS --render OUT.wav'")


def _sd() -> Any:
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        import sounddevice as sd
    except OSError as e:  # libportaudio missing
        raise HostError(f"PortAudio is not available ({e}); install libportaudio2") from None
    return sd


def refresh_portaudio() -> None:
    """Re-scan PortAudio host APIs/devices (e.g. after a JACK server started)."""
    release_portaudio()
    _sd()._initialize()


# A stream whose JACK server went away was left open (see AudioOutput.stop): PortAudio must not
# be terminated any more in this process.
_abandoned_streams: list[Any] = []


def release_portaudio() -> None:
    """Let go of PortAudio (and its JACK client) before a JACK server goes away.

    Terminating PortAudio after its JACK server died aborts the process; call this first, stop
    the server, then ``refresh_portaudio()``. Once a stream was left to a server that went away
    (``AudioOutput.stop``) this does nothing: terminating would wait on that stream for ten
    minutes.
    """
    sd = _sd()
    while sd._initialized > 0 and not _abandoned_streams:
        sd._terminate()


def _abandon(stream: Any) -> None:
    """Leave ``stream``, whose JACK server went away, open for good: PortAudio's JACK host waits
    up to ten minutes for a process callback that will never come to stop it (pa_jack.c
    RealStop: stop, abort, close and Pa_Terminate all go through it). sounddevice terminates
    PortAudio at exit, which would close it the same way: that exit handler is removed."""
    import atexit
    _abandoned_streams.append(stream)
    atexit.unregister(_sd()._exit_handler)


def host_apis() -> list[str]:
    return [h["name"] for h in _sd().query_hostapis()]


def find_output_device(device: int | str | None = None, hostapi: str | None = JACK_API) -> int:
    """Index of an output device with >= 2 channels on ``hostapi`` (None: any API).

    ``device`` may be an index, a substring of the device name, or None (the API's default or
    first stereo output).
    """
    sd = _sd()
    if isinstance(device, int) and not isinstance(device, bool):
        info = sd.query_devices(device)
        if info["max_output_channels"] < 2:
            raise HostError(f"audio device {device} ({info['name']!r}) has "
                            f"{info['max_output_channels']} output channels; need 2")
        return device
    apis = sd.query_hostapis()
    if hostapi is not None:
        matches = [i for i, h in enumerate(apis) if h["name"] == hostapi]
        if not matches:
            raise HostError(f"PortAudio host API {hostapi!r} not available (have: "
                            f"{', '.join(h['name'] for h in apis)}); is the server running and "
                            f"was PortAudio initialised after it (refresh_portaudio)?")
        candidates = list(apis[matches[0]]["devices"])
        default = apis[matches[0]]["default_output_device"]
    else:
        candidates = list(range(len(sd.query_devices())))
        default = sd.default.device[1]
    devs = [(i, sd.query_devices(i)) for i in candidates]
    stereo = [(i, d) for i, d in devs if d["max_output_channels"] >= 2]
    named = stereo if device is None else [
        (i, d) for i, d in stereo if str(device).lower() in d["name"].lower()]
    if not named:
        names = [d["name"] for _, d in devs]
        where = hostapi or f"any host API ({', '.join(h['name'] for h in apis) or 'none'})"
        hint = "" if stereo else f". {NO_DEVICE_HINT}"  # no sound card and no JACK server
        raise HostError(f"no stereo output device{' matching ' + repr(device) if device else ''}"
                        f" on {where}; devices: {names}{hint}")
    for i, _ in named:
        if i == default:
            return i
    return named[0][0]


def device_sample_rate(device: int | str | None = None, hostapi: str | None = JACK_API) -> float:
    """The rate an output device runs at by default; on JACK, the server's own rate (which a
    client cannot change)."""
    return float(_sd().query_devices(find_output_device(device, hostapi))["default_samplerate"])


class AudioOutput:
    """Drives ``engine.process`` from a PortAudio output stream (fixed block size)."""

    def __init__(self, engine: Any, device: int | str | None = None,
                 hostapi: str | None = JACK_API, latency: str | float = "low") -> None:
        self.engine = engine
        self.device = find_output_device(device, hostapi)
        self.latency = latency
        self.callback_errors = 0
        self.wrong_sizes = 0
        self.error: BaseException | None = None
        self._buf = np.zeros((2, engine.block), dtype=np.float32)
        self._stream: Any = None

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        if status:
            self.engine.timing.flagged[0] += 1
        if frames != self.engine.block:
            outdata.fill(0.0)
            self.wrong_sizes += 1
            return
        try:
            self.engine.process(self._buf)
            outdata[:, :] = self._buf.T
        except Exception as e:  # noqa: BLE001 - never let the stream die; report it
            outdata.fill(0.0)
            self.callback_errors += 1
            self.error = e

    def start(self) -> "AudioOutput":
        sd = _sd()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.engine.sample_rate, blocksize=self.engine.block,
                device=self.device, channels=2, dtype="float32", latency=self.latency,
                callback=self._callback)
            self._stream.start()
        except sd.PortAudioError as e:
            raise HostError(f"cannot open audio output device {self.device} at "
                            f"{self.engine.sample_rate:g} Hz, block {self.engine.block}: {e}"
                            ) from None
        return self

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    @property
    def lost(self) -> bool:
        """The stream ended by itself, not by ``stop``: its JACK server went away (PortAudio's
        JACK host marks its streams inactive when the server shuts down; our callback never
        ends the stream)."""
        return self._stream is not None and not self._stream.active \
            and not self._stream.stopped

    def run_for(self, seconds: float) -> None:
        """Keep the stream running for ``seconds`` (sleeping in this thread)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def stop(self) -> None:
        """Stop and close the stream; one whose JACK server went away (``lost``) is left as it
        is: stopping or closing it would hang ten minutes (a `mixstyle studio` whose jackd was
        killed did not quit on SIGTERM)."""
        if self._stream is not None:
            stream, lost = self._stream, self.lost
            self._stream = None
            if lost:
                _abandon(stream)
                return
            stream.stop()
            stream.close()

    def __enter__(self) -> "AudioOutput":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
