"""GTID set algebra (MySQL and MariaDB). Depends on nothing else in binlogkit.

MySQL: :class:`GtidSet`
-----------------------

Design: **immutable set + mutable builder.** ``GtidSet`` is a value (hashable,
usable as a dict key, safe to share); every operator returns a new set and
shares untouched per-UUID data with its operands. For the streaming case
(GTIDs arriving one by one from a binlog) use ``GtidSet.builder()`` →
:class:`GtidSetBuilder`, whose ``add`` is O(log n) (O(1) for in-order appends),
then ``build()``. ``GtidSet.add`` exists for convenience and copies one UUID's
intervals.

Storage: per ``(uuid, tag)`` a flat tuple of boundaries ``start0, end0, start1,
end1, ...`` with exclusive ends, strictly increasing (overlapping and touching
intervals are always merged). Union sorts starts and ends independently (a new
interval begins at ``starts[k]`` iff ``starts[k] > ends[k-1]``) with C-level
``sorted``/``map``/``compress``; intersection and difference are unions of
complements, so no per-interval Python loop runs in the algebra. ``len()`` is a
difference of two C-level sums. The builder keeps a plain list per key and
switches to a ``sortedcontainers.SortedList`` beyond 16384 boundaries
(so pathological fragmentation stays O(log n) per add).

Text rules (MySQL 9.7's parser, verified against a live 9.7.4 server):

- Whitespace is ASCII 9-13 and 32 only, allowed before and after every token:
  around ``,`` ``:`` ``-``, before/after UUIDs, tags and numbers; never inside a
  UUID or number. Anything else (NUL, U+00A0 ...) is an error.
- Empty elements are fine: ``''``, ``' , ,, '``, leading/trailing/repeated commas.
- A UUID is 32 hex digits (either case), either all bare, dashed 8-4-4-4-12, or
  dashed inside braces ``{...}``; a UUID alone (or with tags only) adds nothing.
- After a UUID, any sequence of ``:``-prefixed items, each a tag or an interval.
  A tag is ``[A-Za-z_][A-Za-z0-9_]*`` of at most 32 characters, lower-cased; it
  applies to the following intervals until the next tag or UUID (several tags
  per UUID are fine; tags are never reset to untagged within one UUID element).
- An interval is ``N`` or ``N-M``, decimal digits only (no sign, no ``0x``, no
  octal: leading zeros are just decimal). ``N`` must be in 1..2^63-2 ("interval
  start out of range"), ``M`` in 0..2^63-2 ("interval end out of range").
  **Reversed intervals** (``M < N``, e.g. ``5-3`` or ``3-0``) are accepted and
  silently contribute nothing.
- ``uuid:`` / ``uuid::1`` / ``uuid:1:`` / ``uuid:1-`` / ``+...`` are errors.
- Output: UUIDs in byte order (lower-case), per UUID the untagged intervals
  first then tags in byte order, intervals as ``a-b`` or ``n`` joined by ``:``.
  ``str()`` joins UUID groups with ``,``; ``server_text()`` with ``,\\n`` as the
  server prints ``@@gtid_executed`` and GTID_SUBTRACT results.

Errors raise :class:`GtidError` with the 0-based ``position`` and what was
``expected`` there (the server words it "after N characters"; positions agree
for the common cases but are not guaranteed identical).

Binary SID block (``encode``/``decode``; COM_BINLOG_DUMP_GTID, PREVIOUS_GTIDS),
all integers little-endian:

======================  ===================================================
field                   layout
======================  ===================================================
header (u64)            untagged: ``n_sids`` (top byte 0);
                        tagged (8.3+): ``(1 << 56) | (n_sids << 8) | 1``
per sid: uuid           16 bytes
per sid: tag            tagged format only: varlen length + ASCII bytes
                        (mysql::serialization varlen; ``0x00`` = untagged)
per sid: n_intervals    u64
per interval            u64 start, u64 end (exclusive); starts increase
                        strictly and each start is greater than the
                        previous end (touching intervals are invalid)
======================  ===================================================

Sids appear sorted by (uuid, tag). ``encode(tagged=None)`` picks the tagged
format only when a tag is present, as the server does; ``decode`` validates
like the server (format byte, counts against the remaining size, interval
order, tag syntax, no trailing bytes).

MariaDB: :class:`MariadbGtidPos`, :class:`MariadbGtidState`
-----------------------------------------------------------

Text ``domain-server-seq`` joined by ``,``; numbers as the server's
``my_strtoll10`` reads them: optional leading whitespace (ASCII 9-13, 32) and
``+``, decimal digits, leading zeros ignored; no ``-`` sign; domain and server
0..2^32-1, seq 0..2^64-1. No whitespace before ``-`` or ``,`` or at the end; no
empty elements. Output is sorted numerically by domain. ``MariadbGtidPos``
holds at most one GTID per domain (duplicates are an error, as for
``gtid_slave_pos``); ``reached(target)`` is MASTER_GTID_WAIT's test: every
target GTID's seq_no is <= ours in its domain (an absent domain counts as 0,
server ids are ignored). ``MariadbGtidState`` keeps the last GTID per
(domain, server); its ``pos`` is each domain's most recently added GTID, and
``add(..., strict=True)`` enforces gtid_strict_mode ordering.
"""

from binlogkit.gtid.errors import GtidError
from binlogkit.gtid.mariadb import MariadbGtid, MariadbGtidPos, MariadbGtidState
from binlogkit.gtid.mysql import GNO_MAX, GNO_MIN, GtidSet, GtidSetBuilder

__all__ = [
    "GNO_MAX",
    "GNO_MIN",
    "GtidError",
    "GtidSet",
    "GtidSetBuilder",
    "MariadbGtid",
    "MariadbGtidPos",
    "MariadbGtidState",
]
