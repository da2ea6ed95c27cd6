"""Safe file handling for export and import: atomic writes, guarded ZIP and XML reading.

Writes go to a temporary file in the destination folder, are flushed to disk, then renamed over
the destination (``os.replace``), so a crash never leaves a half-written file behind.

Reading a ZIP someone else made (``SafeZip``) refuses, with an ExportError naming the file,
the entry and the problem:

- entry names that could escape a folder: ``..`` components, absolute paths (``/x``, ``C:x``),
  backslashes, NUL bytes, empty names, duplicates; symbolic links; encrypted entries;
- too many entries; declared sizes above a per-entry or total limit; a compression ratio above
  ``max_ratio`` for entries larger than ``ratio_floor_bytes`` (zip bombs);
- more bytes than declared or allowed when actually reading (lying headers), bad CRCs.

``parse_xml`` parses with defusedxml: any DTD, entity declaration (billion laughs) or external
reference is refused.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from dsp.errors import ExportError
from dsp.files import write_stream_atomic

_MiB = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """Limits for reading an untrusted ZIP (sizes in bytes)."""

    max_entries: int = 10_000
    max_entry_bytes: int = 4096 * _MiB
    max_total_bytes: int = 16384 * _MiB
    max_read_bytes: int = 64 * _MiB  # largest entry we ever read into memory (XML)
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * _MiB

    def __post_init__(self) -> None:
        for name in ("max_entries", "max_entry_bytes", "max_total_bytes", "max_read_bytes",
                     "ratio_floor_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"ZipLimits.{name} must be >= 0")
        if not self.max_ratio >= 1.0:
            raise ValueError("ZipLimits.max_ratio must be >= 1")


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_entry_name(name: str) -> str | None:
    """Why an entry name is unsafe to extract, or None if it is fine."""
    if not name or name in (".", "/"):
        return "empty name"
    if "\x00" in name:
        return "NUL byte in the name"
    if "\\" in name:
        return "backslash in the name (Windows path separator)"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name.rstrip("/").split("/")
    if any(p == ".." for p in parts):
        return "path traversal ('..')"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' path component"
    return None


class SafeZip:
    """A read-only ZIP whose directory has been checked against ``limits``. Use as a context."""

    def __init__(self, path: str | os.PathLike[str], limits: ZipLimits = ZipLimits()) -> None:
        self.path = Path(path)
        self.limits = limits
        self._label = self.path.name
        try:
            self._zf = zipfile.ZipFile(self.path, "r")
        except FileNotFoundError:
            raise ExportError(f"{self._label}: file not found ({self.path})") from None
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ExportError(f"{self._label}: not a readable ZIP container ({e})") from None
        try:
            self._check_directory()
        except BaseException:
            self._zf.close()
            raise

    def _fail(self, entry: str, problem: str) -> ExportError:
        return ExportError(f"{self._label}: entry {entry!r} refused: {problem}")

    def _check_directory(self) -> None:
        lim = self.limits
        infos = self._zf.infolist()
        if len(infos) > lim.max_entries:
            raise ExportError(f"{self._label}: {len(infos)} entries, more than the limit of "
                              f"{lim.max_entries} (zip bomb?)")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            # zipfile turns backslashes into '/' on Windows only; look at the raw name too
            why = check_entry_name(name) or check_entry_name(getattr(info, "orig_filename", name))
            if why:
                raise self._fail(name, why)
            if name in seen:
                raise self._fail(name, "duplicate entry name")
            seen.add(name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise self._fail(name, "symbolic link")
            if info.flag_bits & 0x1:
                raise self._fail(name, "encrypted entry")
            if info.file_size > lim.max_entry_bytes:
                raise self._fail(name, f"declared size {info.file_size} bytes exceeds the limit "
                                       f"of {lim.max_entry_bytes} bytes")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > lim.ratio_floor_bytes and ratio > lim.max_ratio:
                raise self._fail(name, f"compression ratio {ratio:.0f}:1 exceeds the limit of "
                                       f"{lim.max_ratio:.0f}:1 (zip bomb?)")
            total += info.file_size
            if total > lim.max_total_bytes:
                raise ExportError(f"{self._label}: declared total size exceeds the limit of "
                                  f"{lim.max_total_bytes} bytes (zip bomb?)")

    def names(self) -> list[str]:
        return self._zf.namelist()

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """Read one entry, never more than ``max_bytes`` (default ``limits.max_read_bytes``)."""
        limit = self.limits.max_read_bytes if max_bytes is None else max_bytes
        try:
            info = self._zf.getinfo(name)
        except KeyError:
            raise ExportError(f"{self._label}: has no entry {name!r}") from None
        if info.file_size > limit:
            raise self._fail(name, f"declared size {info.file_size} bytes exceeds the read "
                                   f"limit of {limit} bytes")
        chunks: list[bytes] = []
        got = 0
        try:
            with self._zf.open(info) as f:
                while True:
                    chunk = f.read(min(65536, limit + 1 - got))
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > limit or got > info.file_size:
                        raise self._fail(name, f"holds more data than declared/allowed "
                                               f"({got} > {min(limit, info.file_size)} bytes)")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as e:
            raise self._fail(name, f"corrupt data ({e})") from None
        if got != info.file_size:
            raise self._fail(name, f"holds {got} bytes, header declares {info.file_size}")
        return b"".join(chunks)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> "SafeZip":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def parse_xml(data: bytes, where: str) -> Element:
    """Parse untrusted XML; DTDs, entities and external references raise ExportError."""
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as e:
        raise ExportError(f"{where}: refused XML with a DTD, entity declaration or external "
                          f"reference ({type(e).__name__}: {e})") from None
    except ParseError as e:
        raise ExportError(f"{where}: not well-formed XML ({e})") from None


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temp file next to ``path``, then put it in place atomically
    (``dsp.files``); ExportError if the folder does not exist."""
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {dest}: folder {folder} does not exist")
    return write_stream_atomic(dest, write)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data) and None)


def safe_file_stem(name: str, fallback: str = "track") -> str:
    """A track name made safe as a file name / ZIP entry component."""
    s = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" .")
    return s[:80] or fallback
