"""Ctrl-C and SIGTERM end a host loop (the terminal host's, the studio's) cleanly.

A host started by a script in the background inherits SIGINT ignored (POSIX, for a shell
without job control), and Python then raises no KeyboardInterrupt: "Ctrl-C quits" never did,
and the process hung until killed (twice in CI, the studio). A service manager stops a process
with SIGTERM, which by default ends it without closing its audio and MIDI ports or putting the
terminal back. ``quit_on_signals`` makes both raise KeyboardInterrupt, which the loops catch.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable


def quit_on_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, whatever this process
    inherited. Returns what puts the previous handlers back (only the main thread may set them;
    elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    return restore
