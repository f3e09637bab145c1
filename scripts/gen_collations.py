#!/usr/bin/env python3
"""Generate binlogkit/codec/collations.py from live MariaDB 10.11 and MySQL 9.7 servers.

    python scripts/gen_collations.py                      # start private servers (binlogkit.lab)
    python scripts/gen_collations.py --mariadb-url mariadb://root@127.0.0.1:3306 \\
                                     --mysql-url mysql://root@127.0.0.1:3307

What it asks the servers and writes:

- ``COLLATIONS``: every collation id a table map can carry, per flavor:
  ``information_schema.COLLATIONS`` plus, on MariaDB 10.10+,
  ``COLLATION_CHARACTER_SET_APPLICABILITY`` (the per-charset ids of the
  ``uca1400_*`` collations, listed there under their FULL_COLLATION_NAME).
- ``SINGLE_BYTE`` / ``CHARMAPS``: for every single-byte charset, what each of
  the 256 bytes means to the server (``CONVERT(CONVERT(UNHEX('xx') USING cs)
  USING utf32)``). A byte the server converts to ``?`` or U+FFFD has no
  Unicode meaning; a byte mapping to the same character as a lower byte is
  ambiguous; both become undefined (they decode to nothing, so such a value
  stays bytes). When a Python codec decodes exactly the defined bytes, to the
  same characters, ``SINGLE_BYTE`` names it; otherwise ``CHARMAPS`` holds the
  server's table (U+FFFE = undefined) and charsets.py registers a codec for it.
- ``MULTI_BYTE``: for each multi-byte legacy charset, the Python codec used,
  the *suspect* characters (Python decodes some byte sequence to them, the
  sequence re-encodes identically, but the server means something else or
  nothing) and whether the scan found the codec exact. The scan covers every
  1- and 2-byte string, every ``8F xx xx`` for ujis/eucjpms and every 4-byte
  GB18030 sequence (MySQL only: MariaDB has no gb18030).

Both flavors must agree on a charset's bytes; where they do not, the byte (or
character) is treated as undefined (or suspect).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pymysql

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "binlogkit" / "codec" / "collations.py"
COMMAND = "python scripts/gen_collations.py"

# Python codec to try for each single-byte charset (a custom table is generated when it differs).
SINGLE_BYTE_CANDIDATES = {
    "armscii8": None, "ascii": "ascii", "cp1250": "cp1250", "cp1251": "cp1251",
    "cp1256": "cp1256", "cp1257": "cp1257", "cp850": "cp850", "cp852": "cp852",
    "cp866": "cp866", "dec8": None, "geostd8": None, "greek": "iso8859_7",
    "hebrew": "iso8859_8", "hp8": "hp_roman8", "keybcs2": None, "koi8r": "koi8_r",
    "koi8u": "koi8_u", "latin1": "cp1252", "latin2": "iso8859_2", "latin5": "iso8859_9",
    "latin7": "iso8859_13", "macce": "mac_latin2", "macroman": "mac_roman", "swe7": None,
    "tis620": "tis_620",
}
# Python codec for each multi-byte legacy charset (chosen by the scan: fewest disagreements).
MULTI_BYTE_CODECS = {
    "big5": "big5", "cp932": "cp932", "eucjpms": "euc_jp", "euckr": "cp949",
    "gb18030": "gb18030", "gb2312": "gb2312", "gbk": "gbk", "sjis": "shift_jis",
    "ujis": "euc_jp",
}
UNICODE = {"utf8mb3", "utf8", "utf8mb4", "ucs2", "utf16", "utf16le", "utf32", "binary"}
UNDEFINED = "\ufffe"
QMARK = 0x3F


class Conn:
    """One autocommit connection; ``rows(sql)`` returns all rows."""

    def __init__(self, flavor: str, conn: pymysql.connections.Connection[Any],
                 version: str) -> None:
        self.flavor, self.conn, self.version = flavor, conn, version

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())


# --- server side -------------------------------------------------------------------


def collations(c: Conn) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    for cid, cs, name in c.rows("SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME "
                                "FROM information_schema.COLLATIONS WHERE ID IS NOT NULL"):
        out[int(cid)] = (str(cs), str(name))
    if c.flavor == "mariadb":
        cols = {str(r[0]).upper() for r in c.rows(
            "SHOW COLUMNS FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY")}
        if {"ID", "FULL_COLLATION_NAME"} <= cols:
            for cid, cs, name in c.rows(
                    "SELECT ID, CHARACTER_SET_NAME, FULL_COLLATION_NAME FROM "
                    "information_schema.COLLATION_CHARACTER_SET_APPLICABILITY"):
                prev = out.setdefault(int(cid), (str(cs), str(name)))
                if prev != (str(cs), str(name)):
                    raise SystemExit(f"mariadb: collation id {cid} is {prev} and {(cs, name)}")
    return out


def charsets(c: Conn) -> dict[str, int]:
    return {str(r[0]): int(r[3]) for r in c.rows("SHOW CHARACTER SET")}


def _hex_to_cps(h: str | None) -> tuple[int, ...] | None:
    """utf32 HEX() output as code points; None when the server refused (MySQL: NULL)."""
    if h is None:
        return None
    return tuple(int(h[i:i + 8], 16) for i in range(0, len(h), 8))


def single_byte_table(c: Conn, cs: str) -> list[int | None]:
    sel = ", ".join(f"HEX(CONVERT(CONVERT(UNHEX('{b:02X}') USING {cs}) USING utf32))"
                    for b in range(256))
    row = c.rows("SELECT " + sel)[0]
    out: list[int | None] = []
    for b, h in enumerate(row):
        cps = _hex_to_cps(h)
        if cps is None or len(cps) != 1 or cps[0] == 0xFFFD or (cps[0] == QMARK and b != QMARK):
            out.append(None)
        else:
            out.append(cps[0])
    return out


def _setup_numbers(c: Conn) -> None:
    c.rows("CREATE DATABASE IF NOT EXISTS binlogkit_charsets")
    c.rows("CREATE TABLE IF NOT EXISTS binlogkit_charsets.n (i INT PRIMARY KEY)")
    c.rows("INSERT IGNORE INTO binlogkit_charsets.n VALUES "
           + ",".join(f"({i})" for i in range(256)))


def scan(c: Conn, cs: str, prefix: str = "", tails: int = 2,
         where: str = "") -> Iterator[tuple[bytes, tuple[int, ...] | None]]:
    """Every ``prefix`` + ``tails`` bytes string, with the server's utf32 code points."""
    names = "abcd"[:tails]
    num = "+".join(f"{n}.i*{256 ** (tails - 1 - k)}" for k, n in enumerate(names))
    hexes = ",".join(f"LPAD(HEX({n}.i),2,'0')" for n in names)
    frm = ", ".join(f"binlogkit_charsets.n {n}" for n in names)
    sql = (f"SELECT {num}, HEX(CONVERT(CONVERT(UNHEX(CONCAT('{prefix}',{hexes})) USING {cs}) "
           f"USING utf32)) FROM {frm} {where}")
    pre = bytes.fromhex(prefix)
    for k, h in c.rows(sql):
        yield pre + int(k).to_bytes(tails, "big"), _hex_to_cps(h)


def multi_byte_samples(c: Conn, cs: str) -> Iterator[tuple[bytes, tuple[int, ...] | None]]:
    yield from scan(c, cs, tails=1)
    yield from scan(c, cs, tails=2)
    if cs in ("ujis", "eucjpms"):
        yield from scan(c, cs, prefix="8F", tails=2)
    if cs == "gb18030":
        for b1 in range(0x81, 0xFF):
            yield from scan(c, cs, prefix=f"{b1:02X}", tails=3,
                            where="WHERE a.i BETWEEN 48 AND 57 AND c.i BETWEEN 48 AND 57 "
                                  "AND b.i BETWEEN 129 AND 254")


# --- analysis -----------------------------------------------------------------------


def merge_tables(tables: list[list[int | None]]) -> list[int | None]:
    """Bytes both flavors map alike; ambiguous bytes (same char as a lower byte) dropped."""
    merged: list[int | None] = [t if all(x[b] == t for x in tables) else None
                                for b, t in enumerate(tables[0])]
    seen: set[int] = set()
    for b, cp in enumerate(merged):
        if cp is not None:
            if cp in seen:
                merged[b] = None
            seen.add(cp)
    return merged


def python_matches(table: list[int | None], codec: str | None) -> bool:
    if codec is None:
        return False
    for b, cp in enumerate(table):
        try:
            got: int | None = ord(bytes([b]).decode(codec))
        except UnicodeDecodeError:
            got = None
        if got != cp:
            return False
    return True


def analyse_multi(codec: str, samples: Iterable[tuple[bytes, tuple[int, ...] | None]]
                  ) -> tuple[set[str], bool, dict[str, int]]:
    """(suspect chars, exact, counts) for ``codec`` against the server's conversions.

    A character is suspect when a sequence Python decodes to it (and re-encodes
    identically) means something else, or nothing, to the server. A differing
    multi-character string blames the positions that differ when the server
    returned as many characters, else its characters that no matching sequence
    produced; ``unexplained`` counts differing strings where that blames none.
    """
    suspect: set[str] = set()
    verified: set[str] = set()
    pending: list[str] = []
    counts = {"match": 0, "python-rejects": 0, "not-injective": 0, "differ": 0,
              "unexplained": 0}
    for raw, cps in samples:
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            counts["python-rejects"] += 1
            continue
        if text.encode(codec) != raw:
            counts["not-injective"] += 1  # the round-trip check catches these
            continue
        if cps is not None and tuple(map(ord, text)) == cps:
            counts["match"] += 1
            verified.update(text)
            continue
        counts["differ"] += 1  # server: other characters, '?' or NULL
        if len(text) == 1:
            suspect.add(text)
        elif cps is not None and len(cps) == len(text):
            suspect.update(ch for ch, cp in zip(text, cps, strict=True) if ord(ch) != cp)
        else:
            pending.append(text)
    for text in pending:
        blamed = {ch for ch in text if ch in suspect or ch not in verified}
        if not blamed:
            counts["unexplained"] += 1
        suspect |= blamed
    exact = counts["not-injective"] == 0 and counts["differ"] == 0
    return suspect, exact, counts


# --- output ---------------------------------------------------------------------------


def _str_literal(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch not in "\\\"":
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


def render(versions: dict[str, str], colls: dict[str, dict[int, tuple[str, str]]],
           single: dict[str, str], charmaps: dict[str, str],
           multi: dict[str, tuple[str, str, bool]]) -> str:
    lines = [
        '"""Collation ids and charset tables of MariaDB and MySQL (generated data).',
        "",
        f"Generated by ``{COMMAND}`` from",
        " and ".join(f"{f} {versions[f]}" for f in sorted(versions)) + ".",
        "Do not edit: re-run the generator. See binlogkit/codec/charsets.py for the API.",
        '"""',
        "",
        "# flavor -> collation id -> (charset name, collation name)",
        "COLLATIONS: dict[str, dict[int, tuple[str, str]]] = {",
    ]
    for flavor in sorted(colls):
        lines.append(f'    "{flavor}": {{')
        for cid, (cs, name) in sorted(colls[flavor].items()):
            lines.append(f'        {cid}: ("{cs}", "{name}"),')
        lines.append("    },")
    lines += [
        "}",
        "",
        "# single-byte charset -> Python codec decoding it as the server does",
        '# ("" = none does; CHARMAPS holds the server\'s table)',
        "SINGLE_BYTE: dict[str, str] = {",
        *(f'    "{cs}": "{codec}",' for cs, codec in sorted(single.items())),
        "}",
        "",
        "# single-byte charset -> 256-character decoding table; U+FFFE = no Unicode meaning",
        "CHARMAPS: dict[str, str] = {",
    ]
    for cs, table in sorted(charmaps.items()):
        lines.append(f'    "{cs}": (')
        chunk = ""
        for ch in table:
            if len(_str_literal(chunk + ch)) > 90:
                lines.append(f"        {_str_literal(chunk)}")
                chunk = ""
            chunk += ch
        lines.append(f"        {_str_literal(chunk)}")
        lines.append("    ),")
    lines += [
        "}",
        "",
        "# multi-byte charset -> (Python codec, suspect characters, exact)",
        "MULTI_BYTE: dict[str, tuple[str, str, bool]] = {",
    ]
    for cs, (codec, sus, exact) in sorted(multi.items()):
        lines.append(f'    "{cs}": ("{codec}", {_str_literal(sus)}, {exact}),')
    lines += ["}", ""]
    return "\n".join(lines)


def connect(server: Any) -> Conn:
    conn = server.connect()
    return Conn(server.flavor, conn, str(server.version))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--mariadb-url", help="use this MariaDB instead of starting one")
    ap.add_argument("--mysql-url", help="use this MySQL instead of starting one")
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from binlogkit.lab import Server, start_server

    started: list[Any] = []
    conns: dict[str, Conn] = {}
    try:
        for flavor, url in (("mariadb", args.mariadb_url), ("mysql", args.mysql_url)):
            if url:
                srv = Server.attach(url)
                if srv.flavor != flavor:
                    raise SystemExit(f"{url} is {srv.flavor}, not {flavor}")
            else:
                print(f"starting {flavor} ...", file=sys.stderr)
                srv = start_server(flavor)  # type: ignore[arg-type]
                started.append(srv)
            conns[flavor] = connect(srv)
        text = generate(conns)
    finally:
        for c in conns.values():
            c.conn.close()
        for srv in started:
            srv.stop(remove_data=True)
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def generate(conns: dict[str, Conn]) -> str:
    colls = {f: collations(c) for f, c in conns.items()}
    sets = {f: charsets(c) for f, c in conns.items()}
    names = sorted(set().union(*sets.values()))
    single: dict[str, str] = {}
    charmaps: dict[str, str] = {}
    multi: dict[str, tuple[str, str, bool]] = {}
    for c in conns.values():
        _setup_numbers(c)
    for cs in names:
        have = [c for f, c in conns.items() if cs in sets[f]]
        maxlen = max(sets[f][cs] for f in conns if cs in sets[f])
        if cs in UNICODE:
            continue
        if maxlen == 1:
            table = merge_tables([single_byte_table(c, cs) for c in have])
            cand = SINGLE_BYTE_CANDIDATES.get(cs)
            if python_matches(table, cand):
                assert cand is not None
                single[cs] = cand
            else:
                single[cs] = ""
                charmaps[cs] = "".join(UNDEFINED if cp is None else chr(cp) for cp in table)
            undefined = [f"{b:02X}" for b, cp in enumerate(table) if cp is None]
            print(f"{cs:9} {single[cs] or 'custom':11} undefined: {' '.join(undefined)}",
                  file=sys.stderr)
            continue
        codec = MULTI_BYTE_CODECS.get(cs)
        if codec is None:
            print(f"{cs}: no Python codec; values stay bytes", file=sys.stderr)
            continue
        suspect: set[str] = set()
        exact = True
        for c in have:
            sus, ex, counts = analyse_multi(codec, multi_byte_samples(c, cs))
            suspect |= sus
            exact = exact and ex
            print(f"{cs:9} {codec:11} {c.flavor}: {counts} suspect: "
                  + " ".join(f"U+{ord(ch):04X}" for ch in sorted(sus)), file=sys.stderr)
            if counts["unexplained"]:
                raise SystemExit(f"{cs}/{codec} on {c.flavor}: {counts['unexplained']} strings "
                                 "differ from the server in a way no suspect character explains")
        multi[cs] = (codec, "".join(sorted(suspect)), exact)
    for c in conns.values():
        c.rows("DROP DATABASE IF EXISTS binlogkit_charsets")
    versions = {f: c.version for f, c in conns.items()}
    return render(versions, colls, single, charmaps, multi)


if __name__ == "__main__":
    raise SystemExit(main())
