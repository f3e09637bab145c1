"""Frame row events into row images, using the event's TABLE_MAP.

A row image is: a null bitmap (one bit per column present in the image),
then the value of every present, non-NULL column. How long a value is
depends on the column type and its table-map metadata, so framing needs the
table map; the values themselves stay bytes here.

| column type (code)                 | metadata  | stored size                        |
| ---------------------------------- | --------- | ---------------------------------- |
| TINY 1, YEAR 13                    | -         | 1                                  |
| SHORT 2                            | -         | 2                                  |
| INT24 9, DATE 10, NEWDATE 14, TIME 11 | -      | 3                                  |
| LONG 3, TIMESTAMP 7                | -         | 4                                  |
| LONGLONG 8, DATETIME 12            | -         | 8                                  |
| FLOAT 4, DOUBLE 5                  | 1 (size)  | meta                               |
| NULL 6                             | -         | 0                                  |
| TIMESTAMP2 17 / DATETIME2 18 / TIME2 19 | 1 (fsp) | 4 / 5 / 3 + (fsp + 1) // 2        |
| VARCHAR 15, VAR_STRING 253         | 2 (max)   | 1- or 2-byte length + data         |
| BIT 16                             | 2         | meta[1] + (1 if meta[0] else 0)    |
| NEWDECIMAL 246                     | 2 (p, s)  | binary decimal size                |
| STRING 254 (ENUM, SET, CHAR)       | 2         | ENUM/SET: meta[1]; CHAR: length    |
| BLOB 252, GEOMETRY 255, JSON 245, VECTOR 242 | 1 (n) | n-byte length + data          |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from binlogkit.codec.compression import mariadb_decompress
from binlogkit.codec.primitives import decode_packed
from binlogkit.codec.temporal import decimal_size
from binlogkit.codec.types import COMPRESSED_ROWS, TWO_BITMAPS, UPDATE_ROWS, EventType

META_SIZE = {4: 1, 5: 1, 15: 2, 16: 2, 17: 1, 18: 1, 19: 1, 242: 1, 245: 1, 246: 2,
             247: 2, 248: 2, 252: 1, 253: 2, 254: 2, 255: 1}
FIXED_SIZE = {1: 1, 2: 2, 3: 4, 6: 0, 7: 4, 8: 8, 9: 3, 10: 3, 11: 3, 12: 8, 13: 1, 14: 3}
JSON_TYPE = 245
ENUM_TYPE, SET_TYPE = 247, 248
PARTIAL_JSON_UPDATES = 1


class RowFramingError(ValueError):
    """Row data that does not fit the table map."""


def column_metadata(types: bytes, metadata: bytes) -> list[int]:
    """Per-column metadata values from the TABLE_MAP metadata block.

    Two-byte metadata is returned as ``first << 8 | second`` for STRING,
    ENUM, SET, NEWDECIMAL and BIT, and as little-endian u16 for VARCHAR.
    """
    out = []
    pos = 0
    for t in types:
        n = META_SIZE.get(t, 0)
        if pos + n > len(metadata):
            raise RowFramingError("table map metadata shorter than its column types need")
        if n == 0:
            out.append(0)
        elif n == 1:
            out.append(metadata[pos])
        elif t in (15, 253):
            out.append(metadata[pos] | metadata[pos + 1] << 8)
        else:
            out.append(metadata[pos] << 8 | metadata[pos + 1])
        pos += n
    return out


def _length_prefixed(width: int) -> Callable[[bytes, int], int]:
    def size(data: bytes, pos: int) -> int:
        if pos + width > len(data):
            raise RowFramingError("length prefix runs past the row data")
        return width + int.from_bytes(data[pos : pos + width], "little")

    return size


def _fixed(n: int) -> Callable[[bytes, int], int]:
    return lambda data, pos: n


def sizer(col_type: int, meta: int) -> Callable[[bytes, int], int]:
    """A function giving the stored size of a value of this column at ``pos``."""
    if col_type in FIXED_SIZE:
        return _fixed(FIXED_SIZE[col_type])
    if col_type in (4, 5):
        return _fixed(meta)
    if col_type == 17:
        return _fixed(4 + (meta + 1) // 2)
    if col_type == 18:
        return _fixed(5 + (meta + 1) // 2)
    if col_type == 19:
        return _fixed(3 + (meta + 1) // 2)
    if col_type in (15, 253):
        return _length_prefixed(1 if meta < 256 else 2)
    if col_type == 16:
        return _fixed((meta & 0xFF) + (1 if meta >> 8 else 0))
    if col_type == 246:
        return _fixed(decimal_size(meta >> 8, meta & 0xFF))
    if col_type in (ENUM_TYPE, SET_TYPE):
        return _fixed(meta & 0xFF)
    if col_type == 254:
        byte0, byte1 = meta >> 8, meta & 0xFF
        if byte0 & 0x30 != 0x30:
            real_type = byte0 | 0x30
            max_len = byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
        else:
            real_type, max_len = byte0, byte1
        if real_type in (ENUM_TYPE, SET_TYPE):
            return _fixed(byte1)
        return _length_prefixed(1 if max_len < 256 else 2)
    if col_type in (242, 245, 252, 255):
        return _length_prefixed(meta)
    raise RowFramingError(f"column type {col_type} has no known row format")


@dataclass(frozen=True, slots=True)
class TableLayout:
    """What framing needs from a TABLE_MAP: per-column type, metadata, sizer."""

    types: bytes
    meta: tuple[int, ...]
    sizers: tuple[Callable[[bytes, int], int], ...]

    @classmethod
    def from_table_map(cls, body: Any) -> TableLayout:
        types = bytes(body.column_types)
        meta = column_metadata(types, bytes(body.metadata or b""))
        return cls(types, tuple(meta), tuple(sizer(t, m) for t, m in zip(types, meta, strict=True)))


@dataclass(slots=True)
class Image:
    """One row image: column index (0-based) -> raw value bytes, or None for NULL.

    ``partial`` holds the columns whose value is a partial-JSON diff.
    """

    values: dict[int, bytes | None]
    partial: frozenset[int] = frozenset()


@dataclass(slots=True)
class RowChange:
    before: Image | None
    after: Image | None


def present(bitmap: bytes, width: int) -> list[int]:
    """Column indexes whose bit is set in a row event's column bitmap."""
    return [i for i in range(width) if bitmap[i >> 3] >> (i & 7) & 1]


def _image(
    data: bytes, pos: int, cols: list[int], layout: TableLayout, partial: frozenset[int]
) -> tuple[Image, int]:
    """Frame one image at ``pos``. PARTIAL_UPDATE_ROWS after images are
    preceded (by the caller) with packed value_options and, when bit 0 is
    set, a bitmap with one bit per JSON column of the after image telling
    which hold a partial-JSON diff instead of a whole document."""
    nbytes = (len(cols) + 7) // 8
    if pos + nbytes > len(data):
        raise RowFramingError(f"null bitmap runs past the row data at {pos}")
    nulls = data[pos : pos + nbytes]
    pos += nbytes
    values: dict[int, bytes | None] = {}
    for k, col in enumerate(cols):
        if nulls[k >> 3] >> (k & 7) & 1:
            values[col] = None
            continue
        if col >= len(layout.sizers):
            raise RowFramingError(f"column {col + 1} is not in the table map")
        size = layout.sizers[col](data, pos)  # a partial-JSON diff is length-prefixed too
        if pos + size > len(data):
            raise RowFramingError(f"column {col + 1} value runs past the row data")
        values[col] = data[pos : pos + size]
        pos += size
    return Image(values, partial), pos


def rows_data(ev_type: int, body: Any) -> bytes:
    """The (decompressed) row images of a row event."""
    data = bytes(body.rows)
    if ev_type in COMPRESSED_ROWS:
        data = mariadb_decompress(data)
    return data


def split_rows(ev_type: int, body: Any, layout: TableLayout) -> list[RowChange]:
    """Split a row event's data into row changes of raw column values."""
    data = rows_data(ev_type, body)
    width = body.width
    before_cols = present(bytes(body.columns), width)
    # pre-GA UPDATE has one bitmap for both images
    after_cols = (present(bytes(body.columns_after), width) if ev_type in TWO_BITMAPS
                  else before_cols)
    json_after = [c for c in after_cols if c < len(layout.types) and layout.types[c] == JSON_TYPE]
    is_write = ev_type in (20, 23, 30, 166, 169)
    out: list[RowChange] = []
    pos = 0
    while pos < len(data):
        if ev_type in UPDATE_ROWS:
            before, pos = _image(data, pos, before_cols, layout, frozenset())
            partial: frozenset[int] = frozenset()
            if ev_type == EventType.PARTIAL_UPDATE_ROWS:
                options, pos = decode_packed(data, pos)
                if options and options & PARTIAL_JSON_UPDATES:
                    nbytes = (len(json_after) + 7) // 8
                    bits = data[pos : pos + nbytes]
                    pos += nbytes
                    partial = frozenset(
                        c for k, c in enumerate(json_after) if bits[k >> 3] >> (k & 7) & 1
                    )
            after, pos = _image(data, pos, after_cols, layout, partial)
            out.append(RowChange(before, after))
        else:
            image, pos = _image(data, pos, before_cols, layout, frozenset())
            out.append(RowChange(None, image) if is_write else RowChange(image, None))
    return out
