"""MariaDB GTIDs: ``domain-server-seq`` positions and binlog states."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from binlogkit.gtid.errors import GtidError

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
# One number as the server's my_strtoll10 reads it: leading whitespace, an
# optional '+', decimal digits (a '-' sign is an error).
_NUM = r"[ \t\n\v\f\r]*\+?([0-9]+)"
_GTID = re.compile(f"{_NUM}-{_NUM}-{_NUM}")


def _value(digits: str, limit: int) -> int | None:
    d = digits.lstrip("0")
    if len(d) > 20:
        return None
    v = int(d) if d else 0
    return v if v <= limit else None


def _parse_list(text: str) -> list[MariadbGtid]:
    """'d-s-n,d-s-n,...' as the server's gtid_parse_string_to_list reads it ('' is
    the empty list)."""
    if not isinstance(text, str):
        raise TypeError(f"GTID text must be str, not {type(text).__name__}")
    out: list[MariadbGtid] = []
    if text == "":
        return out
    pos = 0
    n = len(text)
    while True:
        m = _GTID.match(text, pos)
        if m is None:
            raise GtidError("a GTID domain-server-seq (unsigned decimal numbers)", text, pos)
        d = _value(m.group(1), U32)
        s = _value(m.group(2), U32)
        q = _value(m.group(3), U64)
        if d is None:
            raise GtidError(f"a domain id in 0..{U32}", text, m.start(1))
        if s is None:
            raise GtidError(f"a server id in 0..{U32}", text, m.start(2))
        if q is None:
            raise GtidError(f"a sequence number in 0..{U64}", text, m.start(3))
        out.append(MariadbGtid(d, s, q))
        pos = m.end()
        if pos == n:
            return out
        if text[pos] != ",":
            raise GtidError("',' or the end of the text", text, pos)
        pos += 1


class MariadbGtid(NamedTuple):
    """One MariaDB GTID."""

    domain: int
    server: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> MariadbGtid:
        gtids = _parse_list(text)
        if len(gtids) != 1:
            raise GtidError("exactly one GTID domain-server-seq", text, 0)
        return gtids[0]

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"


def _as_gtid(g: MariadbGtid | str) -> MariadbGtid:
    return MariadbGtid.parse(g) if isinstance(g, str) else MariadbGtid(*g)


class MariadbGtidPos:
    """A replication position: at most one GTID per domain (``gtid_slave_pos``,
    ``gtid_binlog_pos``, MASTER_GTID_WAIT targets). Immutable and hashable."""

    __slots__ = ("_by_domain",)

    def __init__(self, gtids: Iterable[MariadbGtid | str] = ()) -> None:
        by_domain: dict[int, MariadbGtid] = {}
        for g in gtids:
            g = _as_gtid(g)
            if g.domain in by_domain:
                raise GtidError(f"at most one GTID per domain: {by_domain[g.domain]} and {g} "
                                f"conflict (duplicate domain id {g.domain})")
            by_domain[g.domain] = g
        self._by_domain = dict(sorted(by_domain.items()))

    @classmethod
    def parse(cls, text: str) -> MariadbGtidPos:
        """Parse as ``SET GLOBAL gtid_slave_pos`` does (empty allowed, duplicate
        domains rejected)."""
        gtids = _parse_list(text)
        seen: dict[int, MariadbGtid] = {}
        pos = 0
        for g in gtids:
            if g.domain in seen:
                raise GtidError(f"one GTID per domain ({seen[g.domain]} and {g} share "
                                f"domain {g.domain})", text, pos)
            seen[g.domain] = g
            pos += len(str(g)) + 1
        return cls(gtids)

    def __str__(self) -> str:
        return ",".join(map(str, self._by_domain.values()))

    def __repr__(self) -> str:
        return f"MariadbGtidPos.parse({str(self)!r})"

    def __getitem__(self, domain: int) -> MariadbGtid:
        return self._by_domain[domain]

    def get(self, domain: int) -> MariadbGtid | None:
        return self._by_domain.get(domain)

    def __contains__(self, domain: object) -> bool:
        return domain in self._by_domain

    @property
    def domains(self) -> list[int]:
        return list(self._by_domain)

    def __iter__(self) -> Iterator[MariadbGtid]:
        return iter(self._by_domain.values())

    def __len__(self) -> int:
        return len(self._by_domain)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MariadbGtidPos):
            return NotImplemented
        return self._by_domain == other._by_domain

    def __hash__(self) -> int:
        return hash(tuple(self._by_domain.values()))

    def reached(self, target: MariadbGtidPos | Iterable[MariadbGtid | str] | str) -> bool:
        """Has a replica at this position reached ``target``? As MASTER_GTID_WAIT
        decides: for every GTID of the target, this position's seq_no in that
        domain (0 when the domain is absent) is at least the target's; server
        ids are ignored. The target may repeat a domain (all must be reached)."""
        if isinstance(target, str):
            gtids: Iterable[MariadbGtid] = _parse_list(target)
        elif isinstance(target, MariadbGtidPos):
            gtids = target
        else:
            gtids = [_as_gtid(g) for g in target]
        for g in gtids:
            mine = self._by_domain.get(g.domain)
            if (mine.seq if mine is not None else 0) < g.seq:
                return False
        return True

    def with_gtid(self, gtid: MariadbGtid | str) -> MariadbGtidPos:
        """A new position with ``gtid`` replacing its domain's entry."""
        g = _as_gtid(gtid)
        new = MariadbGtidPos()
        d = dict(self._by_domain)
        d[g.domain] = g
        new._by_domain = dict(sorted(d.items()))
        return new


class MariadbGtidState:
    """A binlog state: the last GTID per (domain, server), like ``gtid_binlog_state``.

    Mutable (it is fed from a stream). ``pos`` is the most recently added GTID of
    each domain, as the server computes ``gtid_binlog_pos``.
    """

    __slots__ = ("_domains",)

    def __init__(self, gtids: Iterable[MariadbGtid | str] = ()) -> None:
        # domain -> {server: gtid}, insertion order kept; the last entry updated is
        # moved to the end so it is the domain's most recent GTID.
        self._domains: dict[int, dict[int, MariadbGtid]] = {}
        for g in gtids:
            self.add(g)

    @classmethod
    def parse(cls, text: str) -> MariadbGtidState:
        """Parse ``gtid_binlog_state`` text; within a domain the last GTID listed is
        the most recent (the server writes it last)."""
        return cls(_parse_list(text))

    def add(self, gtid: MariadbGtid | str, strict: bool = False) -> MariadbGtidState:
        """Record a GTID. ``strict`` (gtid_strict_mode): raise GtidError unless its
        seq_no is greater than the domain's most recent one."""
        g = _as_gtid(gtid)
        servers = self._domains.get(g.domain)
        if servers is None:
            self._domains[g.domain] = {g.server: g}
            return self
        if strict:
            last = next(reversed(servers.values()))
            if last.seq >= g.seq:
                raise GtidError(f"a sequence number above {last.seq} in domain {g.domain} "
                                f"(gtid_strict_mode): {g} is not after {last}")
        servers.pop(g.server, None)
        servers[g.server] = g
        return self

    def copy(self) -> MariadbGtidState:
        new = MariadbGtidState()
        new._domains = {d: dict(s) for d, s in self._domains.items()}
        return new

    @property
    def pos(self) -> MariadbGtidPos:
        return MariadbGtidPos(next(reversed(s.values())) for s in self._domains.values())

    def gtids(self) -> list[MariadbGtid]:
        """Sorted by domain; within a domain by server id, the most recent last."""
        out: list[MariadbGtid] = []
        for d in sorted(self._domains):
            servers = self._domains[d]
            last = next(reversed(servers.values()))
            out.extend(sorted(g for g in servers.values() if g is not last))
            out.append(last)
        return out

    def __str__(self) -> str:
        return ",".join(map(str, self.gtids()))

    def __repr__(self) -> str:
        return f"MariadbGtidState.parse({str(self)!r})"

    def __len__(self) -> int:
        return sum(len(s) for s in self._domains.values())

    def __iter__(self) -> Iterator[MariadbGtid]:
        return iter(self.gtids())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MariadbGtidState):
            return NotImplemented
        return self.gtids() == other.gtids()

    __hash__ = None  # type: ignore[assignment]
