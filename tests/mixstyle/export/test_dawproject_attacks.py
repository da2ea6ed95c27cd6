"""import_dawproject on hostile files: each attack is refused with an ExportError naming it."""

import stat
import struct
import zipfile

import pytest

from dsp.errors import ExportError
from mixstyle.export.dawproject import import_dawproject
from mixstyle.export.safe_zip import SafeZip, ZipLimits, check_entry_name

GOOD = (b'<?xml version="1.0"?><Project version="1.0"><Application name="x" version="1"/>'
        b'<Structure/></Project>')


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for item in entries:
            if isinstance(item, zipfile.ZipInfo):
                z.writestr(item, b"x")
            else:
                z.writestr(zipfile.ZipInfo(item[0]) if isinstance(item[0], str) else item[0],
                           item[1], compress_type=compression)
    return path


def test_a_plain_project_reads(tmp_path):
    s = import_dawproject(make_zip(tmp_path / "ok.dawproject", [("project.xml", GOOD)]))
    assert s.tracks == ()


@pytest.mark.parametrize("name, problem", [
    ("../evil.xml", r"path traversal \('\.\.'\)"),
    ("audio/../../evil.wav", r"path traversal"),
    ("/etc/cron.d/evil", "absolute path"),
    ("C:/Windows/evil.dll", "absolute path"),
    ("audio\\..\\evil.wav", "backslash"),
    ("audio//x.wav", "empty or '.' path component"),
])
def test_unsafe_entry_names(tmp_path, name, problem):
    path = make_zip(tmp_path / "evil.dawproject", [("project.xml", GOOD), (name, b"payload")])
    with pytest.raises(ExportError, match=rf"evil\.dawproject: entry .* refused: {problem}"):
        import_dawproject(path)
    assert sorted(p.name for p in tmp_path.parent.iterdir() if p.name == "evil.xml") == []


def test_symlink_and_encrypted_and_duplicate_entries(tmp_path):
    link = zipfile.ZipInfo("audio/link.wav")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "link.dawproject", [("project.xml", GOOD), (link, b"/etc/passwd")])
    with pytest.raises(ExportError, match=r"link\.dawproject: entry 'audio/link.wav' refused: "
                                          r"symbolic link"):
        import_dawproject(path)
    path = make_zip(tmp_path / "enc.dawproject", [("project.xml", GOOD)])
    data = bytearray(path.read_bytes())  # zipfile writes no encrypted entries: set the flag bit
    data[6] |= 0x1
    data[data.rfind(b"PK\x01\x02") + 8] |= 0x1
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=r"entry 'project.xml' refused: encrypted entry"):
        import_dawproject(path)
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = make_zip(tmp_path / "dup.dawproject", [("project.xml", GOOD), ("project.xml", GOOD)])
    with pytest.raises(ExportError, match=r"entry 'project.xml' refused: duplicate entry name"):
        import_dawproject(path)


def test_zip_bomb_by_compression_ratio(tmp_path):
    # 8 MiB of spaces deflate to ~8 KiB: ratio ~1000:1
    bomb = GOOD[:-10] + b" " * (8 * 1024 * 1024) + GOOD[-10:]
    path = make_zip(tmp_path / "bomb.dawproject", [("project.xml", bomb)])
    with pytest.raises(ExportError, match=r"bomb\.dawproject: entry 'project.xml' refused: "
                                          r"compression ratio \d+:1 exceeds the limit of 200:1"):
        import_dawproject(path)


def test_declared_sizes_and_entry_count(tmp_path):
    path = make_zip(tmp_path / "big.dawproject", [("project.xml", GOOD),
                                                  ("audio/a.wav", b"\x01" * 5000)],
                    compression=zipfile.ZIP_STORED)
    with pytest.raises(ExportError, match=r"entry 'audio/a.wav' refused: declared size 5000 bytes "
                                          r"exceeds the limit of 4096 bytes"):
        import_dawproject(path, limits=ZipLimits(max_entry_bytes=4096))
    with pytest.raises(ExportError, match=r"declared total size exceeds the limit of 5000 bytes"):
        import_dawproject(path, limits=ZipLimits(max_total_bytes=5000))
    with pytest.raises(ExportError, match=r"2 entries, more than the limit of 1"):
        import_dawproject(path, limits=ZipLimits(max_entries=1))
    with pytest.raises(ExportError, match=r"'project.xml' refused: declared size \d+ bytes exceeds "
                                          r"the read limit of 50 bytes"):
        import_dawproject(path, limits=ZipLimits(max_read_bytes=50))


def patch_declared_size(path, new_size):
    """Rewrite the uncompressed size in the local header and central directory of entry 0."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"PK\x03\x04"
    data[22:26] = struct.pack("<I", new_size)
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = struct.pack("<I", new_size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("declared", [40, 10_000_000])
def test_lying_headers_are_caught_when_reading(tmp_path, declared):
    body = GOOD[:-10] + b"<!-- pad -->" * 400 + GOOD[-10:]
    path = make_zip(tmp_path / "liar.dawproject", [("project.xml", body)])
    patch_declared_size(path, declared)
    with pytest.raises(ExportError, match=r"liar\.dawproject: entry 'project.xml' refused: "
                                          r"(corrupt data|holds)"):
        import_dawproject(path, limits=ZipLimits(max_ratio=1e9))


def test_billion_laughs(tmp_path):
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;")
                                                  * 10) for i in range(1, 10))
           + b']><Project version="1.0"><Application name="&lol9;" version="1"/></Project>')
    path = make_zip(tmp_path / "lol.dawproject", [("project.xml", lol)])
    with pytest.raises(ExportError, match=r"lol\.dawproject: project.xml: refused XML with a DTD, "
                                          r"entity declaration or external reference"):
        import_dawproject(path)


def test_external_entity(tmp_path):
    xxe = (b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Project version="1.0"><Application name="&x;" version="1"/></Project>')
    path = make_zip(tmp_path / "xxe.dawproject", [("project.xml", GOOD), ("metadata.xml", xxe)])
    with pytest.raises(ExportError, match=r"xxe\.dawproject: metadata.xml: refused XML"):
        import_dawproject(path)


def test_not_a_project(tmp_path):
    (tmp_path / "plain.dawproject").write_bytes(b"hello, not a zip")
    with pytest.raises(ExportError, match=r"plain\.dawproject: not a readable ZIP container"):
        import_dawproject(tmp_path / "plain.dawproject")
    with pytest.raises(ExportError, match=r"nope\.dawproject: file not found"):
        import_dawproject(tmp_path / "nope.dawproject")
    path = make_zip(tmp_path / "empty.dawproject", [("metadata.xml", b"<MetaData/>")])
    with pytest.raises(ExportError, match=r"empty\.dawproject: no project.xml"):
        import_dawproject(path)
    path = make_zip(tmp_path / "broken.dawproject", [("project.xml", b"<Project><oops></Project>")])
    with pytest.raises(ExportError, match=r"broken\.dawproject: project.xml: not well-formed XML"):
        import_dawproject(path)
    path = make_zip(tmp_path / "svg.dawproject", [("project.xml", b"<svg/>")])
    with pytest.raises(ExportError, match=r"root is <svg>, expected <Project>"):
        import_dawproject(path)


def test_entry_name_rules_directly():
    assert check_entry_name("audio/vox.wav") is None
    assert check_entry_name("") == "empty name"
    assert check_entry_name("a\x00b") == "NUL byte in the name"
    with pytest.raises(ValueError, match="max_ratio must be >= 1"):
        ZipLimits(max_ratio=0.5)


def test_safezip_reads_a_good_entry(tmp_path):
    path = make_zip(tmp_path / "ok.zip", [("project.xml", GOOD)])
    with SafeZip(path) as z:
        assert z.read("project.xml") == GOOD
        with pytest.raises(ExportError, match=r"ok\.zip: has no entry 'x.xml'"):
            z.read("x.xml")
