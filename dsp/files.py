"""Files written whole or not at all: the project's one atomic writer.

A write goes to a hidden temporary file in the destination's own folder
(``.<stem>.<random>.tmp<suffix>``: the same file system, and the real extension last, so a writer
that picks the format from the name -- pedalboard -- still can). The file is flushed and fsynced,
renamed over the destination (``os.replace``) and the folder entry fsynced: after a crash the
destination is the old file or the new one, never a part of one, and a finished write survives a
power cut. The new file keeps the mode of the file it replaces, else gets what ``open`` would
give a new file. A failed write removes its temporary file.

It lives in ``dsp`` (which has no audio, numba or torch in this module) because ``dsp`` is the
layer everyone may import: ``mixstyle`` (``mixstyle.io.audio`` builds its audio and text writers
on it) and ``host`` (sessions, renders), which may not import ``mixstyle``.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


NEW_FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's content to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to the disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], sync: bool = True) -> Iterator[Path]:
    """Yield the temporary path to write ``path``'s new content to (by name: any writer); when
    the block ends normally, the temporary file is fsynced and renamed over ``path`` and the
    folder fsynced; when it raises, the temporary file is removed. The folder must exist.
    ``sync=False`` leaves both fsyncs to the caller (``fsync_file``, ``fsync_folder``), who
    must not treat the file as on the disk before them (a batch that syncs one output while
    it computes the next); the rename is atomic either way."""
    dest = Path(path)
    folder = dest.parent
    mode = dest.stat().st_mode & 0o777 if dest.is_file() else NEW_FILE_MODE
    fd, name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}",
                                dir=folder)
    tmp = Path(name)
    try:
        os.close(fd)
        yield tmp
        if sync:
            fsync_file(tmp)   # whatever wrote it may not have synced
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_folder(folder)


def write_stream_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]
                        ) -> Path:
    """Call ``write(file)`` on the temporary binary file, then put it in place; returns the
    path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    return write_stream_atomic(path, lambda f: f.write(data) and None)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 (newlines as given) to ``path`` atomically; returns the path."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return write_bytes_atomic(path, text.encode("utf-8"))
