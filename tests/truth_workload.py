"""The workload of ``test_row_values_truth``: tables with a column of every type,
rows of edge values, updates and deletes, and the server's own answer
(``SELECT``) converted to the JSON contract of docs/json.md (DESIGN.md, "Output
contract").

Everything here talks SQL to a live server; nothing decodes a binlog.

SELECT-side normalization (what the server prints -> contract value). Rows are read
over a PyMySQL connection with no result converters (``conv`` holds only the
encoders), so every value arrives as the server's own text: ``str`` in the
connection charset (utf8mb4) for numbers, temporals and text, ``bytes`` for
columns whose result charset is binary. Per column kind:

| kind      | selected as                 | contract value                                 |
| --------- | --------------------------- | ---------------------------------------------- |
| int, year | ``c``                       | ``int(text)`` (YEAR 0 prints ``0000`` -> 0)    |
| bit       | ``c + 0``                   | ``int(text)``                                  |
| decimal   | ``c``                       | the text as printed (``-0.00001``)             |
| float     | ``CAST(c AS DOUBLE)``       | exact double of the float32, then the shortest |
|           |                             | double that reads back as the same float32     |
|           |                             | (``describe.float32``; MariaDB prints FLOAT    |
|           |                             | with 6 digits, so its text is not used)        |
| double    | ``c``                       | ``float(text)`` (servers print shortest form)  |
| temporal  | ``c``                       | the text; TIMESTAMP with time_zone ``+00:00``  |
| text      | ``c``                       | the text converted to utf8mb4 by the server    |
|           |                             | (CHAR without its trailing spaces, as printed) |
| enum, set | ``c`` / ``c + 0``, ``c | 0``| the text; the index/bitmask integer when the   |
|           |                             | test runs without member names (MINIMAL        |
|           |                             | metadata and no caller schema)                 |
| binary    | ``c``                       | base64 of the bytes (BINARY padded with 0x00)  |
| geometry  | ``c``                       | base64 of the internal bytes (SRID + WKB)      |
| json      | ``c``                       | MySQL's JSON text parsed: integers exact,      |
|           |                             | other numbers as a double when the double      |
|           |                             | reads back to the same decimal, else the       |
|           |                             | decimal's text (``describe.json_doc``'s rule)  |
| mjson     | ``c``                       | MariaDB JSON is a LONGTEXT: the text           |
| vector    | ``HEX(c)``                  | list of float32 values (shortest form)         |
| uuid,     | ``c`` / ``HEX(c)``          | the text the server prints with a caller       |
| inet6/4   |                             | schema; without one the binlog cannot know the |
|           |                             | type (a BINARY(16)/(4)): base64 of the bytes   |
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pymysql
import pymysql.converters

from binlogkit.codec.describe import float32

# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Col:
    name: str
    ddl: str
    kind: str  # see the table in the module docstring


@dataclass
class Table:
    name: str
    cols: list[Col]
    rows: list[dict[str, str]] = field(default_factory=list)  # col -> SQL literal
    updates: list[str] = field(default_factory=list)  # statements, "{t}" = qualified name
    deletes: list[str] = field(default_factory=list)

    def col(self, name: str) -> Col:
        return next(c for c in self.cols if c.name == name)


def q(s: str) -> str:
    """A utf8mb4 string literal."""
    return "_utf8mb4'" + pymysql.converters.escape_string(s) + "'"


def hexlit(b: bytes) -> str:
    return "X'" + b.hex() + "'" if b else "''"


# Characters tried in every charset; each charset keeps those the server round-trips.
CHAR_POOL = (
    "aZ09 ~\\'\"%_`"  # ASCII incl. quote/escape characters
    "éßÿ¥€£©°±µ¼ÀÆÐÑÕØÞ"  # Latin-1 / cp1252
    "ŁŐřŠž"  # Latin-2
    "ЖяЁђ"  # Cyrillic
    "Ωαβ"  # Greek
    "שא"  # Hebrew
    "ماء"  # Arabic
    "ก"  # Thai
    "Աա"  # Armenian
    "Ⴀა"  # Georgian
    "漢字中文丂"  # CJK (丂: GBK extension)
    "あカｱ"  # kana, half-width katakana
    "한글"  # Hangul
    "～〜‾∥－￠￡￢"  # characters the Japanese/CJK tables map differently
    "™‰•―"  # cp125x punctuation
    "😀🎉𠀀"  # outside the BMP
)


def representable(conn: Any, charset: str) -> str:
    """The characters of CHAR_POOL that survive utf8mb4 -> ``charset`` -> utf8mb4."""
    chars = list(dict.fromkeys(CHAR_POOL))
    sel = ", ".join(f"CONVERT(CONVERT({q(ch)} USING {charset}) USING utf8mb4) = {q(ch)}"
                    f" COLLATE utf8mb4_bin" for ch in chars)
    with conn.cursor() as cur:
        cur.execute("SELECT " + sel)
        ok = cur.fetchone()
    return "".join(ch for ch, good in zip(chars, ok, strict=True) if str(good) == "1")


def charsets(conn: Any) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS"
                    " ORDER BY CHARACTER_SET_NAME")
        return [str(r[0]) for r in cur.fetchall()]


# --------------------------------------------------------------------------- tables

D65_MAX = "9" * 35 + "." + "9" * 30


def numbers() -> Table:
    ints = [("ti", "TINYINT", -128, 127), ("si", "SMALLINT", -32768, 32767),
            ("mi", "MEDIUMINT", -8388608, 8388607), ("i", "INT", -2147483648, 2147483647),
            ("bi", "BIGINT", -(2**63), 2**63 - 1)]
    cols = [Col("pk", "INT NOT NULL PRIMARY KEY", "int")]
    mins: dict[str, str] = {}
    maxs: dict[str, str] = {}
    for name, ddl, lo, hi in ints:
        cols += [Col(name, ddl, "int"), Col(name + "u", ddl + " UNSIGNED", "int")]
        mins |= {name: str(lo), name + "u": "0"}
        maxs |= {name: str(hi), name + "u": str(2 * hi + 1)}
    cols += [
        Col("d65", "DECIMAL(65,30)", "decimal"), Col("d55", "DECIMAL(5,5)", "decimal"),
        Col("d102", "DECIMAL(10,2)", "decimal"), Col("d100u", "DECIMAL(10,0) UNSIGNED",
                                                    "decimal"),
        Col("f", "FLOAT", "float"), Col("dbl", "DOUBLE", "double"),
        Col("b1", "BIT(1)", "bit"), Col("b13", "BIT(13)", "bit"), Col("b64", "BIT(64)", "bit"),
        Col("y", "YEAR", "year"),
        Col("nn", "INT NOT NULL DEFAULT 7", "int"),
    ]
    mins |= {"d65": "-" + D65_MAX, "d55": "-0.99999", "d102": "-99999999.99", "d100u": "0",
             "f": "-3.40282e38", "dbl": "-1.7976931348623157e308", "b1": "b'0'",
             "b13": "b'0'", "b64": "0", "y": "1901", "nn": "-1"}
    maxs |= {"d65": D65_MAX, "d55": "0.99999", "d102": "99999999.99", "d100u": "9999999999",
             "f": "3.40282e38", "dbl": "1.7976931348623157e308", "b1": "b'1'",
             "b13": "b'1111111111111'", "b64": "18446744073709551615", "y": "2155",
             "nn": "2147483647"}
    zeros = {c.name: "0" for c in cols[1:]} | {"y": "0", "d65": "-0.0", "dbl": "-0e0"}
    small = {"ti": "-1", "tiu": "1", "si": "-1", "siu": "1", "mi": "-1", "miu": "8388608",
             "i": "-1", "iu": "2147483648", "bi": "-1", "biu": "9223372036854775808",
             "d65": "-0.000000000000000000000000000001", "d55": "0.00001", "d102": "-0.01",
             "d100u": "1", "f": "1.17549435e-38", "dbl": "4.9e-324", "b1": "1",
             "b13": "b'1000000000001'", "b64": "9223372036854775808", "y": "2000",
             "nn": "0"}
    fracs = {"ti": "1", "f": "0.1", "dbl": "0.1", "y": "69", "nn": "5",
             "d65": "12345678901234567890.123456789012345678901234567890", "d102": "-12.50"}
    t = Table("t_num", cols)
    t.rows = [{"pk": "1"} | mins, {"pk": "2"} | maxs, {"pk": "3", "nn": "0"}, {"pk": "4"} | zeros,
              {"pk": "5"} | small, {"pk": "6"} | fracs, {"pk": "7"} | maxs]
    t.updates = [
        "UPDATE {t} SET i = i + 1, f = 1e-45, dbl = -2.2250738585072014e-308 WHERE pk = 1",
        "UPDATE {t} SET " + ", ".join(f"{k} = {v}" for k, v in maxs.items()) + " WHERE pk = 3",
        "UPDATE {t} SET " + ", ".join(f"{c.name} = NULL" for c in cols[1:-1]) + " WHERE pk = 2",
        "UPDATE {t} SET pk = 40, d55 = -0.00001 WHERE pk = 4",
        "UPDATE {t} SET biu = biu - 1, b64 = b64 - 1 WHERE pk IN (5, 7)",
    ]
    t.deletes = ["DELETE FROM {t} WHERE pk = 7"]
    return t


def temporals() -> Table:
    cols = [Col("pk", "INT NOT NULL PRIMARY KEY", "int"), Col("dt", "DATE", "temporal"),
            Col("tm", "TIME", "temporal")]
    for n in range(1, 7):
        cols.append(Col(f"tm{n}", f"TIME({n})", "temporal"))
    for n in range(7):
        cols.append(Col(f"dtm{n}", f"DATETIME({n})", "temporal"))
    for n in range(7):
        cols.append(Col(f"ts{n}", f"TIMESTAMP({n}) NULL DEFAULT NULL", "temporal"))

    def fill(date: str, time: str, ftime: str, dtm: str, ts: str) -> dict[str, str]:
        row = {"dt": f"'{date}'", "tm": f"'{time}'"}
        for n in range(1, 7):
            row[f"tm{n}"] = f"'{ftime}'"
        for n in range(7):
            row[f"dtm{n}"] = f"'{dtm}'"
            row[f"ts{n}"] = f"'{ts}'"
        return row

    t = Table("t_time", cols)
    t.rows = [
        {"pk": "1"} | fill("1000-01-01", "-838:59:59", "-838:59:58.999999",
                           "1000-01-01 00:00:00", "1970-01-01 00:00:01"),
        {"pk": "2"} | fill("9999-12-31", "838:59:59", "838:59:58.999999",
                           "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07.999999"),
        {"pk": "3"},
        {"pk": "4"} | fill("0000-00-00", "00:00:00", "-00:00:00.000001",
                           "0000-00-00 00:00:00", "0000-00-00 00:00:00"),
        {"pk": "5"} | fill("2024-00-15", "-00:00:01", "-12:34:56.78",
                           "2024-02-00 12:00:00.5", "2000-02-29 23:59:59.123456"),
        {"pk": "6"} | fill("2024-02-29", "-00:00:00", "-00:00:00.5",
                           "0000-01-01 00:00:00.000001", "1999-12-31 23:59:59.999999"),
        {"pk": "7"} | fill("0001-01-01", "-01:00:00", "00:00:00.1",
                           "2024-00-00 00:00:00", "2024-06-01 12:00:00"),
    ]
    t.rows[4] |= {"tm1": "'-00:00:00.1'", "tm3": "'-00:00:01.5'", "tm6": "'-00:00:00.000001'"}
    t.updates = [
        "UPDATE {t} SET tm6 = '-838:59:58.999999', ts6 = '1970-01-01 00:00:01.000001'"
        " WHERE pk = 1",
        "UPDATE {t} SET dt = '2024-01-01', tm = '12:00:00', dtm3 = '2024-01-01 00:00:00.123'"
        " WHERE pk = 3",
        "UPDATE {t} SET ts0 = NULL, dtm6 = NULL, tm2 = '-00:00:00.01' WHERE pk = 2",
        "UPDATE {t} SET pk = 70 WHERE pk = 7",
    ]
    t.deletes = ["DELETE FROM {t} WHERE pk = 6"]
    return t


def strings(conn: Any, charsets_: Sequence[str]) -> Table:
    """CHAR/VARCHAR/TEXT in every charset (one triple of columns per charset)."""
    cols = [Col("pk", "INT NOT NULL PRIMARY KEY", "int")]
    samples: dict[str, str] = {}
    for cs in charsets_:
        if cs == "binary":
            continue
        samples[cs] = representable(conn, cs)
        cols += [Col(f"c_{cs}", f"CHAR(10) CHARACTER SET {cs}", "text"),
                 Col(f"v_{cs}", f"VARCHAR(24) CHARACTER SET {cs}", "text"),
                 Col(f"t_{cs}", f"TEXT CHARACTER SET {cs}", "text")]
    rows: list[dict[str, str]] = [{"pk": str(k)} for k in range(1, 8)]
    for cs, chars in samples.items():
        ascii_ = "".join(ch for ch in chars if ord(ch) < 128)
        wide = "".join(ch for ch in chars if ord(ch) >= 128)
        pieces = [wide[i : i + 10] for i in range(0, max(len(wide), 1), 10)] or [""]
        rows[0] |= {f"c_{cs}": q(wide[:10] or "x"), f"v_{cs}": q(chars[-24:]),
                    f"t_{cs}": q(chars)}
        rows[1] |= {f"c_{cs}": q(""), f"v_{cs}": q(""), f"t_{cs}": q("")}
        # row 3: NULL everywhere
        rows[3] |= {f"c_{cs}": q("ab  "), f"v_{cs}": q("ab  "), f"t_{cs}": q(" x \t\n ")}
        rows[4] |= {f"c_{cs}": q(pieces[-1][:10]), f"v_{cs}": q(ascii_[:24]),
                    f"t_{cs}": q(ascii_ * 3 + wide * 2)}
        rows[5] |= {f"c_{cs}": q(" lead"), f"v_{cs}": q("a\0b\0"), f"t_{cs}": q("\0")}
        rows[6] |= {f"c_{cs}": q("é" if "é" in chars else "e"), f"v_{cs}": q("z"),
                    f"t_{cs}": q(chars * 50)}
    t = Table("t_str", cols, rows)
    names = [c.name for c in cols[1:]]
    t.updates = [
        "UPDATE {t} SET " + ", ".join(f"{n} = {rows[0][n]}" for n in names) + " WHERE pk = 3",
        "UPDATE {t} SET " + ", ".join(f"{n} = CONCAT({n}, 'q ')" for n in names if
                                      n.startswith("v_")) + " WHERE pk IN (1, 5)",
        "UPDATE {t} SET " + ", ".join(f"{n} = NULL" for n in names if n.startswith("c_"))
        + " WHERE pk = 2",
    ]
    t.deletes = ["DELETE FROM {t} WHERE pk = 7"]
    return t


SET_MEMBERS = [f"m{i}" for i in range(64)]


def others(flavor: str) -> Table:
    """Binary strings, ENUM, SET, JSON, GEOMETRY and the flavor's own types."""
    cols = [
        Col("pk", "INT NOT NULL PRIMARY KEY", "int"),
        Col("bn", "BINARY(8)", "binary"), Col("vb", "VARBINARY(300)", "binary"),
        Col("tb", "TINYBLOB", "binary"), Col("bl", "BLOB", "binary"),
        Col("mb", "MEDIUMBLOB", "binary"), Col("lb", "LONGBLOB", "binary"),
        Col("vcb", "VARCHAR(10) CHARACTER SET binary", "binary"),
        Col("e", "ENUM('a','b c','é','😀','') CHARACTER SET utf8mb4", "enum"),
        Col("el", "ENUM('x','é','ÿ') CHARACTER SET latin1", "enum"),
        Col("eu", "ENUM('x','é','😀') CHARACTER SET utf16", "enum"),
        Col("s", "SET(" + ",".join(f"'{m}'" for m in SET_MEMBERS) + ")", "set"),
        Col("sl", "SET('ä','b','ÿ') CHARACTER SET latin1", "set"),
        Col("g", "GEOMETRY", "geometry"), Col("pt", "POINT", "geometry"),
    ]
    if flavor == "mysql":
        cols += [Col("j", "JSON", "json"), Col("vec", "VECTOR(3)", "vector")]
    else:
        cols += [Col("j", "JSON", "mjson"), Col("uu", "UUID", "uuid"),
                 Col("ip6", "INET6", "inet6"), Col("ip4", "INET4", "inet4")]
    big = bytes(range(256)) * 300  # 76800 bytes: 3-byte length in MEDIUMBLOB/LONGBLOB
    doc = {"s": "x" * 20, "n": 1, "a": [1, 2, 3], "o": {"k": "v"}}
    rows: list[dict[str, str]] = [
        {"pk": "1", "bn": hexlit(b"ab\0\0"), "vb": hexlit(b"ab\0\0"), "tb": hexlit(b"\0"),
         "bl": hexlit(bytes(range(256))), "mb": hexlit(big), "lb": hexlit(big[::-1]),
         "vcb": hexlit(b"z\0 "), "e": q("a"), "el": q("é"), "eu": q("😀"),
         "s": q(",".join(SET_MEMBERS)), "sl": q("ä,ÿ"),
         "g": "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))')",
         "pt": "ST_GeomFromText('POINT(1.5 -2.25)')"},
        {"pk": "2", "bn": hexlit(b""), "vb": hexlit(b""), "tb": hexlit(b""), "bl": hexlit(b""),
         "mb": hexlit(b""), "lb": hexlit(b""), "vcb": hexlit(b""), "e": q(""), "el": q("x"),
         "eu": q("x"), "s": q(""), "sl": q(""),
         "g": "ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')",
         "pt": "ST_GeomFromText('POINT(0 0)')"},
        {"pk": "3"},
        {"pk": "4", "bn": hexlit(b"\xff" * 8), "vb": hexlit(b"\0" * 300),
         "tb": hexlit(b"\xff" * 255), "bl": hexlit(b" "), "mb": hexlit(b"\0\0"),
         "lb": hexlit(b"x "), "vcb": hexlit(b"\0" * 10), "e": q("😀"), "el": q("ÿ"),
         "eu": q("é"), "s": q("m0,m63"), "sl": q("b"),
         "g": "ST_GeomFromText('LINESTRING(0 0,1 1,2 1e300)')",
         "pt": "ST_GeomFromText('POINT(-0 1e-300)')"},
        {"pk": "5", "bn": hexlit(b"\0" * 8), "bl": hexlit(big[:70000]), "e": q("b c"),
         "s": q("m31,m32"), "sl": q("ÿ,ä,b")},
    ]
    if flavor == "mysql":
        docs = [
            json.dumps(doc | {"u": "😀é\"\\\n\u0000\u001f", "big": 2**64 - 1,
                              "neg": -(2**63), "d": 1.7976931348623157e308, "f": 0.1,
                              "t": True, "fa": False, "nul": None, "e": {}, "ea": [],
                              "ключ": "значение"}),
            "[]",
            None,
            "null",
            json.dumps(["x" * 100] * 700),  # > 64 KiB: the large layout
        ]
        for row, d in zip(rows, docs, strict=True):
            if d is not None:
                row["j"] = q(d)
        rows[1]["j"] = ("JSON_OBJECT('dec', CAST(3.14159265358979323846 AS DECIMAL(30,20)),"
                        " 'd5', CAST(5.00 AS DECIMAL(5,2)), 'dt', CAST('2024-02-29 12:34:56.5'"
                        " AS DATETIME(6)), 'date', CAST('2024-01-01' AS DATE), 'time',"
                        " CAST('-01:02:03.25' AS TIME(2)), 'bin', CAST('ab' AS BINARY),"
                        " 'longbin', CAST(REPEAT('ab', 60) AS BINARY), 'bit', b'101',"
                        " 'arr', JSON_ARRAY(1.5, -0.0, 1e20, 'é'))")
        vecs = ["'[1.5,0.1,-3e38]'", "'[0,0,0]'", None, "'[1.1754944e-38,-0.0,3.4028234e38]'", None]
        for row, v in zip(rows, vecs, strict=True):
            if v is not None:
                row["vec"] = f"STRING_TO_VECTOR({v})"
    else:
        mj = ['{"a": 1, "u": "😀"}', '""', None, "null", json.dumps(["x" * 100] * 700)]
        for row, d in zip(rows, mj, strict=True):
            if d is not None:
                row["j"] = q(d)
        extra = [
            ("'6ccd780c-baba-1026-9564-5b8c656024db'", "'::1'", "'1.2.3.4'"),
            ("'00000000-0000-0000-0000-000000000000'", "'::'", "'0.0.0.0'"),
            ("NULL", "'::1.2.3.4'", "NULL"),
            ("'ffffffff-ffff-ffff-ffff-ffffffffffff'",
             "'2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'", "'255.255.255.255'"),
            ("'01234567-89ab-cdef-8123-456789abcdef'", "'::ffff:1.2.3.4'", "'10.0.0.1'"),
        ]
        for row, x in zip(rows, extra, strict=True):
            if x is not None:
                row |= {"uu": x[0], "ip6": x[1], "ip4": x[2]}
    t = Table("t_misc", cols, rows)
    t.updates = [
        "UPDATE {t} SET vb = X'00', e = 'é', s = 'm1,m2,m62' WHERE pk = 1",
        "UPDATE {t} SET bl = X'0102', sl = 'b' WHERE pk = 4",
        "UPDATE {t} SET bn = X'01', el = 'é' WHERE pk IN (2, 5)",
    ]
    if flavor == "mysql":
        t.updates += [
            # partial JSON updates (logged as diffs with PARTIAL_JSON)
            "UPDATE {t} SET j = JSON_SET(j, '$.n', 2, '$.new', 'é') WHERE pk = 1",
            "UPDATE {t} SET j = JSON_REPLACE(j, '$.s', 'short') WHERE pk = 1",
            "UPDATE {t} SET j = JSON_REMOVE(j, '$.a[0]', '$.o.k') WHERE pk = 1",
            "UPDATE {t} SET j = JSON_SET(j, '$[0]', 'y') WHERE pk = 5",
            "UPDATE {t} SET j = JSON_ARRAY_APPEND(j, '$', 1), pt = ST_GeomFromText("
            "'POINT(3 4)') WHERE pk = 2",
            "UPDATE {t} SET j = JSON_SET(j, '$.dec', 1.5), vec = STRING_TO_VECTOR('[1,2,3]')"
            " WHERE pk = 2",
        ]
    else:
        t.updates += [
            "UPDATE {t} SET uu = '11111111-2222-1333-8444-555555555555', ip6 = 'fe80::1'"
            " WHERE pk = 1",
            "UPDATE {t} SET j = JSON_SET(j, '$.a', 2) WHERE pk = 1",
        ]
    t.updates += ["UPDATE {t} SET pk = 50 WHERE pk = 5"]
    t.deletes = ["DELETE FROM {t} WHERE pk = 4"]
    return t


def tables(conn: Any, flavor: str) -> list[Table]:
    return [numbers(), temporals(), strings(conn, charsets(conn)), others(flavor)]


# --------------------------------------------------------------------------- running


def raw_connection(server: Any, **kw: Any) -> Any:
    """A connection that returns every value as the server's text (or bytes)."""
    enc = {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}
    return server.connect(conv=enc, **kw)


def run(conn: Any, db: str, tabs: Iterable[Table]) -> None:
    """Create ``db`` and the tables, insert the rows, then update and delete."""
    tabs = list(tabs)
    statements = [f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4"]
    for t in tabs:
        ddl = ", ".join(f"`{c.name}` {c.ddl}" for c in t.cols)
        statements.append(f"CREATE TABLE `{db}`.`{t.name}` ({ddl}) ENGINE=InnoDB")
    for t in tabs:
        names = [c.name for c in t.cols]
        for row in t.rows:
            values = ", ".join(row.get(n, "NULL") for n in names)
            statements.append(f"INSERT INTO `{db}`.`{t.name}` ({', '.join(map(_qi, names))})"
                              f" VALUES ({values})")
    for t in tabs:
        statements += [s.format(t=f"`{db}`.`{t.name}`") for s in (*t.updates, *t.deletes)]
    with conn.cursor() as cur:
        for sql in statements:
            try:
                cur.execute(sql)
            except pymysql.MySQLError as exc:
                raise RuntimeError(f"workload statement failed: {exc}\n{sql[:2000]}") from None


def _qi(name: str) -> str:
    return f"`{name}`"


# --------------------------------------------------------------------------- truth


def select_expr(col: Col, named_members: bool, typed: bool) -> str:
    c = _qi(col.name)
    if col.kind == "float":
        return f"CAST({c} AS DOUBLE)"
    if col.kind == "bit" or (col.kind == "enum" and not named_members):
        return f"{c} + 0"
    if col.kind == "set" and not named_members:
        return f"{c} | 0"  # + 0 would give a DOUBLE past 2**53
    if col.kind == "vector":
        return f"HEX({c})"
    if col.kind in ("uuid", "inet6", "inet4") and not typed:
        return f"HEX({c})"
    return c


def truth_value(col: Col, v: Any, named_members: bool, typed: bool) -> Any:
    """The contract value of what the server printed for ``col``."""
    if v is None:
        return None
    k = col.kind
    if k in ("int", "year", "bit") or (k in ("enum", "set") and not named_members):
        return int(v)
    if k == "float":
        return float32(float(v))
    if k == "double":
        return float(v)
    if k in ("decimal", "temporal", "text", "enum", "set", "mjson"):
        return _str(v)
    if k in ("binary", "geometry"):
        return base64.b64encode(_bytes(v)).decode("ascii")
    if k == "json":
        return parse_mysql_json(_str(v))
    if k == "vector":
        raw = bytes.fromhex(_str(v))
        return [float32(x) for x in struct.unpack(f"<{len(raw) // 4}f", raw)]
    if k in ("uuid", "inet6", "inet4"):
        if typed:
            return _str(v)
        return base64.b64encode(bytes.fromhex(_str(v))).decode("ascii")
    raise AssertionError(f"unknown kind {k}")


def _str(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes | bytearray) else str(v)


def _bytes(v: Any) -> bytes:
    return bytes(v) if isinstance(v, bytes | bytearray) else str(v).encode("utf-8")


def _number(text: str) -> Any:
    d = Decimal(text)
    f = float(text)
    return f if Decimal(repr(f)) == d else format(d, "f")


def parse_mysql_json(text: str) -> Any:
    """MySQL's JSON text as contract data (see the module docstring)."""
    return json.loads(text, parse_float=_number)


def truth(conn: Any, db: str, table: Table, named_members: bool,
          typed: bool) -> dict[int, dict[str, Any]]:
    """``SELECT *`` of the table as {pk: {column: contract value}}."""
    sel = ", ".join(select_expr(c, named_members, typed) for c in table.cols)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {sel} FROM `{db}`.`{table.name}` ORDER BY pk")
        out: dict[int, dict[str, Any]] = {}
        for r in cur.fetchall():
            row = {c.name: truth_value(c, v, named_members, typed)
                   for c, v in zip(table.cols, r, strict=True)}
            out[int(row["pk"])] = row
    return out


def same(a: Any, b: Any) -> bool:
    """Contract equality: numbers by value (1 == 1.0), booleans only equal booleans,
    -0.0 only equals -0.0, object key order ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, float) and isinstance(b, float) and a == 0 == b:
            return str(a) == str(b)
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
