"""MariaDB positions and states: a live MariaDB is the oracle for parsing and
formatting (``gtid_slave_pos``), position comparison (``MASTER_GTID_WAIT``) and
``gtid_binlog_state`` / ``gtid_binlog_pos`` bookkeeping."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binlogkit.gtid import GtidError, MariadbGtid, MariadbGtidPos, MariadbGtidState

SERVER = settings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
FRAGMENTS = ["0", "1", "2", "7", "007", "10", "4294967295", "4294967296",
             "18446744073709551615", "18446744073709551616", "000000000000000000000001",
             "-", "-", "-", ",", ",", " ", "\t", "\n", "+", "x", "0x1", ".", "1-1-1", "0-1-5"]


@pytest.fixture(scope="module")
def maria(mariadb_server: Any) -> Iterator[Any]:
    conn = mariadb_server.connect()
    cur = conn.cursor()
    cur.execute("SELECT @@GLOBAL.gtid_slave_pos")
    saved = cur.fetchone()[0]
    try:
        yield cur
    finally:
        cur.execute("SET GLOBAL gtid_slave_pos = %s", (saved,))
        conn.close()


def server_slave_pos(cur: Any, text: str) -> str | None:
    try:
        cur.execute("SET GLOBAL gtid_slave_pos = %s", (text,))
    except Exception as exc:  # the server's error (malformed, duplicate domain)
        assert exc.args[0] in (1941, 1943), exc
        return None
    cur.execute("SELECT @@GLOBAL.gtid_slave_pos")
    return str(cur.fetchone()[0])


def ours(text: str) -> str | None:
    try:
        return str(MariadbGtidPos.parse(text))
    except GtidError:
        return None


def random_pos_text(rng: random.Random) -> str:
    gtids = []
    for _ in range(rng.randint(0, 5)):
        d = rng.choice([0, 1, 2, 3, 10, 4294967295, rng.randint(0, 50)])
        gtids.append(f"{d}-{rng.choice([1, 2, 3, 4294967295])}-{rng.randint(0, 100)}")
    return ",".join(gtids)


def random_junk(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 9)))


@SERVER
@given(seed=st.integers(0, 2**32))
def test_slave_pos_parse_and_format_like_server(maria: Any, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        text = random_pos_text(rng) if rng.random() < 0.5 else random_junk(rng)
        assert ours(text) == server_slave_pos(maria, text), repr(text)


@SERVER
@given(seed=st.integers(0, 2**32))
def test_reached_agrees_with_master_gtid_wait(maria: Any, seed: int) -> None:
    rng = random.Random(seed)
    text = ""
    while ours(text := random_pos_text(rng)) is None:
        pass
    pos = MariadbGtidPos.parse(text)
    assert server_slave_pos(maria, text) == str(pos)
    targets = []
    for _ in range(150):
        gtids = [f"{rng.choice([0, 1, 2, 3, 10, 77])}-{rng.randint(0, 3)}-{rng.randint(0, 110)}"
                 for _ in range(rng.randint(0, 3))]
        targets.append(",".join(gtids))  # may repeat a domain: all must be reached
    maria.execute("SELECT " + ", ".join(["MASTER_GTID_WAIT(%s, 0)"] * len(targets)), targets)
    row = maria.fetchone()
    for target, got in zip(targets, row, strict=True):
        assert pos.reached(target) == (got == 0), (text, target, got)
        if ours(target) is not None:
            assert pos.reached(MariadbGtidPos.parse(target)) == (got == 0)


def test_binlog_state_and_pos_like_server(mariadb_server: Any) -> None:
    """Binlog a few transactions in private domains with chosen server ids and
    sequence numbers (out of order too); the server's gtid_binlog_state and
    gtid_binlog_pos, restricted to those domains, match ours."""
    rng = random.Random(3)
    domains = (7001, 7002)
    conn = mariadb_server.connect()
    cur = conn.cursor()
    cur.execute("CREATE DATABASE IF NOT EXISTS gtid_oracle")
    cur.execute("CREATE TABLE IF NOT EXISTS gtid_oracle.t (id INT AUTO_INCREMENT PRIMARY KEY)")
    cur.execute("SELECT @@gtid_binlog_state")
    state = MariadbGtidState.parse(cur.fetchone()[0])
    try:
        for _ in range(30):
            d, s = rng.choice(domains), rng.choice([1, 2, 3])
            last = state.pos.get(d)
            n = max(1, (last.seq if last else 0) + rng.randint(-3, 5))
            cur.execute(f"SET SESSION gtid_domain_id = {d}, server_id = {s}, gtid_seq_no = {n}")
            cur.execute("INSERT INTO gtid_oracle.t () VALUES ()")
            state.add(MariadbGtid(d, s, n))
        cur.execute("SELECT @@gtid_binlog_state, @@gtid_binlog_pos")
        server_state, server_pos = cur.fetchone()
    finally:
        conn.close()

    def mine(gtids: Any) -> list[MariadbGtid]:
        return sorted(g for g in gtids if g.domain in domains)

    assert mine(MariadbGtidState.parse(server_state).gtids()) == mine(state.gtids())
    assert mine(MariadbGtidPos.parse(server_pos)) == mine(state.pos)
    # the server lists state sorted by domain; so do we, the most recent last per domain
    assert [g.domain for g in state.gtids()] == sorted(g.domain for g in state.gtids())


# --- without a server ------------------------------------------------------------------


def test_pos_basics() -> None:
    p = MariadbGtidPos.parse("1-1-5,0-2-3")
    assert str(p) == "0-2-3,1-1-5" and p.domains == [0, 1] and len(p) == 2
    assert p[1] == MariadbGtid(1, 1, 5) and list(p) == [MariadbGtid(0, 2, 3), MariadbGtid(1, 1, 5)]
    assert p == MariadbGtidPos.parse(" 0-2-3, +1-01-005") and hash(p) == hash(MariadbGtidPos(p))
    assert str(p.with_gtid("0-9-4")) == "0-9-4,1-1-5" and str(p) == "0-2-3,1-1-5"
    assert p.reached("0-7-3") and not p.reached("0-2-4") and not p.reached("2-1-1")
    assert p.reached("2-1-0") and p.reached("") and p.reached(MariadbGtidPos())
    assert str(MariadbGtidPos.parse("")) == "" and not MariadbGtidPos.parse("")
    assert str(MariadbGtid.parse("4294967295-0-18446744073709551615")) == \
        "4294967295-0-18446744073709551615"


@pytest.mark.parametrize("text", ["0-1-1,", ",0-1-1", "0-1-1 ", "0 -1-1", "-0-1-1", "0-1--5",
                                  "1-1", "0x1-1-1", "4294967296-1-1", "0-4294967296-1",
                                  "0-1-18446744073709551616", "0-1-1,,1-1-1", "0-1-1,0-2-2",
                                  " "])
def test_pos_rejects(text: str) -> None:
    with pytest.raises(GtidError) as info:
        MariadbGtidPos.parse(text)
    assert info.value.text == text and info.value.position is not None


def test_state_pos_and_strict_mode() -> None:
    s = MariadbGtidState.parse("0-1-5,0-2-7,1-1-3")
    assert str(s.pos) == "0-2-7,1-1-3" and len(s) == 3
    s.add("0-1-8")
    assert str(s) == "0-2-7,0-1-8,1-1-3" and str(s.pos) == "0-1-8,1-1-3"
    assert MariadbGtidState.parse(str(s)) == s and MariadbGtidState.parse(str(s)).pos == s.pos
    s.add("0-3-2")  # out of order is fine without strict mode; it is now the latest
    assert str(s.pos) == "0-3-2,1-1-3"
    with pytest.raises(GtidError, match="strict"):
        s.add("0-1-2", strict=True)
    with pytest.raises(GtidError):
        s.copy().add(MariadbGtid(0, 9, 1), strict=True)
    s.add("0-1-3", strict=True).add("5-1-1", strict=True)
    assert str(s.pos) == "0-1-3,1-1-3,5-1-1"
    assert s.gtids()[-1] == MariadbGtid(5, 1, 1)
