"""The one atomic writer (dsp.files): whole or not at all, no temporary file left, the mode of
the file it replaces kept."""

from __future__ import annotations

import os

import pytest

from dsp.files import NEW_FILE_MODE, atomic_path, write_bytes_atomic, write_stream_atomic, \
    write_text_atomic


def _hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_text_and_bytes_land_whole(tmp_path):
    assert write_text_atomic(tmp_path / "a.json", "{\r\n}é") == tmp_path / "a.json"
    assert (tmp_path / "a.json").read_bytes() == "{\r\n}é".encode("utf-8")  # newlines as given
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    write_stream_atomic(tmp_path / "c.bin", lambda f: f.write(b"xyz") and None)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.bin").read_bytes() == b"xyz"
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == NEW_FILE_MODE
    assert _hidden(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "keep.txt"
    write_text_atomic(path, "old")

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_stream_atomic(path, broken)
    assert path.read_text() == "old" and _hidden(tmp_path) == []


def test_the_replaced_file_keeps_its_mode_and_the_temp_keeps_the_extension(tmp_path):
    path = tmp_path / "mix.wav"
    path.write_bytes(b"x")
    os.chmod(path, 0o640)
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".mix.") and tmp.suffix == ".wav"
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_text_must_be_str(tmp_path):
    with pytest.raises(TypeError, match="text must be str"):
        write_text_atomic(tmp_path / "x", b"bytes")  # type: ignore[arg-type]


def test_without_sync_the_rename_is_still_whole_and_the_caller_syncs(tmp_path, monkeypatch):
    """``sync=False`` (a mastering batch syncs one output while it computes the next): no fsync
    inside, the file still replaces the old one whole; ``fsync_file``/``fsync_folder`` do it."""
    from dsp import files
    path = tmp_path / "out.wav"
    path.write_bytes(b"old")
    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    with atomic_path(path, sync=False) as tmp:
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"
    assert path.read_bytes() == b"new" and _hidden(tmp_path) == [] and synced == []
    files.fsync_file(path)
    files.fsync_folder(tmp_path)
    assert len(synced) == 2
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"newer")
    assert len(synced) == 4  # the default syncs the file and its folder
