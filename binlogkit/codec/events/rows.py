"""TABLE_MAP and the framing of row events (pre-GA, v1, v2, partial, MariaDB
compressed). Column values stay bytes here; ``binlogkit.codec.rowimage``
splits them into per-row images using the table map."""

from __future__ import annotations

from typing import Any

import construct as c
from construct import this

from binlogkit.codec.primitives import (
    BoundedBytes,
    Int8,
    Int16,
    Int32,
    Int48,
    Maybe,
    Packed,
    PackedBytes,
    Whole,
)

ph = this._params.ph

# TABLE_MAP optional metadata (MySQL 8.0.1+, MariaDB 10.5+), one TLV each:
# u8 type, packed length, value.
#
# | type | name                          | value                                    |
# | ---- | ----------------------------- | ---------------------------------------- |
# | 1    | signedness                    | bitmap, one bit per numeric column       |
# | 2    | default_charset               | packed default, (packed col, packed cs)* |
# | 3    | column_charset                | packed collation per string column       |
# | 4    | column_name                   | (packed len, name)* per column           |
# | 5    | set_str_value                 | per SET column: packed n, n names        |
# | 6    | enum_str_value                | per ENUM column: packed n, n names       |
# | 7    | geometry_type                 | packed type per geometry column          |
# | 8    | simple_primary_key            | packed column index*                     |
# | 9    | primary_key_with_prefix       | (packed column, packed prefix length)*   |
# | 10   | enum_and_set_default_charset  | as default_charset                       |
# | 11   | enum_and_set_column_charset   | as column_charset                        |
# | 12   | column_visibility             | bitmap, one bit per column (1 visible)   |
# | 13   | vector_dimensionality         | packed dimension per VECTOR column       |
_DefaultCharset = c.Struct(
    "default" / Packed,
    "columns" / c.GreedyRange(c.Struct("column" / Packed, "collation" / Packed)),
)
_StrValues = c.GreedyRange(c.PrefixedArray(Packed, PackedBytes))

OPT_METADATA: dict[int, tuple[str, c.Construct]] = {
    1: ("signedness", c.GreedyBytes),
    2: ("default_charset", _DefaultCharset),
    3: ("column_charset", c.GreedyRange(Packed)),
    4: ("column_name", c.GreedyRange(PackedBytes)),
    5: ("set_str_value", _StrValues),
    6: ("enum_str_value", _StrValues),
    7: ("geometry_type", c.GreedyRange(Packed)),
    8: ("simple_primary_key", c.GreedyRange(Packed)),
    9: (
        "primary_key_with_prefix",
        c.GreedyRange(c.Struct("column" / Packed, "prefix" / Packed)),
    ),
    10: ("enum_and_set_default_charset", _DefaultCharset),
    11: ("enum_and_set_column_charset", c.GreedyRange(Packed)),
    12: ("column_visibility", c.GreedyBytes),
    13: ("vector_dimensionality", c.GreedyRange(Packed)),
}
OPT_METADATA_NAMES = {code: name for code, (name, _) in OPT_METADATA.items()}

OptionalMetadata = c.Struct(
    "type" / Int8,
    "value" / c.Prefixed(
        Packed,
        Whole(c.Switch(this.type, {k: v for k, (_, v) in OPT_METADATA.items()}, c.GreedyBytes)),
    ),
)

_table_id = c.IfThenElse(ph == 6, Int32, Int48)

# TABLE_MAP (19)
#
# | size     | field                                            |
# | -------- | ------------------------------------------------ |
# | 6 (4)    | table_id (4 bytes when the post-header is 6)     |
# | 2        | flags                                            |
# | 1+n+1    | db_len, db, NUL                                  |
# | 1+n+1    | table_len, table, NUL                            |
# | packed   | column_count                                     |
# | n        | column types, one byte each                      |
# | packed+n | metadata length, per-column type metadata        |
# |          | (with the null bitmap: absent before MySQL 5.1.18)|
# | (n+7)/8  | null bitmap                                      |
# | rest     | optional metadata TLVs                           |
TableMap = c.Struct(
    "table_id" / _table_id,
    "flags" / Int16,
    "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 8, 0)),
    "schema" / c.Prefixed(Int8, c.GreedyBytes),
    c.Const(b"\x00"),
    "table" / c.Prefixed(Int8, c.GreedyBytes),
    c.Const(b"\x00"),
    "column_count" / c.Rebuild(Packed, c.len_(this.column_types)),
    "column_types" / BoundedBytes(this.column_count),
    "metadata" / Maybe(PackedBytes),
    "null_bitmap" / c.If(
        this.metadata != None,  # noqa: E711 (a Construct expression)
        BoundedBytes(lambda ctx: (ctx.column_count + 7) // 8),
    ),
    "optional_metadata" / c.GreedyRange(OptionalMetadata),
    "rest" / c.GreedyBytes,
)

class RowsExtra(c.Construct):  # type: ignore[misc]
    """v2 rows "extra data" items (MySQL 5.6+), each a u8 type, then:

    | type | payload                                                      |
    | ---- | ------------------------------------------------------------ |
    | 0    | NDB info: u8 length (counts itself and format), u8 format,   |
    |      | length - 2 bytes of data                                     |
    | 1    | partition info: u16 partition id; UPDATE and PARTIAL_UPDATE  |
    |      | add the u16 source partition id                              |
    | else | unknown: the rest of the block, kept raw (MySQL skips it)    |

    An NDB item whose length does not fit is malformed (both servers' decoders
    reject the event).
    """

    def __init__(self, update: bool) -> None:
        super().__init__()
        self.update = update

    def _parse(self, stream: Any, context: Any, path: str) -> list[c.Container]:
        data = c.stream_read_entire(stream, path)
        items = []
        pos = 0
        while pos < len(data):
            kind = data[pos]
            if kind == 0:
                if pos + 2 >= len(data) + 1 or pos + 1 >= len(data):
                    raise c.ConstructError(f"{path}: NDB extra info without its length")
                n = data[pos + 1]
                if n < 2 or pos + 1 + n > len(data):
                    raise c.ConstructError(f"{path}: NDB extra info length {n} does not fit")
                items.append(c.Container(type=0, format=data[pos + 2],
                                         data=data[pos + 3 : pos + 1 + n]))
                pos += 1 + n
            elif kind == 1 and pos + (5 if self.update else 3) <= len(data):
                pid = int.from_bytes(data[pos + 1 : pos + 3], "little")
                src = (int.from_bytes(data[pos + 3 : pos + 5], "little")
                       if self.update else None)
                items.append(c.Container(type=1, partition_id=pid, source_partition_id=src))
                pos += 5 if self.update else 3
            else:
                items.append(c.Container(type=kind, raw=data[pos + 1 :]))
                pos = len(data)
        return items

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        out = bytearray()
        for item in obj:
            out.append(item["type"])
            if item["type"] == 0:
                out += bytes((len(item["data"]) + 2, item["format"])) + bytes(item["data"])
            elif item["type"] == 1 and "partition_id" in item:
                out += item["partition_id"].to_bytes(2, "little")
                if item.get("source_partition_id") is not None:
                    out += item["source_partition_id"].to_bytes(2, "little")
            else:
                out += bytes(item["raw"])
        c.stream_write(stream, bytes(out), len(out), path)
        return obj


def _extra_len(ctx: Any) -> int:
    return len(RowsExtra(False).build(ctx.extra)) + 2


def _rows(two_bitmaps: bool) -> c.Struct:
    """Row event framing.

    | size    | field                                                 |
    | ------- | ----------------------------------------------------- |
    | 6 (4)   | table_id (4 bytes when the post-header is 6)          |
    | 2       | flags (1 STMT_END, 2 NO_FOREIGN_KEY_CHECKS,           |
    |         | 4 RELAXED_UNIQUE_CHECKS, 8 COMPLETE_ROWS)             |
    | 2+n     | v2 only (post-header 10): extra_len (counts itself),  |
    |         | extra data                                            |
    | packed  | width (number of columns of the table)                |
    | (w+7)/8 | columns present in the (before) image                 |
    | (w+7)/8 | columns present in the after image (UPDATE only)      |
    | rest    | row images; MariaDB compressed events: compressed     |
    """
    return c.Struct(
        "table_id" / _table_id,
        "flags" / Int16,
        "extra_len" / c.If(ph >= 10, c.Rebuild(Int16, _extra_len)),
        "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 10, 0)),
        "extra" / c.If(
            ph >= 10, c.FixedSized(lambda ctx: max(ctx.extra_len - 2, 0), RowsExtra(two_bitmaps))
        ),
        "width" / Packed,
        "columns" / BoundedBytes(lambda ctx: (ctx.width + 7) // 8),
        "columns_after" / (
            BoundedBytes(lambda ctx: (ctx.width + 7) // 8) if two_bitmaps else c.Pass
        ),
        "rows" / c.GreedyBytes,
    )


Rows = _rows(two_bitmaps=False)
UpdateRows = _rows(two_bitmaps=True)


def parse_rows_common(body: bytes, ph: int, two_bitmaps: bool) -> c.Container | None:
    """What ``Rows`` / ``UpdateRows`` parse to, for the shapes nearly every
    row event has (no extra data items, fewer than 251 columns), without
    Construct's per-field overhead; None for anything else (use the spec).
    tests/test_row_codec.py checks that both agree on every corpus event."""
    if ph not in (6, 8, 10):
        return None
    n = len(body)
    pos = 4 if ph == 6 else 6
    if n < pos + 3:
        return None
    table_id = int.from_bytes(body[:pos], "little")
    flags = body[pos] | body[pos + 1] << 8
    pos += 2
    extra_len = extra = None
    if ph == 10:
        extra_len = body[pos] | body[pos + 1] << 8
        if extra_len != 2:
            return None
        extra = c.ListContainer()
        pos += 2
    if pos >= n or body[pos] >= 251:
        return None
    width = body[pos]
    nb = (width + 7) // 8
    pos += 1
    if pos + nb * (2 if two_bitmaps else 1) > n:
        return None
    columns = body[pos : pos + nb]
    pos += nb
    after = None
    if two_bitmaps:
        after = body[pos : pos + nb]
        pos += nb
    return c.Container(table_id=table_id, flags=flags, extra_len=extra_len, post_extra=b"",
                       extra=extra, width=width, columns=columns, columns_after=after,
                       rows=body[pos:])
