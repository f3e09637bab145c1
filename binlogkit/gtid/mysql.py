"""MySQL GTID sets: ``uuid[:tag]:intervals``. See the package docstring for the rules."""

from __future__ import annotations

import re
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import compress
from operator import gt

from sortedcontainers import SortedList

from binlogkit.gtid.errors import GtidError

GNO_MIN = 1
GNO_MAX = (1 << 63) - 2  # largest transaction number the server accepts
_END = GNO_MAX + 1  # exclusive end of the universe (the server's GNO_END)
TAG_MAX = 32
_TAGGED_FORMAT = 1

_WS = re.compile(r"[ \t\n\v\f\r]*")
_H = "[0-9a-fA-F]"
_UUID = re.compile(
    rf"\{{{_H}{{8}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}\}}"
    rf"|{_H}{{8}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}"
    rf"|{_H}{{32}}"
)
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAG_FULL = re.compile(r"[a-z_][a-z0-9_]{0,31}")
_NUM = re.compile(r"[0-9]+")
# An element already in canonical spelling: parsed by split() instead of token by
# token (a 10 MB gtid_executed parses several times faster); anything else, and
# any element it cannot fully take, goes through the general parser.
_CLEAN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?::(?:[a-z_][a-z0-9_]{0,31}|[1-9][0-9]{0,18}(?:-[1-9][0-9]{0,18})?))*"
)
_Q = struct.Struct("<Q")
_QQ = struct.Struct("<QQ")

Key = tuple[str, str]  # (uuid as lower-case dashed text, tag or "")
# flat, strictly increasing: start0, end0, start1, end1 ... (ends exclusive)
Bounds = tuple[int, ...]


# --- small helpers ----------------------------------------------------------------


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m is not None else pos


def _norm_uuid(raw: str) -> str:
    h = raw.strip("{}").replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _number(text: str, start: int, end: int) -> int:
    digits = text[start:end].lstrip("0")
    if len(digits) > 19:  # also keeps int() away from its digit limit
        return _END + 1
    return int(digits) if digits else 0


def _from_pairs(starts: list[int], ends: list[int]) -> Bounds:
    """Union of the intervals [starts[i], ends[i]) (each non-empty), as flat bounds.

    Sorting starts and ends independently is enough: after sorting, a new union
    interval begins at starts[k] exactly when starts[k] > ends[k-1]. Everything
    below runs at C speed (timsort merges presorted runs in linear time).
    """
    if not starts:
        return ()
    s = sorted(starts)
    e = sorted(ends)
    mask = list(map(gt, s[1:], e[:-1]))
    new_s = [s[0], *compress(s[1:], mask)]
    new_e = [*compress(e[:-1], mask), e[-1]]
    out = [0] * (2 * len(new_s))
    out[::2] = new_s
    out[1::2] = new_e
    return tuple(out)


def _union(a: Bounds, b: Bounds) -> Bounds:
    if not a or a == b:
        return b
    if not b:
        return a
    if a[-1] < b[0]:
        return a + b
    if b[-1] < a[0]:
        return b + a
    return _from_pairs(list(a[::2] + b[::2]), list(a[1::2] + b[1::2]))


def _complement(x: Bounds) -> Bounds:
    if not x:
        return (GNO_MIN, _END)
    b = (GNO_MIN, *x, _END)
    if b[0] == b[1]:
        b = b[2:]
    if b and b[-1] == b[-2]:
        b = b[:-2]
    return b


def _difference(a: Bounds, b: Bounds) -> Bounds:
    if not a or not b or a[-1] <= b[0] or b[-1] <= a[0]:
        return a
    if a == b:
        return ()
    return _complement(_union(_complement(a), b))


def _intersection(a: Bounds, b: Bounds) -> Bounds:
    if not a or not b or a[-1] <= b[0] or b[-1] <= a[0]:
        return ()
    if a == b:
        return a
    return _complement(_union(_complement(a), _complement(b)))


def _count(b: Bounds) -> int:
    return sum(b[1::2]) - sum(b[::2])


def _insert(b: list[int] | SortedList, start: int, end: int) -> None:
    """Add [start, end) to a mutable flat bounds list, merging overlaps and touches.

    O(log n) search; a plain list then splices in C (memmove), a SortedList in
    O(log n).
    """
    if isinstance(b, list):
        if b and b[-1] == start:  # the streaming case: appending in order
            b[-1] = end
            return
        i = bisect_left(b, start)
        j = bisect_right(b, end, i)
        b[i:j] = ([] if i & 1 else [start]) + ([] if j & 1 else [end])
    else:
        i = b.bisect_left(start)
        j = b.bisect_right(end)
        del b[i:j]
        if not i & 1:
            b.add(start)
        if not j & 1:
            b.add(end)


def _add_one(b: list[int], gno: int) -> None:
    """Add one transaction number to a flat bounds list (the builder's hot path)."""
    i = bisect_right(b, gno)
    if i & 1:
        return
    after = i < len(b) and b[i] == gno + 1
    if i and b[i - 1] == gno:
        if after:
            del b[i - 1 : i + 1]
        else:
            b[i - 1] = gno + 1
    elif after:
        b[i] = gno
    else:
        b[i:i] = (gno, gno + 1)


_PROMOTE = 16384  # per-key list length at which the builder switches to a SortedList


def _encode_varlen(value: int) -> bytes:
    """mysql::serialization unsigned varlen (1..9 bytes)."""
    n = value.bit_length()
    k = 1 if n == 0 else 9 if n > 63 else 1 + (n - 1) // 7
    if k == 9:
        return b"\xff" + value.to_bytes(8, "little")
    return ((value << k) | ((1 << (k - 1)) - 1)).to_bytes(k, "little")


def _decode_varlen(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise GtidError("a varlen integer, found the end of the data", None, pos)
    first = data[pos]
    k = 1
    while k < 9 and first & (1 << (k - 1)):
        k += 1
    if pos + k > len(data):
        raise GtidError("a varlen integer, found the end of the data", None, pos)
    if k == 9:
        return int.from_bytes(data[pos + 1 : pos + 9], "little"), pos + 9
    return int.from_bytes(data[pos : pos + k], "little") >> k, pos + k


# --- parsing ----------------------------------------------------------------------


def _add_clean(acc: dict[Key, tuple[list[int], list[int]]], element: str) -> bool:
    """Add a canonically spelled element; False if a number is out of range."""
    items = element.split(":")
    uuid = items[0]
    tag = ""
    lists = None
    for item in items[1:]:
        if item[0] in "123456789":
            first, _, last = item.partition("-")
            start = int(first)
            end = int(last) if last else start
            if start > GNO_MAX or end > GNO_MAX:
                return False
            if end >= start:
                if lists is None:
                    lists = acc.get((uuid, tag))
                    if lists is None:
                        lists = acc[(uuid, tag)] = ([], [])
                lists[0].append(start)
                lists[1].append(end + 1)
        else:
            tag = item
            lists = None
    return True


def _parse(text: str) -> dict[Key, tuple[list[int], list[int]]]:
    """Parse GTID set text into per-key (starts, ends) lists, following MySQL 9.7."""
    if not isinstance(text, str):
        raise TypeError(f"GTID set text must be str, not {type(text).__name__}")
    acc: dict[Key, tuple[list[int], list[int]]] = {}
    n = len(text)
    ws = _skip
    pos = ws(text, 0)
    while True:
        while pos < n and text[pos] == ",":
            pos = ws(text, pos + 1)
        if pos >= n:
            return acc
        m = _CLEAN.match(text, pos)
        if m is not None and (m.end() == n or text[m.end()] == ","):
            if _add_clean(acc, m.group()):
                pos = m.end()
                continue
        m = _UUID.match(text, pos)
        if m is None:
            where, what = _uuid_error(text, pos)
            raise GtidError(f"{what} of a UUID (32 hex digits, bare, dashed 8-4-4-4-12 "
                            "or dashed in braces)", text, where)
        uuid = _norm_uuid(m.group())
        pos = ws(text, m.end())
        tag = ""
        while pos < n and text[pos] == ":":
            pos = ws(text, pos + 1)
            m = _TAG.match(text, pos)
            if m is not None and m.end() - pos <= TAG_MAX:
                tag = m.group().lower()
                pos = ws(text, m.end())
                continue
            m = _NUM.match(text, pos)
            if m is None:
                raise GtidError("a number (or a tag [a-z_][a-z0-9_]{0,31})", text, pos)
            start = _number(text, pos, m.end())
            if not GNO_MIN <= start <= GNO_MAX:
                raise GtidError(f"an interval start in {GNO_MIN}..{GNO_MAX}", text, pos)
            last = start
            pos = ws(text, m.end())
            if pos < n and text[pos] == "-":
                pos = ws(text, pos + 1)
                m = _NUM.match(text, pos)
                if m is None:
                    raise GtidError("a number after '-'", text, pos)
                last = _number(text, pos, m.end())
                if last > GNO_MAX:
                    raise GtidError(f"an interval end in 0..{GNO_MAX}", text, pos)
                pos = ws(text, m.end())
            if last >= start:  # the server silently drops reversed intervals
                lists = acc.get((uuid, tag))
                if lists is None:
                    lists = acc[(uuid, tag)] = ([], [])
                lists[0].append(start)
                lists[1].append(last + 1)
        if pos < n and text[pos] != ",":
            raise GtidError("',' or ':' or the end of the text", text, pos)


_HEX = frozenset("0123456789abcdefABCDEF")


def _uuid_error(text: str, pos: int) -> tuple[int, str]:
    """Where and why a UUID fails to parse at ``pos``, located as the server does."""
    n = len(text)
    p = pos
    brace = text.startswith("{", p)
    hyphens: bool | None = True if brace else None
    p += brace
    for k, size in enumerate((8, 4, 4, 4, 12)):
        if k:
            if hyphens is None:
                hyphens = text.startswith("-", p)
                p += hyphens
            elif hyphens:
                if not text.startswith("-", p):
                    return p, "'-'"
                p += 1
        for _ in range(size // 2):
            if n - p < 2:
                return p, "two hex digits"
            if text[p] not in _HEX:
                return p, "a hex digit"
            if text[p + 1] not in _HEX:
                return p + 1, "a hex digit"
            p += 2
    return p, "'}'"


def _parse_gtid(gtid: str | tuple[str, str, int]) -> tuple[Key, int]:
    """One GTID: 'uuid:n', 'uuid:tag:n' or a (uuid, tag, n) tuple."""
    if isinstance(gtid, tuple):
        uuid, tag, gno = gtid
        text = f"{uuid}:{tag}:{gno}" if tag else f"{uuid}:{gno}"
    else:
        text = gtid
        parts = gtid.split(":")
        if len(parts) == 2:
            uuid, tag, num = parts[0], "", parts[1]
        elif len(parts) == 3:
            uuid, tag, num = parts
        else:
            raise GtidError("a single GTID 'uuid:n' or 'uuid:tag:n'", text, 0)
        ws = " \t\n\v\f\r"
        uuid, tag, num = uuid.strip(ws), tag.strip(ws), num.strip(ws)
        if not _NUM.fullmatch(num):
            raise GtidError("a transaction number", text, len(text) - len(parts[-1]))
        gno = _number(num, 0, len(num))
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
        raise GtidError("a UUID", text, 0)
    tag = tag.lower()
    if tag and not _TAG_FULL.fullmatch(tag):
        raise GtidError("a tag [a-z_][a-z0-9_]{0,31}", text, len(uuid) + 1)
    if not isinstance(gno, int) or not GNO_MIN <= gno <= GNO_MAX:
        raise GtidError(f"a transaction number in {GNO_MIN}..{GNO_MAX}", text, text.rfind(":") + 1)
    return (_norm_uuid(uuid), tag), gno


# --- the set ----------------------------------------------------------------------


GtidLike = str | tuple[str, str, int]


class GtidSet:
    """An immutable, hashable MySQL GTID set (see the package docstring).

    Build one with :meth:`parse`, :meth:`decode`, the operators, or a
    :class:`GtidSetBuilder` (``GtidSet.builder()``) when adding GTIDs one by one.
    """

    __slots__ = ("_map", "_hash", "_keys")

    def __init__(self) -> None:
        self._map: dict[Key, Bounds] = {}
        self._hash: int | None = None
        self._keys: list[Key] | None = None

    @classmethod
    def _of(cls, mapping: dict[Key, Bounds]) -> GtidSet:
        s = cls.__new__(cls)
        s._map = mapping
        s._hash = None
        s._keys = None
        return s

    # -- construction ------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> GtidSet:
        """Parse GTID set text exactly as MySQL 9.7 does (GTID_SUBSET and friends)."""
        acc = _parse(text)
        mapping = {}
        for key, (starts, ends) in acc.items():
            mapping[key] = _from_pairs(starts, ends)
        return cls._of(mapping)

    @classmethod
    def builder(cls) -> GtidSetBuilder:
        return GtidSetBuilder()

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[str, str, int, int]]) -> GtidSet:
        """From ``(uuid, tag, first, last)`` tuples (inclusive; reversed ones are empty)."""
        b = GtidSetBuilder()
        for uuid, tag, first, last in intervals:
            b.add_interval(uuid, tag, first, last)
        return b.build()

    @classmethod
    def decode(cls, data: bytes) -> GtidSet:
        """Decode the binary SID block (COM_BINLOG_DUMP_GTID, PREVIOUS_GTIDS body).

        Validates like the server: intervals strictly increasing and not touching
        within a SID, ends exclusive, tags well-formed, no trailing bytes.
        """
        data = bytes(data)
        size = len(data)
        if size < 8:
            raise GtidError("an 8-byte SID count", None, 0)
        header = _Q.unpack_from(data, 0)[0]
        fmt = header >> 56
        if fmt == 0:
            n_sids = header
        elif fmt == _TAGGED_FORMAT:
            n_sids = (header >> 8) & 0xFFFFFFFFFFFF
        else:
            raise GtidError(f"GTID set format 0 or 1 in the top byte, found {fmt}", None, 7)
        if n_sids * 24 > size - 8:
            raise GtidError(f"{n_sids} SIDs, which cannot fit in {size} bytes", None, 0)
        pos = 8
        acc: dict[Key, Bounds] = {}
        for _ in range(n_sids):
            if size - pos < 24:
                raise GtidError("a 16-byte UUID and an interval count", None, pos)
            raw = data[pos : pos + 16].hex()
            uuid = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
            pos += 16
            tag = ""
            if fmt == _TAGGED_FORMAT:
                length, tpos = _decode_varlen(data, pos)
                if length > TAG_MAX or tpos + length > size:
                    raise GtidError(f"a tag of at most {TAG_MAX} bytes", None, pos)
                try:
                    tag = data[tpos : tpos + length].decode("ascii").lower()
                except UnicodeDecodeError:
                    tag = "\x00"
                if tag and not _TAG_FULL.fullmatch(tag):
                    raise GtidError("a tag [a-z_][a-z0-9_]{0,31}", None, tpos)
                pos = tpos + length
            if size - pos < 8:
                raise GtidError("an interval count", None, pos)
            n_iv = _Q.unpack_from(data, pos)[0]
            pos += 8
            if n_iv * 16 > size - pos:
                raise GtidError(f"{n_iv} intervals, which cannot fit in the data", None, pos - 8)
            flat = list(struct.unpack_from(f"<{2 * n_iv}Q", data, pos))
            last = 0
            for k in range(0, 2 * n_iv, 2):
                start, end = flat[k], flat[k + 1]
                if start <= last or end <= start or end > _END:
                    raise GtidError("intervals with 0 < start < end <= 2^63-1, each starting "
                                    "after the previous end", None, pos + 8 * k)
                last = end
            pos += 16 * n_iv
            if flat:
                key = (uuid, tag)
                acc[key] = _union(acc.get(key, ()), tuple(flat))
        if pos != size:
            raise GtidError(f"the end of the GTID set ({size - pos} bytes left over)", None, pos)
        return cls._of(acc)

    # -- output ------------------------------------------------------------------

    def _sorted_keys(self) -> list[Key]:
        if self._keys is None:
            self._keys = sorted(self._map)
        return self._keys

    def _groups(self) -> list[str]:
        groups: list[str] = []
        cur = None
        parts: list[str] = []
        for key in self._sorted_keys():
            uuid, tag = key
            if uuid != cur:
                if parts:
                    groups.append("".join(parts))
                parts = [uuid]
                cur = uuid
            if tag:
                parts.append(":" + tag)
            b = self._map[key]
            for i in range(0, len(b), 2):
                s, e = b[i], b[i + 1] - 1
                parts.append(f":{s}" if s == e else f":{s}-{e}")
        if parts:
            groups.append("".join(parts))
        return groups

    def __str__(self) -> str:
        """Canonical one-line text: UUID groups joined by ','."""
        return ",".join(self._groups())

    def server_text(self) -> str:
        """The server's text (``@@gtid_executed``, GTID_SUBTRACT): groups joined by ',\\n'."""
        return ",\n".join(self._groups())

    def __repr__(self) -> str:
        text = str(self)
        if len(text) > 200:
            text = text[:197] + "..."
        return f"GtidSet.parse({text!r})"

    def encode(self, tagged: bool | None = None) -> bytes:
        """The binary SID block. ``tagged=None``: the tagged format only when a tag
        is present (as the server chooses); False with tags present raises."""
        has_tags = any(tag for _, tag in self._map)
        if tagged is None:
            tagged = has_tags
        elif not tagged and has_tags:
            raise GtidError("no tagged GTIDs: the untagged format cannot carry tags")
        keys = self._sorted_keys()
        n = len(keys)
        header = (_TAGGED_FORMAT << 56) | (n << 8) | _TAGGED_FORMAT if tagged else n
        out = [_Q.pack(header)]
        for key in keys:
            uuid, tag = key
            out.append(bytes.fromhex(uuid.replace("-", "")))
            if tagged:
                out.append(_encode_varlen(len(tag)) + tag.encode("ascii"))
            b = self._map[key]
            out.append(_Q.pack(len(b) // 2))
            out.append(struct.pack(f"<{len(b)}Q", *b))
        return b"".join(out)

    # -- inspection --------------------------------------------------------------

    def intervals(self) -> Iterator[tuple[str, str, int, int]]:
        """``(uuid, tag, first, last)`` (inclusive) in canonical order."""
        for key in self._sorted_keys():
            uuid, tag = key
            b = self._map[key]
            for i in range(0, len(b), 2):
                yield uuid, tag, b[i], b[i + 1] - 1

    def tsids(self) -> list[tuple[str, str]]:
        """The (uuid, tag) pairs present, in order."""
        return list(self._sorted_keys())

    def __iter__(self) -> Iterator[str]:
        """Every GTID as text, in order (lazy; may be very long)."""
        for uuid, tag, first, last in self.intervals():
            prefix = f"{uuid}:{tag}:" if tag else f"{uuid}:"
            for gno in range(first, last + 1):
                yield f"{prefix}{gno}"

    def count(self) -> int:
        """Number of transactions (exact; may exceed what ``len()`` can return)."""
        return sum(_count(b) for b in self._map.values())

    def __len__(self) -> int:
        """Number of transactions; Python limits ``len()`` to 2^63-1, so sets with
        several near-full UUIDs raise OverflowError: use :meth:`count`."""
        return self.count()

    def __bool__(self) -> bool:
        return bool(self._map)

    def __contains__(self, gtid: object) -> bool:
        if not isinstance(gtid, (str, tuple)):
            return False
        key, gno = _parse_gtid(gtid)  # type: ignore[arg-type]
        b = self._map.get(key)
        return b is not None and bool(bisect_right(b, gno) & 1)

    def last_gno(self, uuid: str, tag: str = "") -> int:
        """The highest transaction number for (uuid, tag), 0 if none."""
        b = self._map.get((_norm_uuid(uuid), tag.lower()))
        return b[-1] - 1 if b else 0

    # -- algebra -----------------------------------------------------------------

    def __or__(self, other: GtidSet) -> GtidSet:
        if not isinstance(other, GtidSet):
            return NotImplemented
        a, b = self._map, other._map
        if len(a) < len(b):
            a, b = b, a
        out = dict(a)
        for key, bounds in b.items():
            mine = out.get(key)
            out[key] = bounds if mine is None else _union(mine, bounds)
        return GtidSet._of(out)

    def __and__(self, other: GtidSet) -> GtidSet:
        if not isinstance(other, GtidSet):
            return NotImplemented
        a, b = self._map, other._map
        if len(a) > len(b):
            a, b = b, a
        out = {}
        for key, bounds in a.items():
            theirs = b.get(key)
            if theirs is not None:
                r = _intersection(bounds, theirs)
                if r:
                    out[key] = r
        return GtidSet._of(out)

    def __sub__(self, other: GtidSet) -> GtidSet:
        if not isinstance(other, GtidSet):
            return NotImplemented
        b = other._map
        out = {}
        for key, bounds in self._map.items():
            theirs = b.get(key)
            r = bounds if theirs is None else _difference(bounds, theirs)
            if r:
                out[key] = r
        return GtidSet._of(out)

    def __xor__(self, other: GtidSet) -> GtidSet:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return (self - other) | (other - self)

    def union(self, *others: GtidSet) -> GtidSet:
        r = self
        for o in others:
            r = r | o
        return r

    def issubset(self, other: GtidSet) -> bool:
        b = other._map
        for key, bounds in self._map.items():
            theirs = b.get(key)
            if theirs is None:
                return False
            if bounds != theirs and _count(_union(bounds, theirs)) != _count(theirs):
                return False
        return True

    def issuperset(self, other: GtidSet) -> bool:
        return other.issubset(self)

    def isdisjoint(self, other: GtidSet) -> bool:
        a, b = self._map, other._map
        if len(a) > len(b):
            a, b = b, a
        for key, bounds in a.items():
            theirs = b.get(key)
            if theirs is not None and _intersection(bounds, theirs):
                return False
        return True

    def __le__(self, other: GtidSet) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return self.issubset(other)

    def __lt__(self, other: GtidSet) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return self != other and self.issubset(other)

    def __ge__(self, other: GtidSet) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return other.issubset(self)

    def __gt__(self, other: GtidSet) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return self != other and other.issubset(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return self._map == other._map

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._map.items()))
        return self._hash

    def add(self, gtid: GtidLike) -> GtidSet:
        """A new set with one more GTID (O(intervals of that UUID); use a builder
        for many)."""
        key, gno = _parse_gtid(gtid)
        b = self._map.get(key, ())
        if bisect_right(b, gno) & 1:
            return self
        lst = list(b)
        _insert(lst, gno, gno + 1)
        out = dict(self._map)
        out[key] = tuple(lst)
        return GtidSet._of(out)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (GtidSet.parse, (str(self),))


class GtidSetBuilder:
    """Mutable accumulator for the streaming case; :meth:`build` gives a GtidSet.

    ``add`` is O(log n) per GTID (in-order appends are O(1)); sets and intervals
    are merged with :meth:`update` / :meth:`add_interval`.
    """

    __slots__ = ("_map", "_uuids", "_raw")

    def __init__(self, initial: GtidSet | None = None) -> None:
        self._map: dict[Key, list[int] | SortedList] = {}
        self._uuids: dict[str, str] = {}
        self._raw: dict[tuple[str, str], Key] = {}
        if initial is not None:
            self.update(initial)

    def _key(self, uuid: str, tag: str) -> Key:
        norm = self._uuids.get(uuid)
        if norm is None:
            if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
                raise GtidError("a UUID", str(uuid), 0)
            norm = self._uuids[uuid] = _norm_uuid(uuid)
        if tag:
            tag = tag.lower()
            if not _TAG_FULL.fullmatch(tag):
                raise GtidError("a tag [a-z_][a-z0-9_]{0,31}", tag, 0)
        return norm, tag

    def _bounds(self, key: Key) -> list[int] | SortedList:
        b = self._map.get(key)
        if b is None:
            b = self._map[key] = []
        elif type(b) is list and len(b) > _PROMOTE:
            b = self._map[key] = SortedList(b)
        return b

    def add(self, gtid: GtidLike) -> GtidSetBuilder:
        """Add one GTID: 'uuid:n', 'uuid:tag:n' or (uuid, tag, n)."""
        if type(gtid) is tuple:
            uuid, tag, gno = gtid
        else:
            parts: list[str] = gtid.split(":") if isinstance(gtid, str) else []
            num = parts[-1] if len(parts) in (2, 3) else ""
            if not (num.isascii() and num.isdigit()):
                key, gno = _parse_gtid(gtid)
                _insert(self._bounds(key), gno, gno + 1)
                return self
            uuid, tag, gno = parts[0], parts[1] if len(parts) == 3 else "", int(num)
        raw = (uuid, tag)
        cached = self._raw.get(raw)
        if cached is None:
            cached = self._raw[raw] = self._key(uuid, tag)
        key = cached
        if type(gno) is not int or not GNO_MIN <= gno <= GNO_MAX:
            raise GtidError(f"a transaction number in {GNO_MIN}..{GNO_MAX}", str(gtid), None)
        b = self._map.get(key)
        if b is None:
            self._map[key] = [gno, gno + 1]
        elif type(b) is list and len(b) <= _PROMOTE:
            _add_one(b, gno)
        else:
            _insert(self._bounds(key), gno, gno + 1)
        return self

    def add_interval(self, uuid: str, tag: str, first: int, last: int) -> GtidSetBuilder:
        """Add ``first..last`` inclusive (nothing when last < first)."""
        if not (GNO_MIN <= first <= GNO_MAX and 0 <= last <= GNO_MAX):
            raise GtidError(f"an interval within {GNO_MIN}..{GNO_MAX}", f"{first}-{last}", None)
        if last >= first:
            _insert(self._bounds(self._key(uuid, tag)), first, last + 1)
        return self

    def update(self, other: GtidSet) -> GtidSetBuilder:
        for key, bounds in other._map.items():
            mine = self._map.get(key)
            if not mine:
                self._map[key] = list(bounds)
            elif type(mine) is list:
                self._map[key] = list(_union(tuple(mine), bounds))
            else:
                self._map[key] = SortedList(_union(tuple(mine), bounds))
        return self

    def __contains__(self, gtid: GtidLike) -> bool:
        key, gno = _parse_gtid(gtid)
        b = self._map.get(key)
        if not b:
            return False
        i = bisect_right(b, gno) if isinstance(b, list) else b.bisect_right(gno)
        return bool(i & 1)

    def __len__(self) -> int:
        return sum(sum(b[1::2]) - sum(b[::2]) for b in self._map.values())

    def build(self) -> GtidSet:
        return GtidSet._of({k: tuple(b) for k, b in self._map.items() if b})
