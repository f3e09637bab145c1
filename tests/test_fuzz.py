"""Mutated real binlogs: the reader either returns events or raises
BinlogError; never another exception, never a hang, never a huge allocation."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binlogkit.codec.describe import TableMaps, describe
from binlogkit.codec.event import encode_event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

SEEDS = [
    Path("/usr/share/mysql/mysql-test/std_data/mariadb-5.5-binlog.000001"),
    Path("/usr/share/mysql/mysql-test/std_data/mdev35643_mysql_80_binlog.000001"),
    Path("/usr/share/mysql/mysql-test/std_data/binlog_transaction.000001"),
    *sorted((Path(__file__).resolve().parent.parent / "fixtures").rglob("*.0000*"))[:6],
]
SEED_DATA = [p.read_bytes()[:200_000] for p in SEEDS if p.exists()]


def consume(data: bytes, verify: bool) -> None:
    maps = TableMaps()
    try:
        for ev in BinlogReader(data, verify_checksum=verify):
            maps.see(ev)
            describe(ev, maps)
            encode_event(ev)
            if ev.type_code == EventType.TRANSACTION_PAYLOAD:
                for inner in inner_events(ev, ev.ctx, verify=verify):
                    describe(inner, maps)
    except BinlogError as exc:
        assert exc.offset is not None or "open" in str(exc)


mutation = st.tuples(
    st.sampled_from(["flip", "set", "truncate", "insert", "delete"]),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=255),
)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10**6),
       mutations=st.lists(mutation, min_size=1, max_size=4),
       verify=st.booleans())
def test_mutated_files_fail_cleanly(seed: int, mutations: list[tuple[str, int, int]],
                                    verify: bool) -> None:
    data = bytearray(SEED_DATA[seed % len(SEED_DATA)])
    for kind, where, value in mutations:
        if not data:
            break
        i = where % len(data)
        if kind == "flip":
            data[i] ^= 1 << (value % 8)
        elif kind == "set":
            data[i] = value
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = bytes([value]) * (value % 7 + 1)
        elif kind == "delete":
            del data[i : i + value % 9 + 1]
    consume(bytes(data), verify)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_after_magic(blob: bytes) -> None:
    consume(b"\xfebin" + blob, True)
