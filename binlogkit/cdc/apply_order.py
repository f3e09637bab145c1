"""Broker messages held by transaction until the ordering rule of
:mod:`binlogkit.cdc.broker_layout` lets one be applied (``binlogkit apply
--from``).

Reading (:mod:`binlogkit.cdc.broker_readers`) gives each stream's messages
in order. Messages are held by transaction (field ``txn``); a transaction
is ready once all ``n`` of its messages are held and, in every stream it
has messages in, they are the oldest unapplied ones (DDL copies are
barriers). Its messages are applied in ``seq`` order. A message held again
(a redelivery) replaces the held one; a second copy of it (a sink that sent
it twice) is kept with the transaction, to be acknowledged with it.
``per_stream`` bounds the messages held per stream (beyond what one
transaction needs).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import islice

from binlogkit.cdc.apply_errors import ApplyError
from binlogkit.cdc.broker_readers import RawMessage, position_key


@dataclass(eq=False)
class Held:
    """One message held: the message, its position key and its fields."""

    raw: RawMessage
    key: tuple[int, ...]
    txn: str
    seq: int
    n: int
    op: str
    gtid: str = ""


@dataclass(eq=False)
class Pending:
    """A transaction's messages held so far (``dups``: copies of them)."""

    id: str
    n: int
    msgs: dict[int, Held] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    dups: list[RawMessage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.msgs) == self.n

    @property
    def ddl(self) -> bool:
        return any(h.op == "ddl" for h in self.msgs.values())

    def ordered(self) -> list[Held]:
        return [self.msgs[i] for i in range(self.n)]

    def last(self) -> dict[str, Held]:
        """Each stream's last message of this transaction."""
        out: dict[str, Held] = {}
        for h in self.msgs.values():
            cur = out.get(h.raw.stream)
            if cur is None or h.key > cur.key:
                out[h.raw.stream] = h
        return out

    def first(self) -> dict[str, Held]:
        out: dict[str, Held] = {}
        for h in self.msgs.values():
            cur = out.get(h.raw.stream)
            if cur is None or h.key < cur.key:
                out[h.raw.stream] = h
        return out


def parse(raw: RawMessage, display: str) -> Held:
    """``raw`` as a held message (``display``: the broker, for errors)."""
    f = raw.fields
    try:
        txn, seq, n, op = f["txn"], int(f["seq"]), int(f["n"]), f["op"]
    except (KeyError, ValueError):
        raise ApplyError(f"{display}: {raw.stream} at {raw.position}: not a "
                         "binlogkit change message (needs fields txn, seq, n, op)") from None
    if not 0 <= seq < n:
        raise ApplyError(f"{display}: {raw.stream} at {raw.position}: "
                         f"seq {seq} outside 0..{n - 1}")
    return Held(raw, position_key(raw.position), txn, seq, n, op, f.get("gtid", ""))


class Holding:
    """The held transactions (``txns``) and each stream's held messages in
    position order (``queues``)."""

    def __init__(self, per_stream: int = 500) -> None:
        self.per_stream = max(1, per_stream)
        self.txns: dict[str, Pending] = {}
        self.queues: dict[str, deque[Held]] = {}

    @property
    def count(self) -> int:
        """Messages held now."""
        return sum(len(t.msgs) for t in self.txns.values())

    @property
    def partial(self) -> bool:
        """Whether a transaction is partly held."""
        return any(not t.complete for t in self.txns.values())

    def add(self, h: Held, display: str) -> None:
        """Hold ``h`` (``display``: the broker, for errors)."""
        raw = h.raw
        t = self.txns.get(h.txn)
        if t is None:
            t = self.txns[h.txn] = Pending(h.txn, h.n)
        elif t.n != h.n:
            raise ApplyError(f"{display}: transaction {h.txn}: messages disagree "
                             f"on n ({t.n} and {h.n})")
        old = t.msgs.get(h.seq)
        if old is not None:
            if old.raw.stream == raw.stream and old.key == h.key:
                old.raw = raw  # delivered again: acknowledge the newest delivery
            else:
                t.dups.append(raw)  # a copy the sink sent again: acknowledged with it
            return
        t.msgs[h.seq] = h
        t.counts[raw.stream] += 1
        q = self.queues.setdefault(raw.stream, deque())
        if not q or q[-1].key < h.key:
            q.append(h)
        else:  # out of order (a redelivery): keep the queue sorted
            i = len(q)
            while i > 0 and q[i - 1].key > h.key:
                i -= 1
            q.insert(i, h)

    def room(self, stream: str) -> bool:
        """Whether to read more of ``stream`` now."""
        q = self.queues.get(stream)
        if not q or len(q) < self.per_stream:
            return True
        head = q[0].txn
        t = self.txns[head]
        # the head transaction still misses messages and they may be here
        return not t.complete and all(h.txn == head for h in q)

    def ready(self, ddl_of: str | None = None) -> Pending | None:
        """The first transaction that can be applied now; while the DDL of
        transaction ``ddl_of`` is unfinished, no other DDL transaction."""
        for t in self.txns.values():
            if t.complete and all(self._leads(s, t.id, k) for s, k in t.counts.items()) \
                    and (ddl_of is None or t.id == ddl_of or not t.ddl):
                return t
        return None

    def _leads(self, stream: str, txn: str, k: int) -> bool:
        q = self.queues.get(stream)
        return q is not None and len(q) >= k and all(h.txn == txn for h in islice(q, k))

    def clear(self) -> None:
        self.txns.clear()
        self.queues.clear()

    def pop(self, t: Pending) -> None:
        """Let go of ``t`` (applied)."""
        for s, k in t.counts.items():
            q = self.queues[s]
            for _ in range(k):
                q.popleft()
            if not q:
                del self.queues[s]
        del self.txns[t.id]

    def incomplete_text(self) -> str:
        parts = [f"{t.id} has {len(t.msgs)} of {t.n} messages"
                 for t in self.txns.values() if not t.complete][:3]
        if not parts:
            heads = {q[0].txn for q in self.queues.values() if q}
            return "transactions waiting behind others: " + ", ".join(sorted(heads)[:3])
        return "incomplete transaction " + "; ".join(parts) + \
            " (the rest never came: a sink that stopped mid-transaction, or trimmed streams)"
