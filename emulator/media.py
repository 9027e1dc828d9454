"""Small, real media files for emulated outputs: a PNG, a WAV, the start of an MP4."""

from __future__ import annotations

import hashlib
import struct
import zlib


def tiny_png(seed: str, size: int = 8) -> bytes:
    """A real, valid PNG of one colour derived from `seed`."""
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + bytes([r, g, b]) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tiny_wav(seed: str, samples: int = 800) -> bytes:
    """A real, valid WAV file: a short tone whose pitch comes from `seed`."""
    step = 1 + hashlib.sha256(seed.encode()).digest()[0] % 16
    data = bytes((128 + (i * step) % 64) for i in range(samples))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, 8000, 8000, 1, 8, b"data", len(data)
    )
    return header + data


def tiny_mp4(seed: str) -> bytes:
    """The first box of an MP4 file and some bytes: enough to be recognised as video/mp4."""
    return struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 512) + b"isomiso2" + hashlib.sha256(seed.encode()).digest()
