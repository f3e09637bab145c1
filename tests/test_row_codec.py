"""Row values: decode then encode gives back the bytes, on every row event of
every corpus file; random values of every type survive encode then decode.

MySQL 5.1 before 5.1.18 wrote TABLE_MAPs without the column metadata block
(and, before 5.1.16, rows in a format of its own): such rows are not
decodable, and mariadb-binlog / mysqlbinlog print "Number of rows: 0" for
them too. The test checks that exactly those events fail, with
RowFramingError.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from corpus import CorpusFile, find_corpus
from hypothesis import given
from hypothesis import strategies as st

from binlogkit.codec import temporal as tp
from binlogkit.codec.columns import Column
from binlogkit.codec.describe import TableMaps
from binlogkit.codec.event import Event, encode_event
from binlogkit.codec.events.rows import parse_rows_common
from binlogkit.codec.header import HEADER_V4_FIXED, HeaderV4
from binlogkit.codec.inner import inner_events
from binlogkit.codec.registry import spec_for
from binlogkit.codec.rowcodec import (
    Row,
    decode_rows,
    encode_image,
    encode_rows,
    image_decoder,
    rows_data,
)
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.types import ROWS_EVENTS, TWO_BITMAPS, EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

CORPUS = [f for f in find_corpus() if not f.encrypted]


def _events(path: str) -> list[Event]:
    out: list[Event] = []
    try:
        for ev in BinlogReader(path):
            out.extend(inner_events(ev) if ev.type_code == EventType.TRANSACTION_PAYLOAD else [ev])
    except BinlogError:
        pass  # corrupt on purpose: test_roundtrip checks the error; rows before it count
    return out


@pytest.mark.parametrize("cf", CORPUS, ids=lambda f: f"{f.origin}:{f.path.name}")
def test_rows_reencode_byte_identical(cf: CorpusFile) -> None:
    tables = TableMaps()
    for ev in _events(str(cf.path)):
        tables.see(ev)
        if ev.type_code not in ROWS_EVENTS:
            continue
        tm = tables.maps.get(ev.body.table_id)
        assert tm is not None, f"rows at {ev.pos} without a table map"
        if tm.metadata is None:  # pre-5.1.18 table map
            with pytest.raises(RowFramingError):
                decode_rows(ev.type_code, ev.body, tables.table_columns(ev.body.table_id) or ())
            continue
        cols = tables.table_columns(ev.body.table_id)
        assert cols is not None
        rows = decode_rows(ev.type_code, ev.body, cols)
        assert encode_rows(ev.type_code, ev.body, cols, rows) == rows_data(ev.type_code, ev.body), (
            f"{cf.path}:{ev.pos} {ev.type_name}")


@pytest.mark.parametrize("cf", CORPUS, ids=lambda f: f"{f.origin}:{f.path.name}")
def test_fast_paths_agree_with_the_specs(cf: CorpusFile) -> None:
    """parse_rows_common is a shortcut for the Rows/UpdateRows specs, and
    HEADER_V4_FIXED for HeaderV4: same fields."""
    compared = rows_events = 0
    for ev in _events(str(cf.path)):
        if ev.ctx is not None and ev.ctx.header_len >= 19:
            head = encode_event(ev)[:19]
            spec_head = HeaderV4.parse(head, header_len=19)
            assert HEADER_V4_FIXED.unpack(head) == (
                spec_head.timestamp, spec_head.type_code, spec_head.server_id,
                spec_head.event_size, spec_head.log_pos, spec_head.flags)
        if ev.type_code not in ROWS_EVENTS or ev.ctx is None:
            continue
        rows_events += 1
        raw = encode_event(ev)
        hlen = 19 if ev.ctx.header_len < 19 else ev.ctx.header_len
        body = raw[hlen : len(raw) - (4 if ev.checksum is not None else 0)]
        ph = ev.ctx.post_header_len(ev.type_code)
        fast = parse_rows_common(body, ph, ev.type_code in TWO_BITMAPS)
        if fast is None:
            continue
        spec = spec_for(ev.type_code).parse(body, ph=ph, has_alg=False)
        assert {k: v for k, v in spec.items() if not k.startswith("_")} == dict(fast), ev.pos
        compared += 1
    if rows_events and cf.origin == "fixtures":
        assert compared, "the shortcut took none of this file's row events"


# ---------------------------------------------------------------- property tests

def col(t: int, meta: int = 0, **kw: object) -> Column:
    return Column(index=0, type=t, meta=meta, name="c", **kw)  # type: ignore[arg-type]


def roundtrip(c: Column, value: object) -> object:
    raw = encode_image([c], {"c": value})
    row, end, _ = image_decoder((c,))(raw, 0)
    assert end == len(raw)
    assert encode_image([c], row) == raw
    return row["c"]


INT_TYPES = [(1, 8), (2, 16), (9, 24), (3, 32), (8, 64)]


@pytest.mark.parametrize(("t", "bits"), INT_TYPES)
@given(data=st.data())
def test_integers(t: int, bits: int, data: st.DataObject) -> None:
    unsigned = data.draw(st.booleans())
    lo, hi = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    v = data.draw(st.integers(lo, hi) | st.sampled_from([lo, hi]))
    assert roundtrip(col(t, unsigned=unsigned), v) == v


@given(st.floats(width=32, allow_nan=False), st.floats(allow_nan=False))
def test_floats(f: float, d: float) -> None:
    assert roundtrip(col(4, 4), f) == f
    assert roundtrip(col(5, 8), d) == d


@given(st.data())
def test_decimals(data: st.DataObject) -> None:
    precision = data.draw(st.integers(1, 65))
    scale = data.draw(st.integers(0, min(precision, 30)))
    digits = data.draw(st.text("0123456789", min_size=precision, max_size=precision))
    sign = data.draw(st.sampled_from(["", "-"]))
    text = sign + (digits[: precision - scale] or "0") + ("." + digits[precision - scale:]
                                                          if scale else "")
    value = Decimal(text)
    out = roundtrip(col(246, precision << 8 | scale), value)
    assert out == value and format(out, "f") == tp.decimal_text(
        tp.encode_decimal(value, precision, scale), precision, scale)


@pytest.mark.parametrize(("text", "p", "s"), [
    ("-123.45", 10, 2), ("0.00001", 5, 5), ("-0.99999", 5, 5),
    ("3.141592653589793238462643383279", 65, 30),
    ("-99999999999999999999999999999999999.999999999999999999999999999999", 65, 30),
    ("1234567890123456789", 19, 0),
])
def test_decimal_text_is_the_servers(text: str, p: int, s: int) -> None:
    assert tp.decimal_text(tp.encode_decimal(Decimal(text), p, s), p, s) == text


dates = st.tuples(st.integers(0, 9999), st.integers(0, 12), st.integers(0, 31))
times = st.tuples(st.integers(0, 838), st.integers(0, 59), st.integers(0, 59))
fsps = st.integers(0, 6)


def _frac(usec: int, fsp: int) -> str:
    return ("." + f"{usec:06d}"[:fsp]) if fsp else ""


@given(dates, times, fsps, st.integers(0, 999999))
def test_datetime2(d: tuple[int, int, int], t: tuple[int, int, int], fsp: int, usec: int) -> None:
    usec -= usec % 10 ** (6 - fsp)
    text = f"{d[0]:04d}-{d[1]:02d}-{d[2]:02d} {t[0] % 24:02d}:{t[1]:02d}:{t[2]:02d}" + _frac(
        usec, fsp)
    assert roundtrip(col(18, fsp), text) == text
    assert roundtrip(col(12), text[:19]) == text[:19]
    assert roundtrip(col(10), text[:10]) == text[:10]


@given(st.booleans(), times, fsps, st.integers(0, 999999))
def test_time2_negative_fractions(neg: bool, t: tuple[int, int, int], fsp: int,
                                  usec: int) -> None:
    usec -= usec % 10 ** (6 - fsp)
    body = f"{t[0]:02d}:{t[1]:02d}:{t[2]:02d}" + _frac(usec, fsp)
    zero = t == (0, 0, 0) and usec == 0
    text = ("-" if neg and not zero else "") + body
    assert roundtrip(col(19, fsp), text) == text
    old = ("-" if neg and t != (0, 0, 0) else "") + body[: len(body) - len(_frac(usec, fsp))]
    assert roundtrip(col(11), old) == old


@pytest.mark.parametrize(("text", "fsp", "raw"), [
    # the server's bytes for these values (MySQL's my_time_packed_to_binary)
    ("-00:00:00.000001", 6, bytes.fromhex("7fffffffffff")),
    ("-00:00:01.000001", 6, bytes.fromhex("7ffffeffffff")),
    ("-01:02:03.456", 3, bytes.fromhex("7fef7cee30")),
    ("00:00:00", 0, bytes.fromhex("800000")),
])
def test_time2_known_bytes(text: str, fsp: int, raw: bytes) -> None:
    assert tp.encode_time2(text, fsp) == raw
    assert tp.time2_text(raw, fsp) == text


@given(st.integers(1, 2**31 - 1), fsps, st.integers(0, 999999))
def test_timestamps(seconds: int, fsp: int, usec: int) -> None:
    usec -= usec % 10 ** (6 - fsp)
    text = tp.timestamp_text(seconds, usec, fsp)
    assert roundtrip(col(17, fsp), text) == text
    assert roundtrip(col(7), tp.timestamp_text(seconds)) == tp.timestamp_text(seconds)


def test_zero_values() -> None:
    assert roundtrip(col(17, 3), "0000-00-00 00:00:00.000") == "0000-00-00 00:00:00.000"
    assert roundtrip(col(7), "0000-00-00 00:00:00") == "0000-00-00 00:00:00"
    assert roundtrip(col(18, 0), "0000-00-00 00:00:00") == "0000-00-00 00:00:00"
    assert roundtrip(col(10), "0000-00-00") == "0000-00-00"
    assert roundtrip(col(13), 0) == 0
    assert roundtrip(col(13), 2155) == 2155


@given(st.integers(1, 64), st.data())
def test_bits(nbits: int, data: st.DataObject) -> None:
    v = data.draw(st.integers(0, 2**nbits - 1))
    assert roundtrip(col(16, (nbits % 8) << 8 | nbits // 8), v) == v


SET_MEMBERS = tuple(f"m{i}" for i in range(64))


@given(st.lists(st.sampled_from(SET_MEMBERS), unique=True), st.integers(0, 300))
def test_enum_and_set(members: list[str], idx: int) -> None:
    text = ",".join(m for m in SET_MEMBERS if m in members)
    assert roundtrip(col(248, max_length=8, set_values=SET_MEMBERS), text) == text
    enum = tuple(f"v{i}" for i in range(300))
    name = enum[idx - 1] if idx else ""
    assert roundtrip(col(247, max_length=2, enum_values=enum), name) == name


@given(st.binary(max_size=40), st.integers(1, 4))
def test_blobs_and_binary(data: bytes, width: int) -> None:
    if width == 1:
        data = data[:255]
    assert roundtrip(col(252, width, collation=63), data) == data
    # BINARY(40): the server strips trailing zero bytes; decoding restores them
    padded = data.ljust(40, b"\0")
    assert roundtrip(col(254, 254 << 8 | 40, collation=63, max_length=40), padded) == padded


@given(st.text(max_size=60))
def test_utf8mb4_text(s: str) -> None:
    s = s.encode("utf-8", "replace").decode("utf-8")
    assert roundtrip(col(15, 1200, collation=255, charset="utf8mb4", max_length=1200), s) == s


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=16))
def test_vectors(vals: list[float]) -> None:
    assert roundtrip(col(242, 4), tuple(vals)) == tuple(vals)


def test_truncated_rows_raise_framing_errors() -> None:
    c = col(3)
    body = type("B", (), {"rows": b"\x00\x01\x02", "width": 1, "columns": b"\x01",
                          "columns_after": None})()
    with pytest.raises(RowFramingError, match="row 1"):
        decode_rows(EventType.WRITE_ROWS_V2, body, [c])
    assert Row(None, {"c": 1}).after == {"c": 1}
    assert struct.calcsize("<i") == 4


def test_null_in_a_not_null_column_still_decodes() -> None:
    """Fast decoders skip NULL tests for NOT NULL columns; a NULL there anyway
    (a table map out of step with the rows) is decoded again, safely."""
    cols = [Column(index=0, type=3, meta=0, name="a", nullable=False),
            Column(index=1, type=3, meta=0, name="b", nullable=False)]
    body = type("B", (), {"rows": b"\x01" + (5).to_bytes(4, "little"), "width": 2,
                          "columns": b"\x03", "columns_after": None})()
    assert decode_rows(EventType.WRITE_ROWS_V2, body, cols) == [Row(None, {"a": None, "b": 5})]


GROUP = [col(246, 65 << 8 | 30), col(18, 6), col(17, 3), col(246, 5 << 8 | 5), col(18, 0),
         col(17, 0), col(246, 10 << 8 | 2), col(18, 1), col(17, 6), col(246, 19 << 8 | 0)]
GROUP = [Column(index=i, type=c.type, meta=c.meta, name=f"c{i}", nullable=False)
         for i, c in enumerate(GROUP)]


@given(st.data())
def test_not_null_big_endian_columns_read_as_one_group(data: st.DataObject) -> None:
    """NOT NULL DECIMAL/DATETIME2/TIMESTAMP2 runs are read with one struct call."""
    values = {}
    for c in GROUP:
        if c.type == 246:
            p, s = c.meta >> 8, c.meta & 0xFF
            digits = data.draw(st.text("0123456789", min_size=p, max_size=p))
            text = data.draw(st.sampled_from(["", "-"])) + (digits[: p - s] or "0") + (
                "." + digits[p - s:] if s else "")
            values[c.key] = Decimal(text)
        elif c.type == 18:
            usec = data.draw(st.integers(0, 999999))
            usec -= usec % 10 ** (6 - c.meta)
            values[c.key] = (f"{data.draw(st.integers(0, 9999)):04d}-01-31 23:59:59"
                             + _frac(usec, c.meta))
        else:
            usec = data.draw(st.integers(0, 999999))
            usec -= usec % 10 ** (6 - c.meta)
            values[c.key] = tp.timestamp_text(data.draw(st.integers(1, 2**31 - 1)), usec,
                                              c.meta)
    raw = encode_image(GROUP, values)
    for kind in ("w", "d"):
        body = type("B", (), {"rows": raw * 2, "width": len(GROUP),
                              "columns": b"\xff\x03", "columns_after": None})()
        ev_type = EventType.WRITE_ROWS_V2 if kind == "w" else EventType.DELETE_ROWS_V2
        rows = decode_rows(ev_type, body, GROUP)
        assert [r.after if kind == "w" else r.before for r in rows] == [values, values]


UPDATE_COLS = [
    Column(index=0, type=3, meta=0, name="id", nullable=False),
    Column(index=1, type=246, meta=12 << 8 | 2, name="amount", nullable=True),
    Column(index=2, type=18, meta=6, name="at", nullable=False),
    Column(index=3, type=17, meta=3, name="ts", nullable=True),
    Column(index=4, type=15, meta=400, name="name", nullable=True, collation=255,
           charset="utf8mb4", max_length=400),
    Column(index=5, type=15, meta=20, name="l1", nullable=False, collation=8,
           charset="latin1", max_length=20),
    Column(index=6, type=246, meta=5 << 8 | 0, name="n", nullable=False),
]
_POOL = {
    "amount": [None, Decimal("1.00"), Decimal("-1.00"), Decimal("1234567890.12")],
    "at": ["2024-01-01 00:00:00.000001", "1999-12-31 23:59:59.999999"],
    "ts": [None, "2001-09-09 01:46:40.000", "2038-01-19 03:14:07.999"],
    "name": [None, "", "ünï", "日本語"],
    "l1": ["", "é", "abc"],
    "n": [Decimal(0), Decimal(-99999), Decimal(7)],
}


@given(st.data())
def test_update_after_images_reuse_only_equal_values(data: st.DataObject) -> None:
    """UPDATE loops reuse the before value of a column whose after bytes are the
    same; values drawn from small pools (NULLs included) make equal, changed,
    NULL-to-value and value-to-NULL columns common, over several rows."""
    rows = []
    for i in range(data.draw(st.integers(1, 6))):
        before = {"id": i, **{k: data.draw(st.sampled_from(v)) for k, v in _POOL.items()}}
        after = {"id": i, **{k: data.draw(st.sampled_from(v)) for k, v in _POOL.items()}}
        rows.append((before, after))
    raw = b"".join(encode_image(UPDATE_COLS, b) + encode_image(UPDATE_COLS, a) for b, a in rows)
    body = type("B", (), {"rows": raw, "width": len(UPDATE_COLS), "columns": b"\x7f",
                          "columns_after": b"\x7f"})()
    got = decode_rows(EventType.UPDATE_ROWS_V2, body, UPDATE_COLS)
    assert [(r.before, r.after) for r in got] == rows
