"""The drift demo on the embedded engine: one workload with nondeterministic
statements, logged by a source engine in STATEMENT, ROW and MIXED format,
applied by a replica engine that walks other indexes and has another clock
and UUID source; then the two are checksummed chunk by chunk.

Nondeterminism sources in the workload:

- ``DELETE ... WHERE a > 10 AND create_time < ... LIMIT 1`` with no ORDER BY:
  the source walks ``idx_a``, the replica the primary key (as a replica
  whose ``idx_a`` is missing does), so they delete different rows;
- ``RAND()`` in an UPDATE without ORDER BY: the RAND event gives the replica
  the same seeds, but the rows are visited in another order;
- ``SYSDATE(6)``: the time the statement runs, not the logged timestamp;
- ``UUID()``: made up anew by whoever runs the statement.

NOW() is in the workload too, as a control: the QUERY event's timestamp
makes it replicate exactly.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binlogkit.replay.apply import Applier, EngineTarget
from binlogkit.replay.binlog import write_binlog
from binlogkit.replay.checksum import ChunkDiff, diff, range_text
from binlogkit.replay.engine import Engine
from binlogkit.replay.primary import Primary

FORMATS = ("statement", "row", "mixed")
SOURCE_CLOCK_START = 1_735_689_600.0  # 2025-01-01 00:00:00 UTC
REPLICA_CLOCK_LAG = 0.25  # the replica runs statements a quarter of a second later
CHUNK = 25  # rows per checksum chunk: small, so a difference is located


def demo_schema(db: str = "demo") -> list[str]:
    return [
        f"CREATE DATABASE {db}",
        f"""CREATE TABLE {db}.t (
            id INT NOT NULL PRIMARY KEY,
            a INT NOT NULL,
            create_time DATETIME NOT NULL,
            score INT NULL,
            touched DATETIME(6) NULL,
            token VARCHAR(36) NULL,
            noted DATETIME NULL,
            KEY idx_a (a),
            KEY idx_create_time (create_time)
        )""",
    ]


def demo_rows(db: str = "demo", n: int = 200) -> list[str]:
    """Most rows have a <= 9 (so ``a > 10`` is selective and a server's
    optimizer picks idx_a); three rows match the DELETE, and their order by
    ``a``, by ``create_time`` and by ``id`` all differ."""
    special = {50: (30, "2024-01-05"), 120: (12, "2024-01-09"), 170: (20, "2024-01-02"),
               80: (15, "2024-03-01")}
    values = []
    for i in range(1, n + 1):
        a, day = special.get(i, (i % 10, f"2024-02-{1 + i % 28:02d}"))
        values.append(f"({i}, {a}, '{day} {i % 24:02d}:00:00')")
    out = []
    for k in range(0, len(values), 50):
        out.append(f"INSERT INTO {db}.t (id, a, create_time) VALUES "
                   + ", ".join(values[k:k + 50]))
    return out


def demo_workload(db: str = "demo") -> list[str]:
    limit = f"DELETE FROM {db}.t WHERE a > 10 AND create_time < '2025-01-01 00:00:00' LIMIT 1"
    return [
        limit,
        "BEGIN",
        f"UPDATE {db}.t SET score = FLOOR(RAND() * 1000000) WHERE a > 10",
        f"UPDATE {db}.t SET noted = NOW() WHERE id <= 5",
        "COMMIT",
        f"UPDATE {db}.t SET touched = SYSDATE(6) WHERE id BETWEEN 6 AND 8",
        f"UPDATE {db}.t SET token = UUID() WHERE id BETWEEN 9 AND 10",
        limit,
    ]


def _clock(start: float, step: float = 0.001) -> Any:
    t = [start]

    def now() -> float:
        t[0] += step
        return t[0]
    return now


def source_engine(seed: int = 1) -> Engine:
    return Engine("source", access="first", seed=seed, clock=_clock(SOURCE_CLOCK_START))


def replica_engine(seed: int = 2) -> Engine:
    return Engine("replica", access="primary", seed=seed,
                  clock=_clock(SOURCE_CLOCK_START + REPLICA_CLOCK_LAG))


@dataclass
class FormatResult:
    """One format's outcome."""

    fmt: str
    source_checksum: str
    replica_checksum: str
    diverged_rows: int
    chunks: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    statement_events: int = 0
    row_events: int = 0
    binlog: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"diverged_rows": self.diverged_rows, "source_checksum": self.source_checksum,
                "replica_checksum": self.replica_checksum, "differing_chunks": self.chunks,
                "differing_rows": self.rows, "statement_events": self.statement_events,
                "row_events": self.row_events, "binlog": self.binlog}


def table_digest(checksums: Any) -> str:
    """One CRC over every chunk of every table (named without its schema):
    equal tables, equal digests."""
    import zlib  # noqa: PLC0415

    crc = 0
    for name in sorted(checksums):
        table = name.rpartition(".")[2]
        for ch in checksums[name].chunks:
            crc = zlib.crc32(f"{table}|{ch.lo}|{ch.hi}|{ch.count}|{ch.crc}".encode(), crc)
    return f"{crc:08x}"


def row_differences(source: Engine, replica: Engine, schema: str = "demo",
                    table: str = "t") -> list[dict[str, Any]]:
    """Rows (by primary key) that one side has and the other lacks or holds
    with other values."""
    info = source.table(schema, table)
    key = info.primary_key

    def by_key(engine: Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {tuple(r[c] for c in key): r for r in engine.rows(schema, table)}
    a, b = by_key(source), by_key(replica)
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            changed = sorted(c for c in (a.get(k) or b.get(k) or {})
                             if (a.get(k) or {}).get(c) != (b.get(k) or {}).get(c))
            out.append({"key": list(k), "source": _jsonable(a.get(k)),
                        "replica": _jsonable(b.get(k)), "columns": changed})
    return out


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v if isinstance(v, int | float | str) or v is None else str(v))
            for k, v in row.items()}


def run_demo(binlog_dir: str | os.PathLike[str] | None = None,
             flavor: str = "mysql") -> list[FormatResult]:
    """The demo on the embedded engine, once per format. Binlogs go to
    ``binlog_dir`` (kept) or a temporary directory (removed)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="binlogkit-demo-") as tmp:
        outdir = Path(binlog_dir) if binlog_dir is not None else Path(tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        for fmt in FORMATS:
            source = source_engine()
            primary = Primary(source, flavor=flavor)
            for sql in demo_schema() + demo_rows() + demo_workload():
                primary.run(sql)
            path = outdir / f"demo-{fmt}.000001"
            write_binlog(path, primary.transactions, fmt=fmt, flavor=flavor)  # type: ignore[arg-type]
            replica = replica_engine()
            Applier(EngineTarget(replica)).apply_file(path)
            a = source.checksum(chunk_size=CHUNK)
            b = replica.checksum(boundaries={k: v.boundaries for k, v in a.items()})
            rows = row_differences(source, replica)
            res = FormatResult(fmt, table_digest(a), table_digest(b), len(rows),
                               chunks=chunk_json(diff(a, b)), rows=rows,
                               binlog=str(path) if binlog_dir is not None else None)
            res.statement_events, res.row_events = _event_counts(path)
            results.append(res)
    return results


def chunk_json(diffs: list[ChunkDiff]) -> list[dict[str, Any]]:
    """Differing chunks as JSON: the table, its PK range, both sides' row counts."""
    return [{"table": d.table, "range": range_text(d.lo, d.hi), "lo": _jsonable_key(d.lo),
             "hi": _jsonable_key(d.hi), "rows": [d.count_a, d.count_b]} for d in diffs]


def _jsonable_key(k: Any) -> Any:
    if isinstance(k, tuple | list):
        return [_jsonable_key(x) for x in k]
    return k if isinstance(k, int | float | str) or k is None else str(k)


def _event_counts(path: Path) -> tuple[int, int]:
    from binlogkit.codec.types import ROWS_EVENTS, EventType  # noqa: PLC0415
    from binlogkit.io.reader import BinlogReader  # noqa: PLC0415

    stmts = rows = 0
    for ev in BinlogReader(path):
        if ev.type_code in ROWS_EVENTS:
            rows += 1
        elif ev.type_code in (EventType.QUERY, EventType.QUERY_COMPRESSED):
            q = bytes(ev.body.query).strip().upper()
            if q not in (b"BEGIN", b"COMMIT"):
                stmts += 1
    return stmts, rows
