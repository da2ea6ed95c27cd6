"""The mix fields of a tracker module, found in its bytes: reset them for the dry renders, and
switch off the random swing that would make two renders of the same module differ.

What counts as the author's per-track mix (reset to unity / centre for the dry stems):

- IT: instrument global volume (``IMPI+0x18`` -> 128) and default pan (``IMPI+0x19`` bit 7 off),
  sample global volume (``IMPS+0x11`` -> 64 unless 0) and default pan (``IMPS+0x2F`` bit 7 off),
  channel pan (``0x40+c`` -> 32, centre) and channel volume (``0x80+c`` -> 64) of every enabled
  channel;
- XM: each sample's volume (``+12`` -> 64) and pan (``+15`` -> 128);
- S3M: each sample's default volume (``+0x1C`` -> 64) and the channel pan table (``0x28``);
- MOD: each sample's volume (byte 25 of its header -> 64); MOD pans are the format's fixed
  Amiga left/right, which the dry render's 0 % stereo separation takes away.

The note volumes and pan commands written in the patterns are the composer's and stay; the song's
global and mixing volume stay too (one level common to every stem). In XM/S3M/MOD the sample
volume only sets notes that have no volume of their own, so part of the balance stays in the
notes: the "dry" stems of those formats are dry as far as the file allows.
"""

from __future__ import annotations

import struct

# IT random volume / pan swing (IMPI+0x1A, +0x1B) draws new values every render: always off.


def _u16(d: bytes | bytearray, at: int) -> int:
    return struct.unpack_from("<H", d, at)[0]


def _u32(d: bytes | bytearray, at: int) -> int:
    return struct.unpack_from("<I", d, at)[0]


def kind_of(data: bytes) -> str:
    """"it", "xm", "s3m", "mod" from the signature, "" for anything else."""
    if data[:4] == b"IMPM":
        return "it"
    if data[:17] == b"Extended Module: ":
        return "xm"
    if len(data) > 0x30 and data[0x2C:0x30] == b"SCRM":
        return "s3m"
    if len(data) > 1084 and data[1080:1084] in (b"M.K.", b"M!K!", b"FLT4", b"4CHN", b"6CHN",
                                                   b"8CHN", b"FLT8", b"CD81", b"OKTA"):
        return "mod"
    return ""


def _it_tables(d: bytearray) -> tuple[list[int], list[int]]:
    orders, n_inst, n_smp = _u16(d, 0x20), _u16(d, 0x22), _u16(d, 0x24)
    base = 0xC0 + orders
    inst = list(struct.unpack_from(f"<{n_inst}I", d, base))
    smp = list(struct.unpack_from(f"<{n_smp}I", d, base + 4 * n_inst))
    return ([o for o in inst if o and d[o:o + 4] == b"IMPI"],
            [o for o in smp if o and d[o:o + 4] == b"IMPS"])


def no_swing(data: bytes) -> tuple[bytes, list[str]]:
    """The module with random swing off (IT instruments' random volume/pan); what changed."""
    if kind_of(data) != "it" or _u16(data, 0x2A) < 0x200:
        return data, []
    d = bytearray(data)
    inst, _ = _it_tables(d)
    changed = sum(1 for o in inst if d[o + 0x1A] or d[o + 0x1B])
    for o in inst:
        d[o + 0x1A] = d[o + 0x1B] = 0
    note = [f"random volume/pan swing off in {changed} IT instrument(s)"] if changed else []
    return bytes(d), note


def reset_mix_fields(data: bytes) -> tuple[bytes, list[str]]:
    """The module with its per-track mix fields at unity/centre (the dry version); a list of
    what was reset, for source.json."""
    kind = kind_of(data)
    d = bytearray(data)
    done: list[str] = []
    if kind == "it":
        done = _reset_it(d)
    elif kind == "xm":
        done = _reset_xm(d)
    elif kind == "s3m":
        done = _reset_s3m(d)
    elif kind == "mod":
        for k in range(31):
            d[20 + 30 * k + 25] = 64
        done = ["sample volume -> 64"]
    return bytes(d), done


def _reset_it(d: bytearray) -> list[str]:
    done = []
    for c in range(64):
        if d[0x40 + c] < 128:        # >= 128: channel disabled
            d[0x40 + c] = 32
            d[0x80 + c] = 64
    done.append("channel pan -> centre, channel volume -> 64")
    inst, smp = _it_tables(d)
    if inst and _u16(d, 0x2A) >= 0x200:
        for o in inst:
            d[o + 0x18] = 128
            d[o + 0x19] &= 0x7F
        done.append("instrument global volume -> 128, instrument default pan off")
    for o in smp:
        if d[o + 0x11]:
            d[o + 0x11] = 64
        d[o + 0x2F] &= 0x7F
    done.append("sample global volume -> 64 (unless 0), sample default pan off")
    return done


def _reset_xm(d: bytearray) -> list[str]:
    n_pat, n_inst = _u16(d, 70), _u16(d, 72)
    pos = 60 + _u32(d, 60)
    for _ in range(n_pat):
        pos += _u32(d, pos) + _u16(d, pos + 7)
    for _ in range(n_inst):
        if pos + 29 > len(d):
            break
        size, n_smp = _u32(d, pos), _u16(d, pos + 27)
        if n_smp == 0:
            pos += size
            continue
        head = _u32(d, pos + 29)
        pos += size
        data_bytes = 0
        for _ in range(n_smp):
            d[pos + 12] = 64
            d[pos + 15] = 128
            data_bytes += _u32(d, pos)
            pos += head
        pos += data_bytes
    return ["sample volume -> 64, sample pan -> centre"]


def _reset_s3m(d: bytearray) -> list[str]:
    orders, n_ins, n_pat = _u16(d, 0x20), _u16(d, 0x22), _u16(d, 0x24)
    paras = 0x60 + orders
    for k in range(n_ins):
        o = 16 * _u16(d, paras + 2 * k)
        if o and d[o] == 1:           # type 1: a sample
            d[o + 0x1C] = 64
    done = ["sample default volume -> 64"]
    if d[0x35] == 0xFC:
        table = paras + 2 * (n_ins + n_pat)
        for c in range(32):
            d[table + c] = 0x28
        done.append("channel pan table -> centre")
    return done
