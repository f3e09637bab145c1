"""TABLE_MAP and the framing of row events (pre-GA, v1, v2, partial, MariaDB
compressed). Column values stay bytes here; ``binlogkit.codec.rowimage``
splits them into per-row images using the table map."""

from __future__ import annotations

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

# v2 rows "extra data" items (MySQL 5.6+): u8 type, then
#   0 (NDB info): u8 length (of the whole item payload incl. itself and the
#     format byte), u8 format, data;
#   1 (partition info): u16 partition id, and for UPDATE/PARTIAL_UPDATE the
#     u16 source partition id.
# The block is kept as raw bytes in ``extra``; see ``rowimage.extra_info``.


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
        "extra_len" / c.If(ph >= 10, c.Rebuild(Int16, lambda ctx: len(ctx.extra) + 2)),
        "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 10, 0)),
        "extra" / c.If(ph >= 10, BoundedBytes(lambda ctx: ctx.extra_len - 2)),
        "width" / Packed,
        "columns" / BoundedBytes(lambda ctx: (ctx.width + 7) // 8),
        "columns_after" / (
            BoundedBytes(lambda ctx: (ctx.width + 7) // 8) if two_bitmaps else c.Pass
        ),
        "rows" / c.GreedyBytes,
    )


Rows = _rows(two_bitmaps=False)
UpdateRows = _rows(two_bitmaps=True)
