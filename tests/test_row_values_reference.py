"""Differential: decoded row values against the servers' own decoders.

For every corpus file the assigned tool decodes (``reference.choose_tool``: MySQL 9.7's
``mysqlbinlog`` for MySQL 8+, ``mariadb-binlog`` otherwise), run it with
``-vv --base64-output=decode-rows`` and compare every value of every row it prints
(WRITE/UPDATE/DELETE v0/v1/v2, PARTIAL_UPDATE_ROWS, MariaDB compressed rows, rows inside
TRANSACTION_PAYLOAD) with ``describe(ev, tables)["rows"]``.  Outer events are matched by
position; events inside a TRANSACTION_PAYLOAD by order (the tool prints them in order).
A failure lists ``file, event pos, row k, column @N: ours X, tool Y``.

Normalization: our JSON value is rendered the way the tool prints it (``vv_rows``), by the
type the tool names in its ``/* TYPE meta=.. */`` comment, and compared with the printed
text.  Rules:

* NULL: the tool prints ``NULL`` (``is_null=1``); ours is ``null``.
* TINYINT/SHORTINT/MEDIUMINT/INT/LONGINT: the tool prints the signed value and, when
  negative, the unsigned reading in parentheses (``-1 (255)``); ours must be one of the
  two, and exactly the right one when the table map has SIGNEDNESS metadata.
* YEAR: the tool prints ``%04d`` of ``stored + 1900``; ours is the year, and 0 where the
  tool prints 1900 (KNOWN_BUGS year-0).
* BIT(n): the tool prints ``b'<n binary digits>'``; ours is the integer.
* DECIMAL: ours (a string) must equal the printed text exactly.
* FLOAT: the tool prints ``%-20g`` of the value as double (padding dropped; only 6
  digits); ours must give the same ``%g`` and be a single-precision value (exactly, or
  its shortest decimal form).  DOUBLE: ``%.20g`` of ours must equal the text, so the
  double is exact.
* DATE: both tools print ``'YYYY:MM:DD'`` (colons): ours with ``-`` replaced by ``:``.
* TIME, DATETIME (old and fractional): ours quoted must equal the text exactly (sign,
  zero dates and all fraction digits included).
* TIMESTAMP: the tool prints epoch seconds then ``.`` and the column's fraction digits;
  ours (a UTC datetime string, ``0000-00-00 00:00:00`` for zero) is converted with
  ``calendar.timegm`` and its fraction digits appended as they are.
* CHAR/VARCHAR/BINARY/VARBINARY/TEXT/BLOB (``STRING(n)``, ``VARSTRING(n)``,
  ``*BLOB/*TEXT``), MariaDB's JSON (a LONGTEXT) and MariaDB's GEOMETRY: the tool prints
  the raw bytes in quotes: mariadb-binlog with bytes < 0x20 as ``\\xHH`` and nothing
  else escaped (``'`` and ``\\`` raw), mysqlbinlog 9.7 with ``\\b \\t \\n \\f \\r``
  ``\\'`` ``\\\\`` and ``\\xHH`` for the other bytes < 0x20 (``vv_rows.quote``).  Ours
  is turned back into bytes and quoted the same way (never the tool's text unescaped:
  mariadb-binlog's is ambiguous): base64-decoded when the table map
  says the column's collation is binary (63), encoded in the column's charset when
  COLUMN_CHARSET/DEFAULT_CHARSET metadata names a known one (utf8mb3/utf8mb4 -> UTF-8,
  latin1 -> cp1252 or latin-1, ascii), and with no metadata any of UTF-8, cp1252,
  latin-1 or base64 that reproduces the printed bytes.  BINARY(n) (``STRING(n)`` of
  binary or unknown charset): ours may be the printed bytes padded with 0x00 to n bytes
  (KNOWN_BUGS binary-padding).
* ENUM: the tool prints the 1-based index; ours (the label) is mapped to its index with
  ENUM_STR_VALUE metadata ('' -> 0); an integer is taken as the index.
* SET: the tool prints the stored bytes (little-endian) as ``b'...'``, each byte
  most-significant bit first (KNOWN_BUGS set-byte-order); ours (comma-joined labels) is
  mapped to the mask with SET_STR_VALUE metadata (an integer is taken as the mask) and
  printed that way.
* MySQL JSON: the tool prints the JSON text quoted (mysqlbinlog escapes); it is
  unescaped, parsed (decimals exactly) and compared structurally with ours (object key
  order ignored, 1 == 1.0 == 1.0e0, true != 1).
* MySQL partial JSON (``JSON_REPLACE(@N, '$.a', v)`` / ``JSON_INSERT`` / ``JSON_REMOVE``,
  nested): our ``json_diffs`` for the column must be the tool's operations in order
  (``{"op": "REPLACE"|"INSERT"|"REMOVE", "path", "value"}``, values compared as JSON), and
  the expression applied to the tool's own before image of the column must give ours
  (the after value).  Without a before value (MINIMAL image) ours must leave the column
  out of the after image; only the diffs are checked then.
* VECTOR: the tool prints ``[%.5e,%.5e,...]``; ours (a list of floats) rendered that way.
* Column sets: the columns present in each image must be the same (MINIMAL/NOBLOB images
  leave columns out; ours must leave out the same ones).  Keys are column names when the
  table map has COLUMN_NAME metadata, else ``@N``.
* Grouping: mariadb-binlog holds back the rows of a statement's row events and prints
  them all under the event with STMT_END_F; mysqlbinlog prints each event's own.  The
  rows the tool prints under an event are compared with the rows of our events since the
  last one it printed rows for, in order.  An event with STMT_END_F the tool prints no
  rows for (pre-GA v0 events) is counted as not comparable.
* Where the tool gives up on a value (mysqlbinlog: ``!! Don't know how to handle column
  type=255`` for GEOMETRY) it prints nothing more for the event: the rest of that event is
  not compared, and the event's row count is not checked.

Files where the tool fails, or prints no rows, are skipped with the reason.  Where a
reference decoder prints something other than the server's value, KNOWN_BUGS names the
case; the rule above checks that ours is the server's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from corpus import CorpusFile, find_corpus
from reference import RefEvent, reference_events, tools_available
from vv_rows import (
    Column,
    Mismatch,
    RefRows,
    RefValue,
    apply_json_ops,
    check_value,
    json_equal,
    parse_json_text,
    parse_partial_json,
    parse_rows,
)

from binlogkit.codec.describe import TableMaps, describe
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.rowimage import ENUM_TYPE, SET_TYPE, RowFramingError, TableLayout
from binlogkit.codec.types import ROWS_EVENTS, EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

T = EventType
STMT_END_F = 1
CORPUS = [f for f in find_corpus() if not f.encrypted]
if not all(tools_available().values()):
    pytest.skip("reference decoders not installed (scripts/provision.sh)",
                allow_module_level=True)

ROW_TOOL_NAMES = {
    "Write_rows", "Update_rows", "Delete_rows", "Update_rows_partial", "Write_rows_old",
    "Update_rows_old", "Delete_rows_old", "Write_compressed_rows", "Update_compressed_rows",
    "Delete_compressed_rows",
}

# Where a reference decoder prints something other than the server's value.  The test
# checks that ours is the server's value (the rule in check_value names the case).
KNOWN_BUGS: dict[str, str] = {
    "year-0": (
        "both tools: YEAR is printed as '%04d' of stored+1900 with no zero case, so the "
        "server's 0 ('0000') shows as 1900 (seen live on MariaDB 10.11 and MySQL 9.7); "
        "ours must be 0 where the tool prints 1900"
    ),
    "set-byte-order": (
        "both tools: a SET of more than one byte is printed as its stored little-endian "
        "bytes, each most-significant bit first (members 0..19 print as "
        "b'111111111111111100001111'), which is not the bitmask in binary; ours (the "
        "members) is rendered that way"
    ),
    "binary-padding": (
        "both tools: BINARY(n) is printed without its trailing 0x00 bytes (the binlog "
        "stores it stripped); the server's value, and ours, has n bytes"
    ),
    "mysqlbinlog-geometry": (
        "mysqlbinlog 9.7 cannot print GEOMETRY ('!! Don't know how to handle column "
        "type=255') and prints nothing more of that event (its later columns and rows); "
        "those values are not compared"
    ),
    "mariadb-binlog-quotes": (
        "mariadb-binlog prints ' and \\ inside a string raw (its escape branches are dead "
        "code), so 'a'b\\c' is ambiguous; compared by rendering ours the same way"
    ),
    "mariadb-binlog-v0-rows": (
        "mariadb-binlog prints no rows for pre-GA (v0) row events (Write_rows_old ...); "
        "those events are counted as not comparable"
    ),
}


# --------------------------------------------------------------------------------------
# What the table map says about each column
# --------------------------------------------------------------------------------------

def _collation_codec(cid: int) -> str | None:
    if cid == 63:
        return "binary"
    if cid in (5, 8, 15, 31, 47, 48, 49, 94):
        return "latin1"
    if cid in (11, 65):
        return "ascii"
    if cid in (33, 76, 83) or 192 <= cid <= 223:
        return "utf-8"
    if cid in (45, 46) or 224 <= cid <= 247 or 255 <= cid <= 323:
        return "utf-8"
    return None


def _opt(tm: Any, code: int) -> Any:
    for item in getattr(tm, "optional_metadata", None) or []:
        if item.type == code:
            return item.value
    return None


def _real_type(t: int, meta: int) -> int:
    if t == 254 and meta >> 8 in (ENUM_TYPE, SET_TYPE):
        return meta >> 8
    return t


def column_info(tm: Any) -> list[Column]:
    try:
        layout = TableLayout.from_table_map(tm)
    except RowFramingError:
        return []
    real = [_real_type(t, m) for t, m in zip(layout.types, layout.meta, strict=True)]
    cols = [Column() for _ in real]
    # SIGNEDNESS: one bit per numeric column (YEAR included), MSB first, 1 = unsigned
    sign = _opt(tm, 1)
    if isinstance(sign, bytes | bytearray):
        numeric = [i for i, t in enumerate(real) if t in (1, 2, 3, 8, 9, 246, 4, 5, 13)]
        for k, i in enumerate(numeric):
            if k // 8 < len(sign):
                cols[i].signed = not (sign[k // 8] >> (7 - k % 8)) & 1
    # charsets of character columns
    base = [i for i, t in enumerate(real) if t in (254, 253, 15, 252)]
    per_col = _opt(tm, 3)
    default = _opt(tm, 2)
    n = len(per_col) if per_col is not None else None
    chars = base
    if n is not None:
        for extra in ((), (255,), (242,), (255, 242)):
            cand = [i for i, t in enumerate(real) if t in (254, 253, 15, 252, *extra)]
            if len(cand) == n:
                chars = cand
                break
        else:
            chars = []
        for i, cid in zip(chars, per_col, strict=False):
            cols[i].charset = _collation_codec(cid)
    elif default is not None:
        dflt = _collation_codec(default.default)
        for i in base:
            cols[i].charset = dflt
        for pair in default.columns or []:
            idx, cid = pair.column, pair.collation
            if idx < len(base):
                cols[base[idx]].charset = _collation_codec(cid)
    # ENUM / SET labels
    for code, typ in ((6, ENUM_TYPE), (5, SET_TYPE)):
        labels = _opt(tm, code)
        if labels is None:
            continue
        which = [i for i, t in enumerate(real) if t == typ]
        for i, vals in zip(which, labels, strict=False):
            cols[i].labels = [bytes(v) for v in vals]
    return cols


# --------------------------------------------------------------------------------------
# Our side
# --------------------------------------------------------------------------------------

@dataclass
class OurRows:
    where: str  # 'event pos N', or 'payload at P, inner event pos N'
    pos: int
    type_name: str
    desc: dict[str, Any]
    names: list[str] | None
    cols: list[Column]


def _our_row_event(ev: Event, tables: TableMaps, payload: int | None = None) -> OurRows:
    desc = describe(ev, tables)
    tm = tables.maps.get(ev.body.table_id)
    where = f"event pos {ev.pos}"
    if payload is not None:
        where = f"payload at {payload}, inner event pos {ev.pos}"
    return OurRows(where, ev.pos, ev.type_name, desc, tables.column_names(ev.body.table_id),
                   column_info(tm) if tm is not None else [])


def _ours(path: str) -> tuple[dict[int, OurRows], list[OurRows], BinlogError | None]:
    outer: dict[int, OurRows] = {}
    inner: list[OurRows] = []
    tables = TableMaps()
    try:
        for ev in BinlogReader(path, verify_checksum=False):
            tables.see(ev)
            if ev.type_code in ROWS_EVENTS:
                outer[ev.pos] = _our_row_event(ev, tables)
            elif ev.type_code == T.TRANSACTION_PAYLOAD:
                for iev in inner_events(ev, verify=False):
                    tables.see(iev)
                    if iev.type_code in ROWS_EVENTS:
                        inner.append(_our_row_event(iev, tables, ev.pos))
    except BinlogError as exc:
        return outer, inner, exc
    return outer, inner, None


# --------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------

@dataclass
class Report:
    mismatches: list[str] = field(default_factory=list)
    compared: int = 0
    not_comparable: list[str] = field(default_factory=list)
    undecoded: list[str] = field(default_factory=list)


def _short(v: Any, n: int = 120) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def _index(key: str, names: list[str] | None) -> int | None:
    if key.startswith("@") and key[1:].isdigit():
        return int(key[1:])
    if names and key in names:
        return names.index(key) + 1
    return None


def _image(ours: dict[str, Any] | None, names: list[str] | None) -> dict[int, Any] | None:
    if ours is None:
        return None
    out: dict[int, Any] = {}
    for k, v in ours.items():
        i = _index(k, names)
        out[i if i is not None else -1] = v
    return out


def _compare_partial(where: str, c: int, rv: RefValue, ours: dict[int, Any],
                     diffs: dict[int, Any], ref_before: dict[int, RefValue] | None,
                     rep: Report) -> None:
    """A MySQL partial JSON update of column @c: our diffs must be the tool's operations,
    and our after value (present when the before image has the column) the tool's before
    value with them applied."""
    ops = parse_partial_json(rv.text, c)
    mine = diffs.get(c)
    want_ops = [{"op": op.op.removeprefix("JSON_"), "path": op.path}
                | ({} if op.op == "JSON_REMOVE" else {"value": op.value}) for op in ops]
    if mine is None or not json_equal(
        [{k: v for k, v in d.items() if k in ("op", "path", "value")} for d in mine],
        want_ops,
    ):
        rep.mismatches.append(f"{where}, column @{c} JSON diffs: ours {_short(mine)}, "
                              f"tool {_short(rv.text)}")
    has_before = ref_before is not None and c in ref_before and not ref_before[c].is_null
    if not has_before:
        if c in ours:
            rep.mismatches.append(f"{where}, column @{c}: ours {_short(ours[c])} with no "
                                  "before value to apply the diffs to")
        else:
            rep.not_comparable.append(f"{where}, column @{c}: partial JSON, no before value")
        return
    assert ref_before is not None
    if c not in ours:
        rep.mismatches.append(f"{where}, column @{c}: ours absent, tool {_short(rv.text)}")
        return
    want = apply_json_ops(parse_json_text(ref_before[c].text), ops)
    if not json_equal(ours[c], want):
        rep.mismatches.append(f"{where}, column @{c} JSON: ours {_short(ours[c])}, tool "
                              f"{_short(rv.text)} applied to the before image: {_short(want)}")


def _compare_image(where: str, ours: dict[int, Any], ref: dict[int, RefValue],
                   ref_before: dict[int, RefValue] | None, diffs: dict[int, Any],
                   o: OurRows, truncated: bool, rep: Report, tool: str) -> None:
    partial = {c for c, v in ref.items() if v.type_name == "JSON" and v.text.startswith("JSON_")}
    for c in sorted(partial):
        rep.compared += 1
        try:
            _compare_partial(where, c, ref[c], ours, diffs, ref_before, rep)
        except (Mismatch, ValueError, KeyError, IndexError, TypeError) as exc:
            rep.mismatches.append(f"{where}, column @{c} JSON: ours {_short(ours.get(c))}, "
                                  f"tool {_short(ref[c].text)} (could not compare: {exc!r})")
    printed = {c for c, v in ref.items() if not v.unprintable} - partial
    if truncated:
        extra = set()
        cut = min((c for c, v in ref.items() if v.unprintable), default=None)
        missing = {c for c in printed if c not in ours}
        if cut is not None:
            extra = {c for c in ours if c < cut and c not in ref}
    else:
        missing = set(ref) - set(ours) - partial
        extra = set(ours) - set(ref)
    for c in sorted(missing):
        rep.mismatches.append(f"{where}, column @{c}: ours absent, tool {_short(ref[c].text)}")
    for c in sorted(extra):
        rep.mismatches.append(f"{where}, column @{c}: ours {_short(ours[c])}, tool absent")
    for c in sorted(printed & set(ours)):
        rv = ref[c]
        mine = ours[c]
        col = o.cols[c - 1] if 0 < c <= len(o.cols) else Column()
        if isinstance(mine, dict) and "raw" in mine:
            rep.undecoded.append(f"{where}, column @{c} {rv.type_name}: ours {_short(mine)}, "
                                 f"tool {_short(rv.text)} (not decoded)")
            continue
        rep.compared += 1
        try:
            check_value(mine, rv, col, tool)
        except Mismatch as exc:
            rep.mismatches.append(
                f"{where}, column @{c} {rv.type_name}: ours {_short(mine)}, "
                f"tool {_short(rv.text)} ({exc})")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            rep.mismatches.append(
                f"{where}, column @{c} {rv.type_name}: ours {_short(mine)}, "
                f"tool {_short(rv.text)} (could not compare: {exc!r})")


def compare_group(label: str, group: list[OurRows], ref: RefRows, rep: Report,
                  tool: str) -> None:
    """Our row events ``group`` against the rows the tool printed for them together
    (mariadb-binlog holds back the rows of a statement's events until the one with
    STMT_END_F and prints them all there; mysqlbinlog prints each event's own)."""
    mine: list[tuple[OurRows, int, dict[str, Any]]] = []
    for o in group:
        rows = o.desc.get("rows")
        if rows is None:
            rep.mismatches.append(f"{label}: our event at {o.pos} has no rows "
                                  f"({o.desc.get('warnings')})")
            return
        mine.extend((o, k, row) for k, row in enumerate(rows))
    if not ref.truncated and len(mine) != len(ref.rows):
        at = ", ".join(str(o.pos) for o in group)
        rep.mismatches.append(f"{label}: ours {len(mine)} rows (events at {at}), "
                              f"tool {len(ref.rows)}")
    for (o, k, row), r in zip(mine, ref.rows, strict=False):
        where = f"{label.split(',')[0]}, {o.where}, row {k}"
        kind = {(True, False): "INSERT INTO", (False, False): "UPDATE",
                (False, True): "DELETE FROM"}.get(
            (row["before"] is None, row["after"] is None), "?")
        if kind != r.kind:
            rep.mismatches.append(f"{where}: ours {kind}, tool {r.kind}")
            continue
        for side, img, rimg in (("before", row["before"], r.before),
                                ("after", row["after"], r.after)):
            if rimg is None:
                continue
            ours_img = _image(img, o.names) or {}
            diffs = _image(row.get("json_diffs"), o.names) or {}
            _compare_image(f"{where} {side}", ours_img, rimg, r.before if side == "after"
                           else None, diffs, o, r.truncated, rep, tool)


def _rows_of(e: RefEvent) -> RefRows | None:
    if e.tool_name not in ROW_TOOL_NAMES or not any(ln.startswith("### ") for ln in e.body):
        return None
    return parse_rows(e.body)


def _id(f: CorpusFile) -> str:
    return f"{f.origin}:{f.path.name}"


@pytest.mark.parametrize("cf", CORPUS, ids=_id)
def test_row_values_agree_with_reference_decoder(cf: CorpusFile) -> None:
    ref = reference_events(cf.path, (cf.flavor, cf.major), verbose=2, hexdump=False,
                           force_read=False)
    if not any(_rows_of(e) for e in ref.events):
        why = ref.first_error or "no row events"
        pytest.skip(f"{ref.tool} prints no rows: {why}")
    outer, inner, err = _ours(str(cf.path))
    rep = Report()
    ref_inner = [e for e in ref.inner if e.tool_name in ROW_TOOL_NAMES]
    if ref_inner and len(ref_inner) != len(inner):
        rep.mismatches.append(f"{len(inner)} row events inside payloads, tool {len(ref_inner)}")
    held: list[OurRows] = []  # row events whose rows the tool has not printed yet
    n_inner = 0
    for e in ref.events:
        if e.tool_name not in ROW_TOOL_NAMES:
            continue
        if e.inner:
            o = inner[n_inner] if n_inner < len(inner) else None
            label = f"{cf.path.name}, inner row event {n_inner} (printed at {e.pos})"
            n_inner += 1
        else:
            o = outer.get(e.pos) if e.pos is not None else None
            label = f"{cf.path.name}, event pos {e.pos}"
        if o is None:
            rep.mismatches.append(f"{label}: no row event of ours here ({err})")
            held = []
            continue
        held.append(o)
        rows = _rows_of(e)
        if rows is None:
            if o.desc.get("flags", 0) & STMT_END_F:  # the tool will not print these later
                rep.not_comparable += [f"{cf.path.name}, {h.where}: {ref.tool} printed no rows"
                                       for h in held]
                held = []
            continue
        compare_group(label, held, rows, rep, ref.tool)
        held = []
    for o in held:
        rep.not_comparable.append(f"{cf.path.name}, event pos {o.pos}: tool printed no rows")
    print(f"{cf.short}: {rep.compared} values compared, {len(rep.mismatches)} mismatches, "
          f"{len(rep.not_comparable)} not comparable")
    for line in rep.not_comparable:
        print("  not comparable:", line)
    rep.mismatches += rep.undecoded
    msg = "\n".join(rep.mismatches[:60])
    more = len(rep.mismatches) - 60
    assert not rep.mismatches, f"{len(rep.mismatches)} mismatches" + (
        f" ({more} more)" if more > 0 else "") + ":\n" + msg


def test_known_bug_table_is_documented() -> None:
    assert all(KNOWN_BUGS.values())
