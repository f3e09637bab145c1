"""MySQL binary JSON: differential tests against a live MySQL, properties, malformed input."""

from __future__ import annotations

import json
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binlogkit.codec.jsonb import (
    JSON_INSERT,
    JSON_REMOVE,
    JSON_REPLACE,
    Json,
    JsonDiff,
    JsonError,
    JsonOpaque,
    JsonUInt,
    apply_json_diffs,
    decode_json,
    decode_json_diffs,
    encode_json,
    encode_json_diffs,
    json_path,
    json_text,
)
from binlogkit.codec.rowimage import RowChange, TableLayout, split_rows
from binlogkit.io.reader import BinlogReader
from binlogkit.lab import Server

DB = "jsonb_test"
ROW_EVENTS = (23, 24, 25, 30, 31, 32, 39)
PARTIAL_UPDATE_ROWS = 39


def _raw(value: bytes | None) -> bytes:
    """A JSON column's value without its 4-byte length."""
    assert value is not None and len(value) >= 4
    n = int.from_bytes(value[:4], "little")
    assert len(value) == 4 + n
    return value[4:]


def run_and_capture(srv: Server, table: str, stmts: list[str],
                    session: tuple[str, ...] = ()) -> list[tuple[int, RowChange]]:
    """Run ``stmts`` on one connection and return the row changes the binlog got
    for ``DB.table`` (event type, change)."""
    before = set(srv.binlog_files())
    srv.flush_logs()
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            for s in (*session, *stmts):
                cur.execute(s)
    finally:
        conn.close()
    srv.flush_logs()
    out: list[tuple[int, RowChange]] = []
    for path in srv.binlog_files():
        if path in before:
            continue
        layouts: dict[int, TableLayout | None] = {}
        for ev in BinlogReader(path):
            if ev.type_code == 19:
                ours = bytes(ev.body.schema) == DB.encode() and bytes(ev.body.table) == \
                    table.encode()
                layouts[ev.body.table_id] = TableLayout.from_table_map(ev.body) if ours else None
            elif ev.type_code in ROW_EVENTS:
                layout = layouts.get(ev.body.table_id)
                if layout is not None:
                    out.extend((ev.type_code, ch) for ch in split_rows(ev.type_code, ev.body,
                                                                     layout))
    return out


@pytest.fixture(scope="module")
def mysql(mysql_server: Server) -> Server:
    mysql_server.execute([f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"])
    return mysql_server


# --- differential: fresh documents -----------------------------------------------------


def _big_object() -> str:
    return json.dumps({f"key{i:04d}": "v" * 90 + str(i) for i in range(800)})


def _big_array() -> str:
    # large outer array, small containers inside, ints that inline only in the large layout
    return json.dumps([{"i": i, "big": 100000 + i, "s": "x" * 60} for i in range(900)]
                      + [70000, -70000, 2**40])


DOCS = [
    # scalars at top level
    "'null'", "'true'", "'false'", "'0'", "'-1'", "'\"\"'", "'\"text\"'",
    "'-0'", "'-0.0'", "'1.0'", "'3.0'", "'0.1'", "'1e300'", "'-1e-300'",
    # integer boundaries
    "'[-32768, 32767, -32769, 32768, 65535, 65536]'",
    "'[2147483647, 2147483648, -2147483648, -2147483649, 4294967295, 4294967296]'",
    "'[9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551615]'",
    "'{\"a\": 32768, \"b\": -2147483649, \"c\": 18446744073709551615, \"d\": 7}'",
    # doubles, as MySQL formats them
    "'[1e300, 0.1, 3.0, 1e15, 1e14, 1e-15, 1e-16, 123456789012345678.0, 1.5e-7, -2.5e20]'",
    "'[1234567890123456.7, 0.0001, 0.00001, 2.2250738585072014e-308, 1.7976931348623157e308]'",
    "'[5e-324, 100.0, 1e16, 99999999999999.99, -0.5, 6.02214076e23, 1.1, 0.30000000000000004]'",
    # strings and keys
    "'[\"\", \"a\\\\\\\\b\", \"\\\\u0001\\\\u001f\\\\n\\\\t\\\\r\\\\b\\\\f\", "
    "\"/\\\\\"\", \"é€😀\"]'",
    "JSON_ARRAY(REPEAT('x', 127), REPEAT('y', 128), REPEAT('z', 16384), REPEAT('é', 300))",
    "'{\"\": 1, \"é\": 2, \"ab\": 3, \"b\": 4, \"a\": 5, \"😀\": 6, \"a b\": 7, \"Z\": 8}'",
    # nesting
    "'{}'", "'[]'", "'[[], {}, [[]], {\"a\": {}}]'",
    "'{\"a\": {\"b\": {\"c\": [1, [2, [3, {\"d\": null}]]]}}, \"e\": [true, false, null]}'",
    "'[{\"k\": [1, 2, {\"x\": \"y\"}]}, \"s\", 1.5, -7, {\"z\": {\"w\": []}}]'",
    # large layouts
    f"'{_big_object()}'",
    f"'{_big_array()}'",
    f"JSON_OBJECT('small', JSON_ARRAY(1, 2), 'big', '{'q' * 70000}', 'n', 100000)",
    # opaque: decimals
    "CAST(1.50 AS JSON)", "CAST(0.5 AS JSON)", "CAST(-12.345 AS JSON)",
    "CAST(CAST(1.5 AS DECIMAL(10,3)) AS JSON)", "CAST(CAST(0 AS DECIMAL(5,2)) AS JSON)",
    "CAST(CAST(-12.345 AS DECIMAL(20,5)) AS JSON)", "CAST(123456789012.5 AS JSON)",
    "CAST(CAST('-99999999999999999999999999999999999.999999999999999999999999999999' "
    "AS DECIMAL(65,30)) AS JSON)",
    "JSON_ARRAY(CAST(1.25 AS DECIMAL(4,2)), CAST(-0.001 AS DECIMAL(6,3)), 7)",
    # opaque: temporals
    "CAST(DATE'2015-01-15' AS JSON)", "CAST(TIME'23:24:25' AS JSON)",
    "CAST(TIMESTAMP'2015-01-15 23:24:25' AS JSON)",
    "CAST(CAST('2020-01-01 10:00:00.25' AS DATETIME(2)) AS JSON)",
    "CAST(CAST('-838:59:59' AS TIME) AS JSON)", "CAST(CAST('-00:00:01.5' AS TIME(1)) AS JSON)",
    "CAST(CAST('9999-12-31 23:59:59.999999' AS DATETIME(6)) AS JSON)",
    "JSON_OBJECT('d', CURDATE(), 't', CAST('12:00:00' AS TIME), 'ts', FROM_UNIXTIME(0))",
    # opaque: binary strings, and MySQL's base64 line breaks
    "CAST(x'00ff' AS JSON)", "CAST(REPEAT(x'ab', 100) AS JSON)", "CAST(REPEAT(x'01', 57) AS JSON)",
    "JSON_OBJECT('a', CAST('abc' AS BINARY))", "CAST(b'101' AS JSON)", "CAST(x'' AS JSON)",
    # unsigned from SQL values
    "CAST(CAST(5 AS UNSIGNED) AS JSON)", "CAST(CAST(70000 AS UNSIGNED) AS JSON)",
    "CAST(CAST(5000000000 AS UNSIGNED) AS JSON)", "CAST(CAST(2020 AS YEAR) AS JSON)",
    "JSON_ARRAY(CAST(1 AS UNSIGNED), CAST(65536 AS UNSIGNED), -1)",
    "JSON_OBJECT('u', CAST(7 AS UNSIGNED), 'big', REPEAT('b', 66000), "
    "'w', CAST(70000 AS UNSIGNED))",
    # geometry (a nested object with doubles)
    "CAST(ST_GeomFromText('LINESTRING(0 0, 1.5 2.25)') AS JSON)",
]


def test_fresh_documents_match_the_server(mysql: Server) -> None:
    mysql.execute([f"DROP TABLE IF EXISTS {DB}.docs",
                   f"CREATE TABLE {DB}.docs (id INT PRIMARY KEY, d JSON)"])
    stmts = [f"INSERT INTO {DB}.docs VALUES ({i}, {doc})" for i, doc in enumerate(DOCS)]
    changes = run_and_capture(mysql, "docs", stmts, ("SET SESSION binlog_row_image = 'FULL'",))
    assert len(changes) == len(DOCS)
    selected = dict(mysql.execute(f"SELECT id, CAST(d AS CHAR) FROM {DB}.docs"))
    seen_types = set()
    for _, ch in changes:
        assert ch.after is not None
        row_id = struct.unpack("<i", ch.after.values[0] or b"")[0]
        raw = _raw(ch.after.values[1])
        seen_types.add(raw[0])
        value = decode_json(raw)
        assert json_text(value) == selected[row_id], DOCS[row_id]
        assert encode_json(value) == raw, DOCS[row_id]
        col = Json(raw)
        assert col.to_bytes() == raw and col == Json(value=value)
    # every node type turned up
    assert seen_types >= {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0B, 0x0C, 0x0F}


def test_empty_json_value_is_null(mysql: Server) -> None:
    mysql.execute([f"DROP TABLE IF EXISTS {DB}.empty",
                   f"CREATE TABLE {DB}.empty (id INT PRIMARY KEY, c INT)",
                   f"INSERT INTO {DB}.empty VALUES (1, 0)",
                   # rows that exist when a NOT NULL JSON column is added hold an empty value
                   f"ALTER TABLE {DB}.empty ADD COLUMN j JSON NOT NULL"])
    changes = run_and_capture(mysql, "empty", [f"UPDATE {DB}.empty SET c = 1"],
                              ("SET SESSION binlog_row_image = 'FULL'",))
    (_, ch), = changes
    assert ch.after is not None
    raw = _raw(ch.after.values[2])
    assert raw == b""
    assert mysql.execute(f"SELECT CAST(j AS CHAR) FROM {DB}.empty") == [("null",)]
    assert decode_json(raw) is None and json_text(decode_json(raw)) == "null"


# --- differential: partial updates ------------------------------------------------------

A0 = {"x": 1, "a b": [1, 2, 3], "arr": [10, 20, 30, 40], "n": {"m": "s", "deep": {"k": [1]}},
      "s": "a longer string value", "f": 1.5}
B0 = [1, {"k": "v", "j": [True, None]}, "str", [[1, 2], [3]]]

UPDATES = [
    "a = JSON_SET(a, '$.x', 5)",
    "a = JSON_SET(a, '$.x', 5, '$.\"a b\"[1]', 'zz', '$.new', JSON_ARRAY(1, 2))",
    "a = JSON_REMOVE(a, '$.arr[0]'), b = JSON_REPLACE(b, '$[1].k', 'w')",
    "a = JSON_SET(a, '$.arr[10]', 99, '$.arr[last]', 7, '$.arr[last-1]', 6)",
    "a = JSON_SET(a, '$.x[0]', 8)",
    "a = JSON_SET(a, '$.x[1]', 9)",
    "a = JSON_SET(a, '$.\"\\\\u00e9t\\\\u00e9\"', 1, '$.\"1x\"', 2, '$.é', 3, "
    "'$.\"q\\\\\"\"', 4, '$.\"sp ace\"', 5)",
    "a = JSON_REMOVE(a, '$.n.deep.k[0]', '$.\"a b\"', '$.s')",
    "a = JSON_REPLACE(a, '$.n.deep', JSON_OBJECT('z', 1.25), '$.f', -0.5)",
    "a = JSON_SET(a, '$.n.m', CAST(12.50 AS DECIMAL(6,2)), '$.n.t', CAST('10:00:00' AS TIME))",
    "b = JSON_SET(b, '$[3][0][5]', 'app', '$[3][1][0]', JSON_ARRAY(), '$[1].new', NULL)",
    "b = JSON_REMOVE(b, '$[1].j[1]', '$[0]'), a = JSON_REPLACE(a, '$.nothing', 1)",
    "b = JSON_SET(b, '$[1].k', REPEAT('long', 40), '$[2]', 18446744073709551615)",
    "a = JSON_SET(a, '$.x', 'a', '$.x', 'b', '$.arr[1]', JSON_OBJECT('deep', JSON_ARRAY(1)))",
    "a = JSON_SET(JSON_REMOVE(a, '$.x'), '$.y', 1)",
    "a = JSON_SET(a, '$.big', REPEAT('y', 70000))",
]


def test_partial_updates_apply_like_the_server(mysql: Server) -> None:
    mysql.execute([f"DROP TABLE IF EXISTS {DB}.pj",
                   f"CREATE TABLE {DB}.pj (id INT PRIMARY KEY, a JSON, b JSON, c INT)"])
    a0, b0 = json.dumps(A0).replace("'", "''"), json.dumps(B0)
    mysql.execute([f"INSERT INTO {DB}.pj VALUES ({i}, '{a0}', '{b0}', 0)"
                   for i in range(len(UPDATES))])
    stmts = [f"UPDATE {DB}.pj SET {u} WHERE id = {i}" for i, u in enumerate(UPDATES)]
    changes = run_and_capture(mysql, "pj", stmts, (
        "SET SESSION binlog_row_value_options = 'PARTIAL_JSON'",
        "SET SESSION binlog_row_image = 'FULL'"))
    assert len(changes) == len(UPDATES)
    assert all(t == PARTIAL_UPDATE_ROWS for t, _ in changes)
    after = {row_id: (a, b) for row_id, a, b in mysql.execute(
        f"SELECT id, CAST(a AS CHAR), CAST(b AS CHAR) FROM {DB}.pj")}
    ops_seen = set()
    several = 0
    for _, ch in changes:
        assert ch.before is not None and ch.after is not None
        row_id = struct.unpack("<i", ch.after.values[0] or b"")[0]
        for col, want in zip((1, 2), after[row_id], strict=True):
            before = decode_json(_raw(ch.before.values[col]))
            raw = _raw(ch.after.values[col])
            if col in ch.after.partial:
                diffs = decode_json_diffs(raw)
                assert encode_json_diffs(diffs) == raw, UPDATES[row_id]
                ops_seen |= {d.op for d in diffs}
                several += len(diffs) > 1
                result = apply_json_diffs(before, diffs)
                assert json_text(result) == want, (UPDATES[row_id], diffs)
                col_value = Json(value=result, diffs=diffs)
                assert col_value.text() == want and col_value.diffs == tuple(diffs)
            else:  # a whole document
                assert json_text(decode_json(raw)) == want
                assert encode_json(decode_json(raw)) == raw
    assert ops_seen == {JSON_REPLACE, JSON_INSERT, JSON_REMOVE}
    assert several >= 5


def test_partial_updates_with_minimal_image(mysql: Server) -> None:
    mysql.execute([f"DROP TABLE IF EXISTS {DB}.pm",
                   f"CREATE TABLE {DB}.pm (id INT PRIMARY KEY, a JSON, c INT)",
                   f"INSERT INTO {DB}.pm VALUES (1, '{json.dumps(A0)}', 0)"])
    changes = run_and_capture(mysql, "pm", [
        f"UPDATE {DB}.pm SET a = JSON_SET(a, '$.x', 2, '$.\"new key\"', 'v') WHERE id = 1",
        f"UPDATE {DB}.pm SET a = JSON_REMOVE(a, '$.arr[1]'), c = 5 WHERE id = 1",
    ], ("SET SESSION binlog_row_value_options = 'PARTIAL_JSON'",
        "SET SESSION binlog_row_image = 'MINIMAL'"))
    assert [t for t, _ in changes] == [PARTIAL_UPDATE_ROWS] * 2
    doc: Any = A0
    for _, ch in changes:
        assert ch.after is not None and ch.after.partial == frozenset({1})
        raw = _raw(ch.after.values[1])
        diffs = decode_json_diffs(raw)
        assert encode_json_diffs(diffs) == raw
        doc = apply_json_diffs(doc, diffs)
    assert json_text(doc) == mysql.execute(f"SELECT CAST(a AS CHAR) FROM {DB}.pm")[0][0]
    first = changes[0][1].after
    assert first is not None
    assert decode_json_diffs(_raw(first.values[1])) == [
        JsonDiff(JSON_REPLACE, "$.x", 2), JsonDiff(JSON_INSERT, '$."new key"', "v")]


# --- properties ----------------------------------------------------------------------------

@st.composite
def _decimal(draw: st.DrawFn) -> JsonOpaque:
    scale = draw(st.integers(0, 30))
    intg = draw(st.integers(0, 35))
    digits = draw(st.integers(0, 10 ** (intg + scale) - 1))
    sign = draw(st.sampled_from(["", "-"]))
    return JsonOpaque.from_decimal(Decimal(f"{sign}{digits}").scaleb(-scale))


@st.composite
def _temporal(draw: st.DrawFn) -> JsonOpaque:
    ft = draw(st.sampled_from([7, 10, 11, 12]))
    if ft == 11:
        return JsonOpaque.temporal(11, hour=draw(st.integers(0, 838)),
                                   minute=draw(st.integers(0, 59)),
                                   second=draw(st.integers(0, 59)),
                                   microsecond=draw(st.integers(0, 999999)),
                                   negative=draw(st.booleans()))
    return JsonOpaque.temporal(ft, draw(st.integers(0, 9999)), draw(st.integers(0, 12)),
                               draw(st.integers(0, 31)), hour=draw(st.integers(0, 23)),
                               minute=draw(st.integers(0, 59)), second=draw(st.integers(0, 59)),
                               microsecond=draw(st.integers(0, 999999)))


SCALARS = (
    st.none() | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.integers(0, 2**64 - 1).map(JsonUInt)
    | st.sampled_from([0, -1, 32767, -32768, 32768, 65535, 65536, 2**31, -(2**31) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | _decimal() | _temporal()
    | st.builds(JsonOpaque, st.sampled_from([15, 252, 249, 254, 16]), st.binary(max_size=120))
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_encode_decode_roundtrip(value: Any) -> None:
    raw = encode_json(value)
    back = decode_json(raw)
    assert back == value
    assert json_text(back) == json_text(value)
    assert encode_json(back) == raw
    assert Json(raw) == Json(value=value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=5),
       st.dictionaries(st.text(max_size=3), st.integers(-(2**40), 2**40), max_size=20))
def test_large_layout_roundtrip(words: list[str], small: dict[str, int]) -> None:
    big = [w + "p" * 1200 for w in words] * (60 // len(words) + 1)
    value = {"big": big, "small": small, "n": [1, 100000, -5]}
    raw = encode_json(value)
    assert raw[0] == 0x01  # the whole document needs 32-bit offsets
    assert decode_json(raw) == value and encode_json(decode_json(raw)) == raw


def test_json_uint_keeps_unsigned_type_bytes() -> None:
    assert encode_json(5) == b"\x05\x05\x00"
    assert encode_json(JsonUInt(5)) == b"\x06\x05\x00"
    assert encode_json(2**63) == b"\x0a" + (2**63).to_bytes(8, "little")
    assert type(decode_json(b"\x06\x05\x00")) is JsonUInt
    with pytest.raises(ValueError):
        encode_json(2**64)
    with pytest.raises(ValueError):
        encode_json(float("nan"))


def test_opaque_values_and_text() -> None:
    dec = JsonOpaque(246, bytes.fromhex("0302" "8132"))
    assert dec.value == Decimal("1.50") and dec.text() == "1.50"
    assert JsonOpaque.from_decimal("1.50") == dec
    assert JsonOpaque.from_decimal("-12.345").text() == "-12.345"
    dt = JsonOpaque(12, bytes.fromhex("0000001976" "1f9519"))
    assert dt.value == "2015-01-15 23:24:25.000000"
    date = JsonOpaque(10, bytes.fromhex("0000000000 1e9519".replace(" ", "")))
    assert date.value == "2015-01-15" and date.text() == '"2015-01-15"'
    assert JsonOpaque.temporal(12, 2015, 1, 15, 23, 24, 25).text() == \
        '"2015-01-15 23:24:25.000000"'
    assert JsonOpaque.temporal(11, hour=838, minute=59, second=59, negative=True).value == \
        "-838:59:59.000000"
    assert JsonOpaque(15, b"\x00\xff").text() == '"base64:type15:AP8="'
    assert JsonOpaque(253, b'a"b').text() == '"a\\"b"'
    assert JsonOpaque(15, b"\x01" * 58).text().count("\\n") == 1


def test_double_text_matches_mysql_samples() -> None:
    # taken from SELECT CAST(... AS CHAR) on MySQL 9.7
    samples = {1e300: "1e300", 0.1: "0.1", 3.0: "3.0", 1e15: "1e15", 1e14: "100000000000000.0",
               1e-15: "0.000000000000001", 1e-16: "1e-16", 1.2345678901234568e17:
               "1.2345678901234568e17", 1.5e-7: "0.00000015", -2.5e20: "-2.5e20",
               1234567890123456.8: "1234567890123456.8", 0.0: "0.0"}
    for value, text in samples.items():
        assert json_text(value) == text
    assert json_text(-0.0) == "-0.0"


def test_json_text_layout() -> None:
    assert json_text({"b": [1, 2], "a": 1, "aa": {}}) == '{"a": 1, "b": [1, 2], "aa": {}}'
    assert json_text("\x01\"\\/\n") == '"\\u0001\\"\\\\/\\n"'
    assert json_text([None, True, False, []]) == "[null, true, false, []]"


# --- diffs without a server ------------------------------------------------------------------


def test_apply_semantics() -> None:
    doc = {"a": [1, 2, 3], "o": {"k": 1}}
    frozen = json.dumps(doc)
    assert apply_json_diffs(doc, [JsonDiff(JSON_INSERT, "$.a[10]", 4)]) == \
        {"a": [1, 2, 3, 4], "o": {"k": 1}}
    assert apply_json_diffs(doc, [JsonDiff(JSON_INSERT, "$.a[0]", 0)])["a"] == [0, 1, 2, 3]
    assert apply_json_diffs(doc, [JsonDiff(JSON_INSERT, "$.a[last]", 9)])["a"] == [1, 2, 9, 3]
    assert apply_json_diffs(doc, [JsonDiff(JSON_REPLACE, "$.a[last-2]", 0)])["a"] == [0, 2, 3]
    assert apply_json_diffs(doc, [JsonDiff(JSON_REMOVE, '$."o".k')])["o"] == {}
    assert list(apply_json_diffs(doc, [JsonDiff(JSON_INSERT, "$.B", 1)])) == ["B", "a", "o"]
    for bad in (JsonDiff(JSON_REPLACE, "$.zz", 1), JsonDiff(JSON_INSERT, "$.o.k", 1),
                JsonDiff(JSON_REMOVE, "$.a[3]"), JsonDiff(JSON_REPLACE, "$", 1),
                JsonDiff(JSON_REPLACE, "$.a.b", 1), JsonDiff(JSON_REPLACE, "$.a[*]", 1),
                JsonDiff(JSON_INSERT, "$.q.r", 1), JsonDiff(JSON_REPLACE, "a", 1)):
        with pytest.raises(JsonError):
            apply_json_diffs(doc, [bad])
    assert json.dumps(doc) == frozen  # not mutated


def test_json_path_formatting() -> None:
    assert json_path("a", "b c", 3, "é", "1x", 'q"') == '$.a."b c"[3].é."1x"."q\\""'


def test_diff_roundtrip_and_layout() -> None:
    diffs = [JsonDiff(JSON_REPLACE, "$.x", 5), JsonDiff(JSON_REMOVE, "$.arr[0]"),
             JsonDiff(JSON_INSERT, "$." + "k" * 300, "v" * 300)]
    raw = encode_json_diffs(diffs)
    assert raw.startswith(b"\x00\x03$.x\x03\x05\x05\x00\x02\x08$.arr[0]\x01\xfc\x2e\x01")
    assert decode_json_diffs(raw) == diffs
    assert decode_json_diffs(b"") == []


# --- malformed input ----------------------------------------------------------------------------


def test_truncated_documents_raise() -> None:
    docs = [{"a": [1, 2.5, "x" * 200], "b": {"c": None}}, [2**40, "s"], "str", 1.5, 70000,
            JsonOpaque(15, b"abc"), [JsonUInt(5)] * 3]
    for doc in docs:
        raw = encode_json(doc)
        for cut in range(1, len(raw)):
            with pytest.raises(JsonError, match="at byte"):
                decode_json(raw[:cut])


@pytest.mark.parametrize(("raw", "offset", "what"), [
    (b"\x0d\x00", 0, "type byte"),
    (b"\x02\x01\x00\x07\x00\x0d\x00\x00", 5, "type byte"),
    (b"\x02\x01\x00\x07\x00\x0c\x40\x00", 5, "offset 64"),
    (b"\x02\x01\x00\xff\x00\x04\x00\x00", 1, "size 255"),
    (b"\x03\xff\xff\xff\xff\x0c\x00\x00\x00" + bytes(4), 1, "elements"),
    (b"\x00\x01\x00\x0b\x00\x0b\x00\x09\x00\x04\x01\x00", 5, "key"),
    (b"\x04\x07", 1, "literal"),
    (b"\x0c\xff\xff\xff\xff\xff\x01", 1, "variable-length"),
    (b"\x0c\x02\xc3", 1, "string"),
    (b"\x0c\x01\xff", 2, "utf-8"),
    (b"\x0f\x0f\x05ab", 1, "opaque"),
])
def test_malformed_names_offset(raw: bytes, offset: int, what: str) -> None:
    with pytest.raises(JsonError, match=what) as info:
        decode_json(raw)
    assert info.value.offset == offset
    assert f"at byte {offset}" in str(info.value)


def test_shared_values_cannot_blow_up() -> None:
    # every entry points back at the array itself: without a bound this is 2**200 work
    raw = b"\x02\x02\x00\x0a\x00\x02\x00\x00\x02\x00\x00"
    with pytest.raises(JsonError):
        decode_json(raw)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.data())
def test_mutations_raise_only_json_error(value: Any, data: st.DataObject) -> None:
    raw = bytearray(encode_json(value))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_json(bytes(raw))
    except JsonError:
        pass


@pytest.mark.parametrize(("raw", "offset"), [
    (b"\x07\x01$", 0),                       # bad operation
    (b"\x00\x05$.a", 2),                     # path runs past the end
    (b"\x00\x03$.a\x09\x05\x01\x00", 6),     # value length runs past the end
    (b"\x00\x03$.a\x00", 6),                 # empty value
    (b"\x00\x03$.a", 5),                     # value length missing
    (b"\x00\x03$.a\x02\x0d\x00", 6),         # bad value type byte
    (b"\x02\xfc\x01", 1),                    # truncated packed length
])
def test_malformed_diffs(raw: bytes, offset: int) -> None:
    with pytest.raises(JsonError) as info:
        decode_json_diffs(raw)
    assert info.value.offset == offset


def test_json_column_value() -> None:
    assert Json(value=None) != Json(value=[])
    assert Json(b"") == Json(value=None)
    assert Json(value={"a": 1}).to_bytes() == encode_json({"a": 1})
    assert Json(value={"a": 1}).raw is None
    with pytest.raises(TypeError):
        Json()
    with pytest.raises(TypeError):
        hash(Json(value=1))
    assert "Json(" in repr(Json(b"\x05\x01\x00"))


def test_opaque_decimals_keep_every_digit() -> None:
    """Beyond the decimal module's default 28 digits (DECIMAL allows 65)."""
    for text in ("12345678901234567890123456789012345.123",
                 "-99999999999999999999999999999999999.999999999999999999999999999999"):
        value = Decimal(text)
        doc = decode_json(encode_json([JsonOpaque.from_decimal(value)]))
        assert doc[0].value == value and format(doc[0].value, "f") == text
