"""Start, wait for and stop a private JACK server (the `dummy` driver needs no sound card).

Each server gets its own name (``jackd -n``) so that parallel test runs never share one; clients
in this process find it through ``JACK_DEFAULT_SERVER``, and ``JACK_NO_START_SERVER=1`` stops a
client from spawning a server of its own when ours is not up.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from dsp.errors import HostError


def jackd_path() -> str | None:
    """Path of the ``jackd`` executable, or None when JACK is not installed."""
    return shutil.which("jackd")


def jack_missing_reason() -> str | None:
    """A sentence saying why a JACK test cannot run here, or None when it can."""
    if jackd_path() is None:
        return "jackd is not installed (Debian package jackd2)"
    if shutil.which("jack_lsp") is None:
        return "jack_lsp is not installed (Debian package jackd2)"
    return None


def end_process(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """Terminate a child process still running, killing it if it does not end in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


@dataclass
class JackServer:
    """A ``jackd -d dummy`` (or other driver) server owned by this process.

    ``with JackServer(sample_rate_hz=48000, period_frames=128) as srv:`` starts it, waits until
    a client can connect and points this process's JACK clients at it; leaving the block stops it
    and restores the environment.
    """

    sample_rate_hz: int = 48000
    period_frames: int = 128
    driver: str = "dummy"
    name: str = ""
    start_timeout_s: float = 10.0
    realtime: bool = False  # -R: SCHED_FIFO for the server and its clients' process threads

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"mixstyle_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}
        self._logfile: Any = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, driver: str | None = None, realtime: bool | None = None) -> list[str]:
        """jackd's command line for this server (``driver``, ``realtime``: other than its own)."""
        exe = jackd_path()
        if exe is None:
            raise HostError("cannot start JACK: jackd is not installed (Debian package jackd2)")
        realtime = self.realtime if realtime is None else realtime
        return [exe, "-n", self.name, "-R" if realtime else "-r", "-d", driver or self.driver,
                "-r", str(self.sample_rate_hz), "-p", str(self.period_frames)]

    def start(self) -> "JackServer":
        if self.running:
            return self
        reason = jack_missing_reason()
        if reason:
            raise HostError(f"cannot start JACK: {reason}")
        # jackd's dummy driver prints a line per timer xrun: log to a file, never a pipe (a full
        # pipe would block the server).
        self._logfile = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self.command(), stdout=self._logfile,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for key, value in (("JACK_DEFAULT_SERVER", self.name), ("JACK_NO_START_SERVER", "1")):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self.log()
                self.stop()
                hint = (" (JACK registers at most 8 servers and keeps the entry of one that was "
                        "killed until a server of its name starts again; with no JACK server "
                        "running, removing /dev/shm/jack-shm-registry clears them)"
                        if "Too many servers" in err else "")
                raise HostError(f"jackd exited at start: {err.strip()[-400:]}{hint}")
            if self.ports():
                return
            time.sleep(0.05)
        self.stop()
        raise HostError(f"JACK server {self.name!r} not ready after {self.start_timeout_s:g} s")

    def log(self) -> str:
        """What jackd printed so far."""
        if self._logfile is None:
            return ""
        self._logfile.seek(0)
        return self._logfile.read().decode(errors="replace")

    def ports(self) -> list[str]:
        """Port names on this server (``jack_lsp``); empty when it is not reachable."""
        env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        try:
            out = subprocess.run(["jack_lsp", "-s", self.name], capture_output=True, text=True,
                                 timeout=5, env=env)
        except (OSError, subprocess.TimeoutExpired):
            return []
        if out.returncode != 0:
            return []
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]

    def connect(self, source: str, destination: str) -> None:
        """Connect two ports (``jack_connect``); HostError naming them if it fails."""
        env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        out = subprocess.run(["jack_connect", "-s", self.name, source, destination],
                             capture_output=True, text=True, timeout=5, env=env)
        if out.returncode != 0:
            raise HostError(f"jack_connect {source} -> {destination} failed: "
                            f"{(out.stderr or out.stdout).strip()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc)
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None
        if proc is not None:
            self._remove_leftovers()
            if proc.returncode is not None and proc.returncode < 0:
                self._free_registry_entry()
        self._restore_env()

    def _free_registry_entry(self) -> None:
        """A jackd ended by a signal it did not handle (SIGKILL from ``end_process`` when it did
        not stop in time, a crash) leaves its entry in JACK's registry of at most 8 servers,
        which JACK frees only when a server of the same name starts again: with unique names,
        8 such ends and no server starts on the machine any more ("Too many servers already
        active"; 2 of 8 were taken that way on a development machine). So start one of our name
        and stop it cleanly."""
        if jackd_path() is None:
            return
        proc = subprocess.Popen(self.command(driver="dummy", realtime=False),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while proc.poll() is None and not self.ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        end_process(proc)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Semaphores of clients that did not close before our server stopped (ours only)."""
        for path in glob.glob(f"/dev/shm/jack_sem.*_{self.name}_*"):
            try:
                os.unlink(path)
            except OSError:
                pass

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
