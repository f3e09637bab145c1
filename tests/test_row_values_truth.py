"""Decoded row values against the truth: the table state rebuilt from a binlog's row
events equals ``SELECT *`` on the server that wrote it.

For each scenario (flavor x binlog_row_metadata x binlog_row_image x PARTIAL_JSON x
compression x caller schema or not) a fresh database gets the workload of
``truth_workload`` (a column of every type and every charset the server has, rows of
edge values, NULL in every column, updates incl. primary-key changes and partial JSON
updates, deletes) between two ``FLUSH BINARY LOGS``. The binlog written in between is
read with :func:`binlogkit.io.rows.row_events` and applied in order to an in-memory
table:

* WRITE adds the after image (the workload names every column in its INSERTs, so a
  MINIMAL after image is still the whole row);
* UPDATE finds the row by the before image's ``pk`` (MINIMAL: the before image is
  only the key), checks every column the before image holds against the rebuilt row,
  then merges the columns present in the after image (NOBLOB/MINIMAL leave unchanged
  BLOB/TEXT/JSON columns out) and re-keys the row if ``pk`` changed. A partial JSON
  value (PARTIAL_UPDATE_ROWS) whose before image lacks the column is rebuilt by
  applying its diffs to the rebuilt document, as a consumer must;
* DELETE checks the before image the same way and removes the row.

Every value is converted with :func:`binlogkit.codec.describe.json_value` (the
``dump --format jsonl`` contract) and compared, per row and column, with the
server's own text converted by the rules in ``truth_workload``'s docstring.
Keys are column names from the binlog (FULL metadata) or from a caller schema
(``Schemas.from_server``); without either they are ``@N``, mapped to names by
ordinal position here. A failure names scenario, table, pk, column, the binlog value
and the SELECT value.

All scenarios of a flavor share the session server (``mariadb_server``/``mysql_server``):
binlog_row_image, binlog_row_value_options and binlog_transaction_compression are set
per session; binlog_row_metadata, MariaDB's log_bin_compress and mysql56_temporal_format
are global, set for the scenario and restored after it (so the module must not run in
parallel with other tests on the same server).

Mismatches the server's own metadata explains (``SERVER_LIMITS``: pattern and exact
reason) are reported and accepted; any other mismatch fails the scenario.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from truth_workload import Table, raw_connection, run, same, tables, truth

from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.describe import TableMaps, json_value
from binlogkit.io.rows import row_events


@dataclass(frozen=True)
class Scenario:
    flavor: str
    metadata: str  # binlog_row_metadata (global)
    image: str  # binlog_row_image (session)
    schemas: bool  # pass Schemas.from_server to the decoder
    partial_json: bool = False  # MySQL binlog_row_value_options=PARTIAL_JSON (session)
    compression: bool = False  # MySQL binlog_transaction_compression (session),
    # MariaDB log_bin_compress (global: compressed row events)
    legacy_temporal: bool = False  # MariaDB mysql56_temporal_format=OFF: TIME/DATETIME/
    # TIMESTAMP(n) in MariaDB's own pre-10.1 layout (types 11/12/7 with fractions)

    @property
    def id(self) -> str:
        parts = [self.flavor, f"meta-{self.metadata}", f"image-{self.image}"]
        if self.partial_json:
            parts.append("partial-json")
        if self.compression:
            parts.append("compressed")
        if self.legacy_temporal:
            parts.append("legacy-temporal")
        parts.append("schemas" if self.schemas else "no-schemas")
        return "-".join(parts).lower()


SCENARIOS = [
    Scenario("mariadb", "FULL", "FULL", schemas=True),
    Scenario("mariadb", "FULL", "NOBLOB", schemas=False, compression=True),
    Scenario("mariadb", "MINIMAL", "MINIMAL", schemas=True),
    Scenario("mariadb", "MINIMAL", "FULL", schemas=False),
    Scenario("mariadb", "FULL", "FULL", schemas=True, legacy_temporal=True),
    Scenario("mysql", "FULL", "FULL", schemas=False, compression=True),
    Scenario("mysql", "FULL", "MINIMAL", schemas=False, partial_json=True),
    Scenario("mysql", "FULL", "NOBLOB", schemas=True, partial_json=True, compression=True),
    Scenario("mysql", "MINIMAL", "FULL", schemas=True, partial_json=True),
    Scenario("mysql", "MINIMAL", "MINIMAL", schemas=False, compression=True),
]


# ------------------------------------------------------------------ server settings


def _set_global(conn: Any, name: str, value: str) -> str:
    with conn.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{name}")
        row = cur.fetchone()
        cur.execute(f"SET GLOBAL {name} = " + (value if value.isdigit() else f"'{value}'"))
    return str(row[0])


def _globals(sc: Scenario) -> dict[str, str]:
    out = {"binlog_row_metadata": sc.metadata}
    if sc.flavor == "mariadb":
        out["log_bin_compress"] = "ON" if sc.compression else "OFF"
        if sc.compression:
            out["log_bin_compress_min_len"] = "10"
        out["mysql56_temporal_format"] = "OFF" if sc.legacy_temporal else "ON"
    return out


def _session(sc: Scenario) -> list[str]:
    out = ["SET SESSION sql_mode = ''", "SET SESSION time_zone = '+00:00'",
           f"SET SESSION binlog_row_image = '{sc.image}'"]
    if sc.flavor == "mysql":
        out.append("SET SESSION binlog_row_value_options = "
                   + ("'PARTIAL_JSON'" if sc.partial_json else "''"))
        out.append("SET SESSION binlog_transaction_compression = "
                   + ("ON" if sc.compression else "OFF"))
    return out


# ------------------------------------------------------------------ rebuilding


@dataclass
class Rebuilt:
    """Rebuilt tables: table -> pk -> column name -> (Column, decoded value)."""

    rows: dict[str, dict[int, dict[str, tuple[Column, Any]]]]
    problems: list[str]
    events: int
    event_types: set[str]
    inner: int  # row events read from inside TRANSACTION_PAYLOAD
    partial: tuple[int, int]  # partial JSON values (applied by binlogkit, applied here)


def _names(conn: Any, db: str) -> dict[str, list[str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
                    " WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (db,))
        out: dict[str, list[str]] = {}
        for t, c in cur.fetchall():
            out.setdefault(str(t), []).append(str(c))
    return out


def _short(v: Any, limit: int = 160) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"


def _diff(a: Any, b: Any) -> str:
    """Where two long strings first differ."""
    if isinstance(a, str) and isinstance(b, str) and a != b:
        k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                 min(len(a), len(b)))
        return f" (first difference at char {k}: {a[k:k + 12]!r} vs {b[k:k + 12]!r})"
    return ""


def rebuild(files: list[Path], db: str, schemas: Schemas | None,
            names: dict[str, list[str]], label: str) -> Rebuilt:
    from binlogkit.codec.jsonb import Json, apply_json_diffs

    state: dict[str, dict[int, dict[str, tuple[Column, Any]]]] = {}
    problems: list[str] = []
    maps = TableMaps(schemas)
    events = inner = ours = theirs = 0
    types: set[str] = set()

    def named(img: dict[str, Any] | None, cols: dict[str, Column],
              table: str) -> dict[str, tuple[Column, Any]] | None:
        if img is None:
            return None
        out = {}
        for k, v in img.items():
            name = names[table][int(k[1:]) - 1] if k.startswith("@") else k
            out[name] = (cols[k], v)
        return out

    def check_before(table: str, pk: int, before: dict[str, tuple[Column, Any]],
                     cur: dict[str, tuple[Column, Any]], what: str) -> None:
        for name, (col, v) in before.items():
            if name not in cur:
                continue
            got, want = json_value(col, v), json_value(*cur[name])
            if not same(got, want):
                problems.append(f"{label} {table} pk={pk} {name}: {what} before image"
                                f" {_short(got)} != rebuilt row {_short(want)}")

    for path in files:
        for rev in row_events(path, schemas=schemas, tables=maps):
            if rev.schema != db:
                continue
            events += 1
            inner += bool(rev.event.inner)
            types.add(rev.type_name)
            cols = {c.key: c for c in rev.columns}
            table = state.setdefault(rev.table, {})
            for row in rev.rows:
                before = named(row.before, cols, rev.table)
                after = named(row.after, cols, rev.table)
                if before is None:  # WRITE
                    assert after is not None
                    pk = int(after["pk"][1])
                    if pk in table:
                        problems.append(f"{label} {rev.table} pk={pk}: WRITE of an existing row")
                    table[pk] = dict(after)
                    continue
                pk = int(before["pk"][1])
                cur = table.get(pk)
                if cur is None:
                    problems.append(f"{label} {rev.table} pk={pk}: {rev.type_name} of a row"
                                    " not in the rebuilt table")
                    continue
                check_before(rev.table, pk, before, cur, rev.type_name)
                if after is None:  # DELETE
                    del table[pk]
                    continue
                for name, (col, v) in after.items():
                    diffs = getattr(v, "diffs", None)
                    theirs += diffs is not None and name in before
                    if diffs is not None and name not in before:
                        ours += 1
                        base = cur.get(name, (col, None))[1]
                        if base is None:
                            problems.append(f"{label} {rev.table} pk={pk} {name}: partial JSON"
                                            " update of a NULL or unknown document")
                            continue
                        v = Json(value=apply_json_diffs(base.value, diffs))
                    cur[name] = (col, v)
                new_pk = int(cur["pk"][1])
                if new_pk != pk:
                    del table[pk]
                    table[new_pk] = cur
    return Rebuilt(state, problems, events, types, inner, (theirs, ours))


def compare(label: str, tabs: list[Table], rebuilt: Rebuilt,
            want: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    out = list(rebuilt.problems)
    for t in tabs:
        got_rows = rebuilt.rows.get(t.name, {})
        want_rows = want[t.name]
        for pk in sorted(set(got_rows) | set(want_rows)):
            if pk not in got_rows:
                out.append(f"{label} {t.name} pk={pk}: in SELECT, not in the rebuilt table")
                continue
            if pk not in want_rows:
                out.append(f"{label} {t.name} pk={pk}: rebuilt, not in SELECT")
                continue
            g, w = got_rows[pk], want_rows[pk]
            for c in t.cols:
                if c.name not in g:
                    out.append(f"{label} {t.name} pk={pk} {c.name} ({c.ddl}): absent from"
                               f" every image; SELECT {_short(w[c.name])}")
                    continue
                gv = json_value(*g[c.name])
                for path, x, y in _differences(gv, w[c.name], "$"):
                    at = f" at {path}" if path != "$" else ""
                    out.append(f"{label} {t.name} pk={pk} {c.name} ({c.ddl}){at}: binlog"
                               f" {_short(x)} != SELECT {_short(y)}" + _diff(x, y))
    return out


def _differences(a: Any, b: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(JSON path, a, b) of every place where two contract values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            if k not in a or k not in b:
                yield f"{path}.{k}", a.get(k, "<absent>"), b.get(k, "<absent>")
            else:
                yield from _differences(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif not same(a, b):
        yield path, a, b


# ------------------------------------------------------------------ the test


def _run_scenario(server: Any, sc: Scenario) -> tuple[list[str], Rebuilt, list[Table]]:
    db = f"truth_{SCENARIOS.index(sc)}_{int(time.time() * 1000) % 10**8}"
    admin = raw_connection(server)
    saved: dict[str, str] = {}
    try:
        for name, value in _globals(sc).items():
            saved[name] = _set_global(admin, name, value)
        conn = raw_connection(server)  # after SET GLOBAL: a fresh session
        with conn.cursor() as cur:
            for stmt in _session(sc):
                cur.execute(stmt)
        tabs = tables(conn, sc.flavor)
        with conn.cursor() as cur:
            cur.execute("FLUSH BINARY LOGS")
        first = server.binlog_files()[-1]
        run(conn, db, tabs)
        with conn.cursor() as cur:
            cur.execute("FLUSH BINARY LOGS")
    finally:
        for name, value in reversed(saved.items()):
            _set_global(admin, name, value)
        admin.close()
    files = server.binlog_files()
    files = files[files.index(first):-1]
    named_members = sc.metadata == "FULL" or sc.schemas
    typed = sc.schemas
    try:
        schemas = Schemas.from_server(conn, [db]) if sc.schemas else None
        want = {t.name: truth(conn, db, t, named_members, typed) for t in tabs}
        rebuilt = rebuild(files, db, schemas, _names(conn, db), sc.id)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{db}`")
        conn.close()
    return compare(sc.id, tabs, rebuilt, want), rebuilt, tabs


# Mismatches the server's own metadata explains: (pattern of the failure line, reason).
# They are reported (pytest -s) and do not fail the scenario; any other mismatch does.
SERVER_LIMITS: list[tuple[str, str]] = [
    (r" t_misc pk=\d+ eu \(ENUM.*: binlog '\?' != SELECT '😀'",
     "a caller schema read from the server (Schemas.from_server) holds the ENUM/SET members"
     " as information_schema.COLUMNS.COLUMN_TYPE (and SHOW CREATE TABLE) print them: an"
     " astral member such as '😀' comes out as '?'. Only the binlog's own FULL metadata"
     " (ENUM_STR_VALUE) carries it exactly"),
]


def _classify(failures: list[str]) -> tuple[list[str], list[str]]:
    """(failures no known issue explains, reasons of the known issues seen)."""
    unknown: list[str] = []
    reasons: list[str] = []
    for f in failures:
        reason = next((r for pat, r in SERVER_LIMITS if re.search(pat, f)), None)
        if reason is None:
            unknown.append(f)
        elif reason not in reasons:
            reasons.append(reason)
    return unknown, reasons


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.id)
def test_rebuilt_table_equals_select(sc: Scenario, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(f"{sc.flavor}_server")
    failures, rebuilt, tabs = _run_scenario(server, sc)
    assert rebuilt.events, f"{sc.id}: no row events for the workload's database"
    for t in tabs:
        assert rebuilt.rows.get(t.name), f"{sc.id}: nothing rebuilt for {t.name}"
    if sc.flavor == "mysql" and sc.partial_json:
        assert "PARTIAL_UPDATE_ROWS" in rebuilt.event_types, rebuilt.event_types
        # FULL/NOBLOB before images hold the JSON column (MySQL logs it for the diffs)
        # and binlogkit applies the diffs; MINIMAL ones do not and the rebuild does
        assert rebuilt.partial[1 if sc.image == "MINIMAL" else 0] > 0, rebuilt.partial
    if sc.flavor == "mysql" and sc.compression:
        assert rebuilt.inner == rebuilt.events, "row events outside TRANSACTION_PAYLOAD"
    if sc.flavor == "mariadb" and sc.compression:
        assert any("COMPRESSED" in t for t in rebuilt.event_types), rebuilt.event_types
    unknown, reasons = _classify(failures)
    assert not unknown, (f"{len(unknown)} mismatches ({len(failures) - len(unknown)} more"
                         " explained by the server's metadata):\n" + "\n".join(unknown[:80]))
    for reason in reasons:
        print(f"{sc.id}: accepted: {reason}")
