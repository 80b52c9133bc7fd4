"""Audio recordings: metadata (format, duration, size, SHA-256) read from the file header.

Supported containers: WAV (RIFF/WAVE, PCM or not: duration from the ``fmt`` byte rate and
the ``data`` chunk size) and FLAC (STREAMINFO: sample rate and total samples). The file is
read once, in chunks, for its checksum; nothing is decoded.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.wearables.contracts import ParseError

CHUNK = 1 << 20


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
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            fmt, duration, rate, channels = "wav", *_wav(fh, size)
        elif head[:4] == b"fLaC":
            fmt, duration, rate, channels = "flac", *_flac(fh)
        else:
            raise ParseError(
                "byte 0", f"unsupported audio format (magic {head[:4]!r}; expected WAV or FLAC)"
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


def _flac(fh: BinaryIO) -> tuple[float, int, int]:
    fh.seek(4)
    header = fh.read(4)
    if len(header) < 4 or header[0] & 0x7F != 0:
        raise ParseError("byte 4", "FLAC must start with a STREAMINFO block")
    info = fh.read(34)
    if len(info) < 34:
        raise ParseError("byte 8", "FLAC STREAMINFO is truncated")
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total_samples = packed & ((1 << 36) - 1)
    if rate == 0:
        raise ParseError("STREAMINFO.sample_rate", "FLAC sample rate is 0")
    return total_samples / rate, rate, channels
