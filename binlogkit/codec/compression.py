"""Compressed payloads: MariaDB's zlib blocks (QUERY_COMPRESSED, compressed
rows) and MySQL's zstd transaction payloads.

MariaDB block layout (sql/log_event.cc, binlog_buf_compress):

| size | field                                                      |
| ---- | ---------------------------------------------------------- |
| 1    | 0x80 | algorithm << 4 (0 = zlib) | n (bytes of the length) |
| n    | uncompressed length, big-endian                            |
| rest | zlib stream                                                |
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

MAX_INFLATE = 1 << 30  # refuse to inflate a MariaDB block past 1 GiB


class CompressionError(ValueError):
    """A compressed block that cannot be inflated as declared."""


def mariadb_uncompressed_len(block: bytes) -> int:
    if not block:
        raise CompressionError("empty compressed block")
    head = block[0]
    lenlen = head & 0x07
    if not head & 0x80 or lenlen == 0 or lenlen > 4 or (head >> 4) & 0x07:
        raise CompressionError(f"compressed block header 0x{head:02x} is not zlib")
    if len(block) < 1 + lenlen:
        raise CompressionError("compressed block shorter than its header")
    return int.from_bytes(block[1 : 1 + lenlen], "big")


def mariadb_decompress(block: bytes) -> bytes:
    """Inflate a MariaDB compressed block, checking the declared length."""
    size = mariadb_uncompressed_len(block)
    if size > MAX_INFLATE:
        raise CompressionError(f"declared uncompressed length {size} is too large")
    lenlen = block[0] & 0x07
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(block[1 + lenlen :], size + 1)
    except zlib.error as exc:
        raise CompressionError(f"zlib: {exc}") from exc
    if len(out) != size:
        raise CompressionError(f"inflated to {len(out)} bytes, header says {size}")
    return out


def mariadb_compress(data: bytes) -> bytes:
    """A MariaDB compressed block holding ``data`` (as the server writes it)."""
    n = len(data)
    lenlen = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 3 if n < 1 << 24 else 4
    return bytes((0x80 | lenlen,)) + n.to_bytes(lenlen, "big") + zlib.compress(data)


ZSTD = 0
NONE = 255


def zstd_stream(payload: bytes) -> BinaryIO:
    """A file-like object reading the decompressed zstd payload incrementally."""
    import io

    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload), read_across_frames=True)


def zstd_compress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def read_exact(stream: BinaryIO, n: int) -> Iterator[bytes]:
    """Yield chunks until ``n`` bytes are read (fewer if the stream ends)."""
    left = n
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk
