#!/usr/bin/env python3
"""GTID set benchmark: binlogkit.gtid against mysql-replication's GtidSet.

A script, not a test. In one run it times, for both libraries where the peer
(``pymysqlreplication.gtid``) has the operation:

  1. adding 1,000,000 single GTIDs in random order over 100 UUIDs
     (binlogkit: ``GtidSet.builder().add((uuid, "", n))`` then ``build()``;
     peer: ``GtidSet.merge_gtid(Gtid(...))``, which deep-copies the UUID's
     intervals on every call, so it is timed on a prefix and the rate shown);
  2. union, difference and subset of two sets of 10,000 UUIDs x 100 intervals
     (``|``, ``-``, ``<=``; peer: ``+``, a per-UUID ``Gtid - Gtid`` loop, ``in``);
  3. parsing and formatting the union's text (about 10 MB).

Every result of the peer is checked against binlogkit's and the notes column
says where it is wrong or raises (its union raises on overlapping intervals,
its GtidSet ``in`` compares interval lists for equality instead of containment).

    python benchmarks/gtid.py              # best of 3 rounds (peer: 1, it is slow)
    python benchmarks/gtid.py --repeat 5 --peer-repeat 3 --peer-adds 50000
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import operator
import random
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from binlogkit.gtid import GtidSet

try:
    from pymysqlreplication.gtid import Gtid as PeerGtid
    from pymysqlreplication.gtid import GtidSet as PeerSet
except ImportError:  # pragma: no cover
    PeerGtid = PeerSet = None


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls and the last result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def attempt(fn: Callable[[], Any], repeat: int) -> tuple[float | None, Any, str]:
    try:
        t, r = best(fn, repeat)
        return t, r, ""
    except Exception as exc:  # the peer raises plain Exception
        return None, None, f"raises {type(exc).__name__}: {str(exc)[:60]}"


def make_uuids(n: int, rng: random.Random) -> list[str]:
    return [str(uuidlib.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def set_text(uuids: list[str], intervals: Callable[[int], list[tuple[int, int]]]) -> str:
    return ",".join(u + "".join(f":{a}-{b}" for a, b in intervals(k))
                    for k, u in enumerate(uuids))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds for binlogkit")
    ap.add_argument("--peer-repeat", type=int, default=1, help="rounds for the peer")
    ap.add_argument("--adds", type=int, default=1_000_000)
    ap.add_argument("--peer-adds", type=int, default=20_000,
                    help="GTIDs the peer adds (it is too slow for all of them)")
    ap.add_argument("--uuids", type=int, default=10_000)
    ap.add_argument("--intervals", type=int, default=100)
    args = ap.parse_args()
    rng = random.Random(20240601)
    peer_version = importlib.metadata.version("mysql-replication") if PeerSet else "absent"
    rows: list[tuple[str, float | None, float | None, str]] = []

    # 1. one million single GTIDs, random order, 100 UUIDs
    add_uuids = make_uuids(100, rng)
    per = args.adds // 100
    singles = [(u, "", n) for u in add_uuids for n in range(1, per + 1)]
    rng.shuffle(singles)

    def ours_add() -> GtidSet:
        b = GtidSet.builder()
        add = b.add
        for g in singles:
            add(g)
        return b.build()

    t_ours, built = best(ours_add, args.repeat)
    assert str(built) == ",".join(f"{u}:1-{per}" for u in sorted(add_uuids)), "builder"
    peer_texts = [f"{u}:{n}" for u, _, n in singles[:args.peer_adds]]

    def peer_add() -> Any:
        s = PeerSet(None)
        for text in peer_texts:
            s.merge_gtid(PeerGtid(text))
        return s

    t_peer, peer_built, note = attempt(peer_add, 1) if PeerSet else (None, None, "absent")
    if t_peer is not None:
        want = GtidSet.parse(",".join(peer_texts))
        ok = GtidSet.parse(str(peer_built)) == want
        t_peer = t_peer * len(singles) / len(peer_texts)  # extrapolated to all adds
        note = (f"peer: {len(peer_texts):,} adds timed, scaled x{len(singles) // len(peer_texts)}"
                " (a lower bound)" + ("" if ok else "; WRONG result"))
    rows.append((f"add {len(singles):,} single GTIDs (random order, 100 UUIDs)",
                 t_ours, t_peer, note))

    # 2. two sets of UUIDS x INTERVALS; B overlaps A (Bd: disjoint from A)
    uuids = make_uuids(args.uuids, rng)
    k = args.intervals
    offs_a = [rng.randrange(0, 400) for _ in range(k)]
    offs_b = [rng.randrange(0, 400) for _ in range(k)]
    text_a = set_text(uuids, lambda u: [(i * 1000 + 1 + o, i * 1000 + 400 + o)
                                        for i, o in enumerate(offs_a)])
    text_b = set_text(uuids, lambda u: [(i * 1000 + 200 + o, i * 1000 + 500 + o)
                                        for i, o in enumerate(offs_b)])
    text_bd = set_text(uuids, lambda u: [(i * 1000 + 850, i * 1000 + 900) for i in range(k)])
    a, b, bd = GtidSet.parse(text_a), GtidSet.parse(text_b), GtidSet.parse(text_bd)
    sub = a - GtidSet.parse(f"{uuids[0]}:{offs_a[0] + 1}")  # a proper subset of A
    peers: list[Any] = ([PeerSet(t) for t in (text_a, text_b, text_bd, str(sub))]
                        if PeerSet else [None] * 4)
    pa, pb, pbd, psub = peers

    def check(label: str, ours: GtidSet, peer: Any) -> str:
        return "" if GtidSet.parse(str(peer)) == ours else f"WRONG {label}"

    for label, x, y, px, py in (("A | B (overlapping)", a, b, pa, pb),
                                ("A | Bd (disjoint)", a, bd, pa, pbd)):
        t_ours, u = best(functools.partial(operator.or_, x, y), args.repeat)
        t_peer, pu, note = attempt(functools.partial(operator.add, px, py), args.peer_repeat)
        if t_peer is not None:
            note = check("union", u, pu)
        rows.append((f"union {label}", t_ours, t_peer, note))

    def peer_minus(px: Any, py: Any) -> Any:
        by_sid = {g.sid: g for g in py.gtids}
        return PeerSet([g - by_sid[g.sid] if g.sid in by_sid else g for g in px.gtids])

    t_ours, d = best(lambda: a - b, args.repeat)
    t_peer, pd, note = attempt(lambda: peer_minus(pa, pb), args.peer_repeat)
    if t_peer is not None:
        note = "per-UUID Gtid.__sub__ loop " + check("difference", d, pd)
    rows.append(("difference A - B", t_ours, t_peer, note))

    t_ours, r = best(lambda: sub <= a, args.repeat)
    assert r is True
    t_peer, pr, note = attempt(lambda: psub in pa, args.peer_repeat)
    if t_peer is not None:
        note = "" if pr is True else f"WRONG: peer says {pr} (compares interval lists)"
    rows.append(("subset (A minus one GTID) <= A", t_ours, t_peer, note))
    t_ours, r = best(lambda: b <= a, args.repeat)
    t_peer, pr, note = attempt(lambda: pb in pa, args.peer_repeat)
    if t_peer is not None:
        note = "" if pr == r else f"WRONG: peer says {pr}"
    rows.append(("subset B <= A (false)", t_ours, t_peer, note))

    # 3. parse and format the union
    union_text = str(a | bd)
    t_ours, parsed = best(lambda: GtidSet.parse(union_text), args.repeat)
    t_peer, pparsed, note = attempt(lambda: PeerSet(union_text), args.peer_repeat)
    rows.append((f"parse union text ({len(union_text) / 1e6:.1f} MB)", t_ours, t_peer, note))
    t_ours, out = best(lambda: str(parsed), args.repeat)
    assert out == union_text
    t_peer, pout, note = attempt(lambda: str(pparsed), args.peer_repeat)
    if t_peer is not None and pout != union_text:
        note = "WRONG text"
    rows.append(("format union text", t_ours, t_peer, note))
    t_ours, _ = best(lambda: parsed.server_text(), args.repeat)
    rows.append(("format union, server's multi-line form", t_ours, None, "peer: no such form"))

    print(f"binlogkit.gtid vs mysql-replication {peer_version} GtidSet; best of "
          f"{args.repeat} (peer: {args.peer_repeat}); {args.uuids:,} UUIDs x {k} intervals per set")
    w = max(len(r[0]) for r in rows)
    print(f"{'operation':<{w}}  {'binlogkit':>10}  {'peer':>10}  {'peer/ours':>9}  notes")
    for label, ours, peer, note in rows:
        o = f"{ours * 1e3:9.1f}ms" if ours is not None else f"{'-':>10}"
        p = f"{peer * 1e3:9.1f}ms" if peer is not None else f"{'-':>10}"
        ratio = f"{peer / ours:8.1f}x" if peer is not None and ours else f"{'-':>9}"
        print(f"{label:<{w}}  {o}  {p}  {ratio}  {note}".rstrip())


if __name__ == "__main__":
    main()
