"""How many frames an audio file really holds, read from its container (WAV, AIFF, FLAC).

A copy or export that stopped early leaves a file whose header still promises the whole song.
pedalboard (JUCE) reports the header's length and reads the missing part as silence, without a
word (measured: a 29 s WAV cut to 239 frames reads as 29 s, 5 ms of sound then zeros; a cut FLAC
reads as zeros, sometimes even before the cut). ``frame_counts`` reads the length the header
promises and counts the frames the bytes hold, so ``mixstyle.io.audio`` can refuse such a file by name.
Both come from the container, not from pedalboard: JUCE miscounts WAVs whose samples are not
whole bytes (a 10-frame 20-bit WAV reports 15 frames), and those must not look truncated.

* WAV / RF64 (PCM, float, extensible): bytes present after the ``data`` chunk header.
* AIFF / AIFC (uncompressed): bytes present after the ``SSND`` data offset.
* FLAC: the end of the last frame whose CRC-16 checks out at the end of the file; a file cut
  inside a frame holds up to the start of that frame.

Other formats (MP3, Ogg, compressed AIFC) answer None: their headers only estimate a length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_WAV_FORMATS = (1, 3, 0xFFFE)           # PCM, IEEE float, extensible
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)    # streaming writers: "until the end of the file"
_AIFC_PLAIN = (b"NONE", b"sowt", b"twos", b"raw ", b"fl32", b"FL32", b"fl64", b"FL64",
               b"in24", b"in32")
_FLAC_TAIL_BYTES = 1 << 20              # searched for the last frame when max frame size is 0
_ID3V1_BYTES = 128


@dataclass(frozen=True)
class FrameCounts:
    """``header``: frames the file's header promises; ``stored``: frames its bytes hold."""

    header: int
    stored: int

    @property
    def truncated(self) -> bool:
        return self.stored < self.header


def frame_counts(path: str | os.PathLike[str]) -> FrameCounts | None:
    """Header and stored frame counts, or None when the format cannot tell (see module doc)."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(12)
        f.seek(0)
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _wav_frames(f, size)
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff_frames(f, size, head[8:12] == b"AIFC")
        if head[:4] == b"fLaC" or head[:3] == b"ID3":
            return _flac_frames(f, size)
    return None


def _chunks(f: BinaryIO, size: int, order: str):
    """``(id, declared size, offset of its body)`` of each chunk header present in the file."""
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        head = f.read(8)
        cid, csize = head[:4], int.from_bytes(head[4:8], order)  # type: ignore[arg-type]
        yield cid, csize, pos + 8
        pos += 8 + csize + (csize & 1)


def _wav_frames(f: BinaryIO, size: int) -> FrameCounts | None:
    block_align = None
    ds64_data = None
    for cid, csize, body in _chunks(f, size, "little"):
        f.seek(body)
        if cid == b"ds64":
            ds64_data = int.from_bytes(f.read(16)[8:16], "little")
        elif cid == b"fmt ":
            fmt = f.read(16)
            if int.from_bytes(fmt[0:2], "little") not in _WAV_FORMATS:
                return None
            block_align = int.from_bytes(fmt[12:14], "little")
        elif cid == b"data":
            if not block_align:
                return None
            present = size - body
            if csize == 0xFFFFFFFF and ds64_data is not None:
                csize = ds64_data
            elif csize in _UNKNOWN_WAV_SIZES:
                csize = present
            return FrameCounts(csize // block_align, min(csize, present) // block_align)
    return None


def _aiff_frames(f: BinaryIO, size: int, aifc: bool) -> FrameCounts | None:
    comm = ssnd = None
    for cid, csize, body in _chunks(f, size, "big"):
        f.seek(body)
        if cid == b"COMM":
            comm = f.read(22)
        elif cid == b"SSND":
            ssnd = (body, csize, f.read(8))
    if comm is None or ssnd is None or len(comm) < 18 or len(ssnd[2]) < 8:
        return None
    if aifc and comm[18:22] not in _AIFC_PLAIN:
        return None
    channels = int.from_bytes(comm[0:2], "big")
    frames = int.from_bytes(comm[2:6], "big")
    frame_bytes = channels * ((int.from_bytes(comm[6:8], "big") + 7) // 8)
    body, csize, head = ssnd
    start = body + 8 + int.from_bytes(head[0:4], "big")
    if frame_bytes <= 0:
        return None
    present = max(0, min(size, body + csize) - start)
    return FrameCounts(frames, min(frames, present // frame_bytes))


# ------------------------------------------------------------------------------------- FLAC

def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else crc << 1
        table.append(crc & mask)
    return table


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)


def _crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


def _flac_stream(f: BinaryIO, size: int) -> tuple[int, dict[str, int]] | None:
    """(offset of the first audio frame, STREAMINFO fields), skipping a leading ID3v2 tag."""
    start = 0
    head = f.read(10)
    if head[:3] == b"ID3":
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    f.seek(start)
    if f.read(4) != b"fLaC":
        return None
    pos, info = start + 4, None
    while pos + 4 <= size:
        f.seek(pos)
        block = f.read(4)
        length = int.from_bytes(block[1:4], "big")
        if block[0] & 0x7F == 0 and length >= 18:
            s = f.read(18)
            packed = int.from_bytes(s[10:18], "big")
            info = {"max_block": int.from_bytes(s[2:4], "big"),
                    "max_frame": int.from_bytes(s[7:10], "big"),
                    "channels": ((packed >> 41) & 0x7) + 1,
                    "total": packed & ((1 << 36) - 1)}
        pos += 4 + length
        if block[0] & 0x80:
            return (pos, info) if info is not None else None
    return None


def _utf8_number(data: bytes, i: int) -> tuple[int, int] | None:
    """FLAC's UTF-8-like coded frame/sample number at ``data[i:]``: (value, next index)."""
    first = data[i]
    if first < 0x80:
        return first, i + 1
    n = 0                                   # leading one bits = bytes in the code
    while n < 8 and first & (0x80 >> n):
        n += 1
    if not 2 <= n <= 7 or i + n > len(data):
        return None
    value = first & (0x7F >> n)
    for b in data[i + 1:i + n]:
        if b & 0xC0 != 0x80:
            return None
        value = (value << 6) | (b & 0x3F)
    return value, i + n


_BLOCK_SIZES = {1: 192, **{c: 576 << (c - 2) for c in range(2, 6)},
                **{c: 256 << (c - 8) for c in range(8, 16)}}


def _frame_header(data: bytes, i: int, info: dict[str, int]) -> tuple[int, int] | None:
    """(first sample, block size) of a valid frame header at ``data[i:]``, else None."""
    if i + 6 > len(data) or data[i] != 0xFF or data[i + 1] not in (0xF8, 0xF9):
        return None
    variable = data[i + 1] & 1
    bs_code, sr_code = data[i + 2] >> 4, data[i + 2] & 0xF
    chan, bps_code = data[i + 3] >> 4, (data[i + 3] >> 1) & 0x7
    if bs_code == 0 or sr_code == 0xF or chan > 10 or bps_code == 3 or data[i + 3] & 1:
        return None
    if (chan + 1 if chan < 8 else 2) != info["channels"]:
        return None
    coded = _utf8_number(data, i + 4)
    if coded is None:
        return None
    number, j = coded
    if bs_code in (6, 7):
        extra = bs_code - 5
        if j + extra > len(data):
            return None
        block = int.from_bytes(data[j:j + extra], "big") + 1
        j += extra
    else:
        block = _BLOCK_SIZES[bs_code]
    j += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if j >= len(data) or _crc8(data[i:j]) != data[j]:
        return None
    first = number if variable else number * info["max_block"]
    return first, block


def _flac_frames(f: BinaryIO, size: int) -> FrameCounts | None:
    stored = _flac_stored(f, size)
    return None if stored is None else FrameCounts(stored[0], stored[1])


def _flac_stored(f: BinaryIO, size: int) -> tuple[int, int] | None:
    """(STREAMINFO total samples, samples the complete frames hold)."""
    stream = _flac_stream(f, size)
    if stream is None:
        return None
    audio_start, info = stream
    total = info["total"]
    if not total or not info["max_block"]:
        return None                                   # length unknown to the header itself
    window = 2 * info["max_frame"] + 64 if info["max_frame"] else _FLAC_TAIL_BYTES
    begin = max(audio_start, size - window)
    f.seek(begin)
    data = f.read(max(0, size - begin))
    ends = [len(data)]
    if len(data) > _ID3V1_BYTES and data[-_ID3V1_BYTES:-_ID3V1_BYTES + 3] == b"TAG":
        ends.append(len(data) - _ID3V1_BYTES)
    frames = []                                 # (offset, first sample, block), from the end
    i = data.rfind(b"\xff")
    while i >= 0:
        header = _frame_header(data, i, info)
        if header is not None:
            first, block = header
            if first + block >= total and first < total:   # the final frame: complete?
                whole = any(end - i >= 8 and _crc16(data[i:end - 2]) == int.from_bytes(
                    data[end - 2:end], "big") for end in ends)
                return total, total if whole else first
            frames.append((i, first, block))
        i = data.rfind(b"\xff", 0, i)
    # no final frame: the file was cut. It holds up to the start of the last genuine frame, the
    # latest whose first sample continues an earlier one (a chance sync pattern does not)
    ends_at = {first + block for _, first, block in frames}
    for pos, first, _ in frames:
        if first < total and (first in ends_at or begin + pos == audio_start):
            return total, first
    return total, 0
