"""Audio recordings: metadata (format, duration, size, SHA-256) read from the file header.

Supported containers: WAV (RIFF/WAVE, PCM or not: duration from the ``fmt`` byte rate and
the ``data`` chunk size) and FLAC (STREAMINFO: sample rate and total samples). The file is
read once, in chunks, for its checksum; nothing is decoded.

FLAC (RFC 9639) may come behind an ID3v2 tag, as taggers write it: a 10-byte header
("ID3", version, flags, size as 4 syncsafe bytes of 7 bits), plus a 10-byte footer when
flag bit 4 is set; the tag is skipped. Since STREAMINFO only claims a duration, the
metadata blocks are walked to where the frames start, and the file must hold a frame
there (sync code 0xFFF8/0xFFF9) and enough bytes for the claimed samples: at least
``ceil(total / max block size)`` frames of ``max(STREAMINFO's minimum frame size, 10)``
bytes. A cut-off upload is refused instead of reporting the full length.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.wearables.contracts import ParseError

CHUNK = 1 << 20
ID3_HEADER = 10
MIN_FLAC_FRAME = 10  # bytes: frame header (6), two 1-byte subframes, CRC-16 (FFmpeg's bound)


@dataclass(frozen=True)
class AudioMetadata:
    format: str  # "wav" | "flac"
    duration_s: float
    size_bytes: int
    sha256: str
    sample_rate: int
    channels: int


def audio_metadata(path: Path) -> AudioMetadata:
    """Metadata of the recording at ``path``; :class:`ParseError` says which header field."""
    size = path.stat().st_size
    if size < 12:
        raise ParseError("byte 0", f"file of {size} bytes is too short to be WAV or FLAC")
    with path.open("rb") as fh:
        head = fh.read(12)
        fh.seek(0)
        start = _id3_size(head) if head[:3] == b"ID3" else 0
        if start:
            fh.seek(start)
            head = fh.read(4)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            fmt, duration, rate, channels = "wav", *_wav(fh, size)
        elif head[:4] == b"fLaC":
            fmt, duration, rate, channels = "flac", *_flac(fh, start, size)
        else:
            behind = f" behind a {start}-byte ID3 tag" if start else ""
            raise ParseError(
                f"byte {start}",
                f"unsupported audio format (magic {head[:4]!r}{behind}; expected WAV or FLAC)",
            )
        fh.seek(0)
        digest = hashlib.sha256()
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return AudioMetadata(fmt, duration, size, digest.hexdigest(), rate, channels)


def _wav(fh: BinaryIO, size: int) -> tuple[float, int, int]:
    fh.seek(12)
    byte_rate = rate = channels = None
    while True:
        position = fh.tell()
        header = fh.read(8)
        if len(header) < 8:
            raise ParseError(f"byte {position}", "WAV has no data chunk")
        chunk_id, chunk_size = struct.unpack("<4sI", header)
        if chunk_id == b"fmt ":
            body = fh.read(16)
            if len(body) < 16:
                raise ParseError(f"byte {position}", "WAV fmt chunk is truncated")
            _tag, channels, rate, byte_rate = struct.unpack("<HHII", body[:12])
            fh.seek(position + 8 + chunk_size + (chunk_size & 1))
        elif chunk_id == b"data":
            if byte_rate is None or rate is None or channels is None:
                raise ParseError(f"byte {position}", "WAV data chunk comes before its fmt chunk")
            if byte_rate == 0:
                raise ParseError("fmt.byte_rate", "WAV byte rate is 0")
            available = min(chunk_size, size - position - 8)
            return available / byte_rate, rate, channels
        else:
            fh.seek(position + 8 + chunk_size + (chunk_size & 1))


def _id3_size(head: bytes) -> int:
    """Bytes of the ID3v2 tag that starts ``head`` (header, body, footer)."""
    if len(head) < ID3_HEADER or any(b & 0x80 for b in head[6:10]):
        raise ParseError("byte 6", "ID3v2 tag size is not 4 syncsafe bytes")
    body = 0
    for byte in head[6:10]:
        body = body << 7 | byte
    footer = ID3_HEADER if head[5] & 0x10 else 0
    return ID3_HEADER + body + footer


def _flac(fh: BinaryIO, start: int, size: int) -> tuple[float, int, int]:
    fh.seek(start + 4)
    header = fh.read(4)
    if len(header) < 4 or header[0] & 0x7F != 0:
        raise ParseError(f"byte {start + 4}", "FLAC must start with a STREAMINFO block")
    info = fh.read(34)
    if len(info) < 34:
        raise ParseError(f"byte {start + 8}", "FLAC STREAMINFO is truncated")
    max_block = int.from_bytes(info[2:4], "big")
    min_frame = int.from_bytes(info[4:7], "big")
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total_samples = packed & ((1 << 36) - 1)
    if rate == 0:
        raise ParseError("STREAMINFO.sample_rate", "FLAC sample rate is 0")
    duration = total_samples / rate
    frames = _flac_frames_start(fh, start + 4, header, size)
    if fh.read(2) not in (b"\xff\xf8", b"\xff\xf9"):
        raise ParseError(
            f"byte {frames}",
            f"FLAC has no audio frame after its metadata: the file is truncated "
            f"(STREAMINFO says {duration:g} s)",
        )
    if total_samples and max_block:
        needed = -(-total_samples // max_block) * max(min_frame, MIN_FLAC_FRAME)
        if size - frames < needed:
            raise ParseError(
                f"byte {size}",
                f"FLAC is truncated: STREAMINFO says {duration:g} s, which takes at least "
                f"{needed} bytes of frames, but only {size - frames} follow the metadata",
            )
    return duration, rate, channels


def _flac_frames_start(fh: BinaryIO, position: int, header: bytes, size: int) -> int:
    """Walk the metadata blocks from the first one's ``header``; the offset of the frames."""
    while True:
        length = int.from_bytes(header[1:4], "big")
        position += 4 + length
        if position > size:
            raise ParseError(f"byte {size}", "FLAC is truncated inside its metadata blocks")
        if header[0] & 0x80:  # last-metadata-block flag
            fh.seek(position)
            return position
        fh.seek(position)
        header = fh.read(4)
        if len(header) < 4:
            raise ParseError(f"byte {position}", "FLAC is truncated inside its metadata blocks")
