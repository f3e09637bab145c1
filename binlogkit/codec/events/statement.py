"""Statement events: QUERY and its status variables, INTVAR, RAND, USER_VAR,
ROWS_QUERY / ANNOTATE_ROWS, and the LOAD DATA family.

Specs read ``this._params.ph``, the post-header length the FDE gives for the
event type, so one spec covers the v1/v3 and v4 layouts.
"""

from __future__ import annotations

import construct as c
from construct import this

from binlogkit.codec.primitives import (
    BoundedBytes,
    Int8,
    Int16,
    Int24,
    Int32,
    Int64,
    Maybe,
)

ph = this._params.ph

# QUERY status variables: code byte, then a value whose layout the code fixes.
# Unknown codes end the parse; the remaining bytes are kept raw.
#
# | code | name                          | value                                  |
# | ---- | ----------------------------- | -------------------------------------- |
# | 0    | flags2                        | u32                                    |
# | 1    | sql_mode                      | u64                                    |
# | 2    | catalog (5.0.0-5.0.3)         | u8 len, bytes, NUL                     |
# | 3    | auto_increment                | u16 increment, u16 offset              |
# | 4    | charset                       | u16 client, u16 connection, u16 server |
# | 5    | time_zone                     | u8 len, bytes                          |
# | 6    | catalog_nz                    | u8 len, bytes                          |
# | 7    | lc_time_names                 | u16                                    |
# | 8    | charset_database              | u16                                    |
# | 9    | table_map_for_update          | u64                                    |
# | 10   | master_data_written           | u32                                    |
# | 11   | invoker                       | u8 len user, u8 len host               |
# | 12   | updated_db_names              | u8 count (254: too many), NUL strings  |
# | 13   | microseconds                  | u24                                    |
# | 14   | commit_ts (never written)     | --                                     |
# | 15   | commit_ts2 (never written)    | --                                     |
# | 16   | explicit_defaults_for_timestamp | u8                                   |
# | 17   | ddl_logged_with_xid           | u64                                    |
# | 18   | default_collation_for_utf8mb4 | u16                                    |
# | 19   | sql_require_primary_key       | u8                                     |
# | 20   | default_table_encryption      | u8                                     |
# | 21   | enable_cascade_triggers (9.x) | u8                                     |
# | 128  | hrnow (MariaDB)               | u24 microseconds                       |
# | 129  | xid (MariaDB)                 | u64                                    |
# | 130  | gtid_flags3 (MariaDB)         | u8 flags, u64 sa_seq_no if flags & 0x0c |
# | 131  | character_set_collations (MariaDB 11.2+) | u8 count, count x (u16, u16) |

_Text8 = c.Prefixed(Int8, c.GreedyBytes)
OVER_MAX_DBS = 254

STATUS_VARS: dict[int, tuple[str, c.Construct]] = {
    0: ("flags2", Int32),
    1: ("sql_mode", Int64),
    2: ("catalog", c.Struct("name" / _Text8, c.Const(b"\x00"))),
    3: ("auto_increment", c.Struct("increment" / Int16, "offset" / Int16)),
    4: ("charset", c.Struct("client" / Int16, "connection" / Int16, "server" / Int16)),
    5: ("time_zone", _Text8),
    6: ("catalog_nz", _Text8),
    7: ("lc_time_names", Int16),
    8: ("charset_database", Int16),
    9: ("table_map_for_update", Int64),
    10: ("master_data_written", Int32),
    11: ("invoker", c.Struct("user" / _Text8, "host" / _Text8)),
    12: (
        "updated_db_names",
        c.Struct(
            "count" / c.Rebuild(
                Int8, lambda ctx: OVER_MAX_DBS if ctx.names is None else len(ctx.names)
            ),
            "names" / c.If(this.count != OVER_MAX_DBS, c.Array(this.count, c.CString("utf8"))),
        ),
    ),
    13: ("microseconds", Int24),
    16: ("explicit_defaults_for_timestamp", Int8),
    17: ("ddl_logged_with_xid", Int64),
    18: ("default_collation_for_utf8mb4", Int16),
    19: ("sql_require_primary_key", Int8),
    20: ("default_table_encryption", Int8),
    21: ("enable_cascade_triggers", Int8),
    128: ("hrnow", Int24),
    129: ("xid", Int64),
    130: (
        "gtid_flags3",
        c.Struct("flags" / Int8, "sa_seq_no" / c.If(this.flags & 0x0C, Int64)),
    ),
    131: (
        "character_set_collations",
        c.PrefixedArray(Int8, c.Struct("charset" / Int16, "collation" / Int16)),
    ),
}
STATUS_VAR_NAMES = {code: name for code, (name, _) in STATUS_VARS.items()}

StatusVar = c.Struct(
    "code" / Int8,
    "value" / c.Switch(this.code, {k: v for k, (_, v) in STATUS_VARS.items()}, c.GreedyBytes),
)

StatusVars = c.Struct(
    "vars" / c.GreedyRange(StatusVar),
    "rest" / c.GreedyBytes,
)


def _query_post(extra: list[c.Construct], known: int) -> list[c.Construct]:
    """QUERY post-header fields (v3: 11 bytes; v4: 13 with status_vars_len)."""
    return [
        "thread_id" / Int32,
        "exec_time" / Int32,
        "db_len" / c.Rebuild(Int8, c.len_(this.db)),
        "error_code" / Int16,
        "status_vars_len" / c.If(ph >= 13, Int16),
        *extra,
        "post_extra" / BoundedBytes(
            lambda ctx: max(ctx._params.ph - (known if ctx._params.ph >= 13 else 11), 0)
        ),
    ]


_query_tail = [
    "status_vars" / c.If(ph >= 13, c.FixedSized(this.status_vars_len, StatusVars)),
    "db" / BoundedBytes(this.db_len),
    c.Const(b"\x00"),
    "query" / c.GreedyBytes,
]

# QUERY (2) and QUERY_COMPRESSED (165: ``query`` holds the compressed text)
#
# | offset | size | field                                   |
# | ------ | ---- | --------------------------------------- |
# | 0      | 4    | thread_id                               |
# | 4      | 4    | exec_time (seconds)                     |
# | 8      | 1    | db_len                                  |
# | 9      | 2    | error_code                              |
# | 11     | 2    | status_vars_len (v4 only)               |
# | ph     | n    | status variables, then db, NUL, query   |
Query = c.Struct(*_query_post([], 13), *_query_tail)

# EXECUTE_LOAD_QUERY (18): QUERY post-header + 13 bytes, post-header 26.
ExecuteLoadQuery = c.Struct(
    *_query_post(
        [
            "file_id" / Int32,
            "fn_pos_start" / Int32,
            "fn_pos_end" / Int32,
            "dup_handling" / Int8,
        ],
        26,
    ),
    *_query_tail,
)

# INTVAR (5): u8 type (1 LAST_INSERT_ID, 2 INSERT_ID), u64 value.
Intvar = c.Struct("subtype" / Int8, "value" / Int64, "rest" / c.GreedyBytes)

# RAND (13): two u64 seeds.
Rand = c.Struct("seed1" / Int64, "seed2" / Int64, "rest" / c.GreedyBytes)

# USER_VAR (14)
#
# | size | field                                                     |
# | ---- | --------------------------------------------------------- |
# | 4    | name_len, then name                                       |
# | 1    | is_null; when 0:                                          |
# | 1    | value_type (0 STRING, 1 REAL, 2 INT, 3 ROW, 4 DECIMAL)    |
# | 4    | charset (collation number)                                |
# | 4    | value_len, then value (REAL: f64, INT: i64, DECIMAL: u8   |
# |      | precision, u8 scale, binary decimal; STRING: bytes)       |
# | 1    | flags (optional; bit 0 UNSIGNED), then anything newer    |
UserVar = c.Struct(
    "name_len" / c.Rebuild(Int32, c.len_(this.name)),
    "name" / BoundedBytes(this.name_len),
    "is_null" / Int8,
    "value_type" / c.If(this.is_null == 0, Int8),
    "charset" / c.If(this.is_null == 0, Int32),
    "value_len" / c.If(this.is_null == 0, c.Rebuild(Int32, c.len_(this.value))),
    "value" / c.If(this.is_null == 0, BoundedBytes(this.value_len)),
    "flags" / Maybe(Int8),
    "rest" / c.GreedyBytes,
)

# ROWS_QUERY (29): u8 length (truncated to 8 bits by the server), query text.
RowsQuery = c.Struct("length" / Int8, "query" / c.GreedyBytes)

# ANNOTATE_ROWS (160): the query text, nothing else.
AnnotateRows = c.Struct("query" / c.GreedyBytes)

# LOAD (6), NEW_LOAD (12), CREATE_FILE (8)
#
# | size | field                                                       |
# | ---- | ----------------------------------------------------------- |
# | 4    | thread_id                                                   |
# | 4    | exec_time                                                   |
# | 4    | skip_lines                                                  |
# | 1    | table_name_len                                              |
# | 1    | db_len                                                      |
# | 4    | num_fields                                                  |
# | 4    | file_id (CREATE_FILE only, its own post-header)             |
# | *    | sql_ex: LOAD: 5 single bytes + opt_flags + empty_flags;     |
# |      | others: 5 x (u8 len, bytes) + opt_flags                     |
# | n    | field name lengths (1 byte each), names (NUL-terminated)    |
# | *    | table name NUL, db NUL, file name (CREATE_FILE: NUL, block) |
_SqlExOld = c.Struct(
    "field_term" / c.Bytes(1),
    "enclosed" / c.Bytes(1),
    "line_term" / c.Bytes(1),
    "line_start" / c.Bytes(1),
    "escaped" / c.Bytes(1),
    "opt_flags" / Int8,
    "empty_flags" / Int8,
)
_SqlExNew = c.Struct(
    "field_term" / _Text8,
    "enclosed" / _Text8,
    "line_term" / _Text8,
    "line_start" / _Text8,
    "escaped" / _Text8,
    "opt_flags" / Int8,
)


def _load(new_sql_ex: bool, create_file: bool) -> c.Struct:
    return c.Struct(
        "thread_id" / Int32,
        "exec_time" / Int32,
        "skip_lines" / Int32,
        "table_name_len" / c.Rebuild(Int8, c.len_(this.table)),
        "db_len" / c.Rebuild(Int8, c.len_(this.db)),
        "num_fields" / c.Rebuild(Int32, c.len_(this.field_lens)),
        "file_id" / (Int32 if create_file else c.Pass),
        "sql_ex" / (_SqlExNew if new_sql_ex else _SqlExOld),
        "field_lens" / c.Array(this.num_fields, Int8),
        "fields" / c.Array(this.num_fields, c.NullTerminated(c.GreedyBytes)),
        "table" / BoundedBytes(this.table_name_len),
        c.Const(b"\x00"),
        "db" / BoundedBytes(this.db_len),
        c.Const(b"\x00"),
        "file_name" / (c.NullTerminated(c.GreedyBytes) if create_file else c.GreedyBytes),
        "block" / (c.GreedyBytes if create_file else c.Pass),
    )


Load = _load(new_sql_ex=False, create_file=False)
NewLoad = _load(new_sql_ex=True, create_file=False)
CreateFile = _load(new_sql_ex=True, create_file=True)

# APPEND_BLOCK (9), BEGIN_LOAD_QUERY (17): u32 file_id, data block.
Block = c.Struct("file_id" / Int32, "block" / c.GreedyBytes)
# EXEC_LOAD (10), DELETE_FILE (11): u32 file_id.
FileId = c.Struct("file_id" / Int32, "rest" / c.GreedyBytes)
