"""Which transactions of a binlog may run at the same time, and a parallel
applier that runs them so.

Dependencies
------------
:func:`dependencies` gives, for each transaction ``i``, an index ``d < i``
(or -1): transaction ``i`` may start once **every** transaction ``0..d`` has
committed. That is MySQL's logical-clock rule ("may start once every
transaction with ``sequence_number <= last_committed`` has committed") with
binlog indexes in place of sequence numbers. Two policies:

``commit_order``
    MySQL: ``d`` is the last transaction of the same file whose
    ``sequence_number <= last_committed`` (sequence numbers restart in each
    binlog file; a transaction never runs alongside one of an earlier file,
    as a replica's coordinator waits at each new file). Transactions without
    a logical clock (servers before 5.7, ANONYMOUS_GTID without one, no
    GTIDs) wait for the one before (``d = i - 1``).
    MariaDB: consecutive transactions with the same ``commit_id`` (the GTID
    event's GROUP_COMMIT_ID flag) committed together on the primary and may
    run together (MariaDB's *conservative* parallel mode): ``d`` is the last
    transaction before the group. A transaction without a ``commit_id``, or
    flagged DDL, is a group of its own.

``writeset``
    Like MySQL's ``binlog_transaction_dependency_tracking=WRITESET``
    computed from the rows themselves: ``d`` is the latest earlier
    transaction whose write set (:func:`writeset`) intersects, but never
    earlier than the last *barrier*. Barriers: DDL, statement-based or mixed
    transactions, transactions with no row changes (XA COMMIT, empty
    transactions), incomplete ones: they wait for everything before them
    (``d = i - 1``) and everything after waits for them. As in MySQL the
    history holds at most ``history_size`` keys
    (``binlog_transaction_dependency_history_size``, default 25000): when a
    transaction would overflow it, its dependency is computed, then the
    history is cleared and the transaction becomes the new floor.

Write sets
----------
For every row image (before and after) of every changed row: a 64-bit hash
of (key name, schema, table, key values), for the primary key and for every
unique key the caller names (a unique key with a NULL is skipped: NULLs
never collide). Key values are normalised so that values a case- or
accent-insensitive collation (or PAD SPACE) takes as equal hash equally:
strings are NFKD-decomposed, stripped of combining marks, case-folded and
right-stripped of spaces (so the write set can only grow). When no primary
key is known for a table (no caller key, and the table map says none: e.g.
``binlog_row_metadata=MINIMAL``) or an image lacks a key column, the write
set holds the table itself, ``("table", schema, table)``: the transaction
then conflicts with every transaction touching that table. (MySQL instead
falls back to the commit-order parent for such a transaction.) Foreign keys,
triggers and cascades are invisible in row images; give the parent table's
keys through ``unique_keys`` or treat such tables as keyless.

Parallelism report
------------------
Unit-time model, unlimited workers: every transaction takes one step and
starts as soon as its dependency allows. ``level(i) = 1 + max(level(j) for
j <= d)`` (1 when ``d = -1``): the step in which ``i`` runs.

- ``critical_path`` = the largest level: steps needed with unlimited workers;
- ``speedup_bound`` = transactions / critical_path: no schedule respecting the
  dependencies does better (it is also the mean number of transactions in
  flight per step);
- ``width_histogram``: ``{transactions running in a step: number of steps}``;
- *groups*: transactions cut, in binlog order, into runs that can all be in
  flight at once, as MySQL's coordinator hands them out: ``i`` joins the
  current group (starting at ``s``) when ``d < s``, else starts a new one.
  For a MySQL binlog under ``commit_order`` these are the runs of
  transactions sharing a commit group. Because a dependency means "all of
  ``0..d``", the number of groups always equals ``critical_path``;
- ``group_histogram``: ``{group size: number of groups}``;
- ``mean_parallelism``: the size of a transaction's group, averaged over
  transactions (``sum(size**2) / transactions``): how many transactions,
  itself included, the average transaction runs alongside;
- ``serialized``: transactions that wait for the one right before them.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from binlogkit.replay.model import Image
from binlogkit.replay.transactions import BinlogTxn, TxnRow

Policy = Literal["commit_order", "writeset"]
POLICIES: tuple[Policy, ...] = ("commit_order", "writeset")
HISTORY_SIZE = 25000
KeyColumns = Callable[[str, str], "tuple[str, ...] | None"]
UniqueKeys = Callable[[str, str], "Iterable[tuple[str, ...]]"]
WriteItem = int | tuple[str, str, str]


# --------------------------------------------------------------------- write sets


def _norm_text(s: str) -> str:
    d = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in d if not unicodedata.combining(ch)).casefold().rstrip(" ")


def _norm(value: Any, binary: bool) -> str:
    if isinstance(value, str):
        return "s" + _norm_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return "s" + _norm_text(raw.decode("latin-1")) if not binary else "b" + raw.hex()
    if isinstance(value, bool):
        return f"n{int(value)}"
    if isinstance(value, int):
        return f"n{value}"
    if isinstance(value, Decimal):
        return f"n{value.normalize():f}" if value == value else "nNaN"
    if isinstance(value, float):
        return f"n{Decimal(value).normalize():f}" if value == value else "nNaN"
    return "r" + repr(value)


def _hash(parts: Sequence[str]) -> int:
    data = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _image_key(image: Image, cols: tuple[str, ...], binary: frozenset[str]) -> list[str] | None:
    """Normalised values of ``cols`` in ``image``; None if one is missing."""
    out = []
    for c in cols:
        if c not in image:
            return None
        v = image[c]
        if v is None:
            return []  # NULL: never collides
        out.append(_norm(v, c in binary))
    return out


def _row_items(row: TxnRow, pk: tuple[str, ...], uniques: Iterable[tuple[str, ...]],
               out: set[WriteItem]) -> None:
    binary = frozenset(c.key for c in row.columns if c.is_binary)
    marker = ("table", row.schema, row.table)
    if not pk:
        out.add(marker)
        return
    images = [img for img in (row.before, row.after) if img is not None]
    for name, cols in [("PRIMARY", pk), *((",".join(u), u) for u in uniques if u)]:
        found = False
        for img in images:
            vals = _image_key(img, cols, binary)
            if vals is None:
                continue
            found = True
            if vals:
                out.add(_hash([name, row.schema, row.table, *vals]))
        if name == "PRIMARY" and not found:
            out.add(marker)  # no image holds the whole key
        elif name == "PRIMARY" and row.kind == "update" and row.before is not None \
                and _image_key(row.before, cols, binary) is None:
            out.add(marker)  # the after image alone cannot say which row changed


def writeset(
    txn: BinlogTxn,
    *,
    key_columns: KeyColumns | None = None,
    unique_keys: UniqueKeys | None = None,
) -> set[WriteItem]:
    """The write set of a row-based transaction: key hashes (``int``) and
    ``("table", schema, table)`` for tables whose rows cannot be keyed (see
    the module docstring). Empty for transactions that are not row-based
    (DDL, statements, no rows): those are barriers for :func:`dependencies`.

    ``key_columns(schema, table)`` gives the primary key columns (None or
    empty: use the table map's); ``unique_keys(schema, table)`` the columns of
    each UNIQUE key."""
    out: set[WriteItem] = set()
    if not txn.row_based:
        return out
    cache: dict[tuple[str, str], tuple[tuple[str, ...] | None, list[tuple[str, ...]]]] = {}
    for row in txn.rows:
        key = (row.schema, row.table)
        found = cache.get(key)
        if found is None:
            pk = key_columns(*key) if key_columns is not None else None
            uniques = list(unique_keys(*key)) if unique_keys is not None else []
            found = cache[key] = (tuple(pk) if pk else None, uniques)
        _row_items(row, found[0] or row.primary_key, found[1], out)
    return out


# ------------------------------------------------------------------ dependencies


class DependencyTracker:
    """:func:`dependencies` one transaction at a time (bounded memory apart
    from the write-set history)."""

    def __init__(
        self,
        policy: Policy = "writeset",
        *,
        key_columns: KeyColumns | None = None,
        unique_keys: UniqueKeys | None = None,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.policy = policy
        self.key_columns = key_columns
        self.unique_keys = unique_keys
        self.history_size = history_size
        self.count = 0
        # commit_order
        self._file: tuple[int, str | None] | None = None
        self._file_base = -1
        self._seqs: list[int] = []
        self._idx: list[int] = []
        self._group: tuple[int | None, int] = (None, 0)  # MariaDB (commit_id, group start)
        # writeset
        self.history: dict[Any, int] = {}
        self.history_start = -1
        self.resets = 0

    def add(self, txn: BinlogTxn) -> int:
        i = self.count
        self.count += 1
        if self.policy == "commit_order":
            return self._commit_order(i, txn)
        return self._writeset(i, txn)

    def _commit_order(self, i: int, txn: BinlogTxn) -> int:
        file = (txn.file_index, txn.file)
        sn, lc = txn.sequence_number, txn.last_committed
        if file != self._file or (sn is not None and self._seqs and sn <= self._seqs[-1]):
            self._file, self._file_base = file, i - 1
            self._seqs, self._idx = [], []
            self._group = (None, i)
        if txn.flavor == "mariadb":
            cid, start = self._group
            if txn.commit_id is None or txn.ddl or cid != txn.commit_id:
                self._group = (txn.commit_id if not txn.ddl else None, i)
                return i - 1
            return start - 1
        if sn is None or lc is None or lc >= sn or not txn.complete:
            dep = i - 1
        else:
            k = bisect_right(self._seqs, lc) - 1
            dep = max(self._idx[k] if k >= 0 else -1, self._file_base)
        if sn is not None:
            self._seqs.append(sn)
            self._idx.append(i)
        return dep

    def _writeset(self, i: int, txn: BinlogTxn) -> int:
        ws = writeset(txn, key_columns=self.key_columns, unique_keys=self.unique_keys) \
            if txn.complete else set()
        if not ws:  # barrier
            self._reset(i)
            return i - 1
        h = self.history
        touched = txn.tables()
        lookups: list[Any] = []
        updates: list[Any] = []
        for item in ws:
            if isinstance(item, tuple):
                lookups.append(("touch", item[1], item[2]))
                updates.append(("keyless", item[1], item[2]))
            else:
                lookups.append(item)
                updates.append(item)
        for s, t in touched:
            lookups.append(("keyless", s, t))
            updates.append(("touch", s, t))
        dep = self.history_start
        for k in lookups:
            j = h.get(k)
            if j is not None and j > dep:
                dep = j
        exceeds = len(h) + len(updates) > self.history_size
        for k in updates:
            if k in h or not exceeds:
                h[k] = i
        if exceeds:
            self._reset(i)
        return dep

    def _reset(self, i: int) -> None:
        self.history.clear()
        self.history_start = i
        self.resets += 1


def dependencies(
    txns: Iterable[BinlogTxn],
    policy: Policy = "writeset",
    *,
    key_columns: KeyColumns | None = None,
    unique_keys: UniqueKeys | None = None,
    history_size: int = HISTORY_SIZE,
) -> list[int]:
    """For each transaction, the index of the latest earlier one it must wait
    for (-1: none): it may start once that one and every one before it has
    committed. See the module docstring for the policies."""
    tracker = DependencyTracker(policy, key_columns=key_columns, unique_keys=unique_keys,
                                history_size=history_size)
    return [tracker.add(t) for t in txns]


# ----------------------------------------------------------------------- applier


class ParallelApplyError(Exception):
    """A transaction failed in a parallel run. ``__cause__`` is what the
    apply or commit callback raised; nothing after ``index`` was committed
    (with ``preserve_commit_order``)."""

    def __init__(self, index: int, txn: Any, cause: BaseException) -> None:
        self.index = index
        self.gtid = getattr(txn, "gtid", None)
        self.file = getattr(txn, "file", None)
        self.pos = getattr(txn, "start", None)
        where = f"{self.file or '<bytes>'} at byte {self.pos}"
        super().__init__(f"transaction #{index} ({self.gtid or 'no GTID'}, {where}) failed:"
                         f" {type(cause).__name__}: {cause}")


@dataclass
class RunStats:
    """What a :meth:`ParallelApplier.run` did."""

    committed: int = 0
    aborted: int = 0  # applied but not committed because an earlier one failed
    max_in_flight: int = 0
    commit_order: list[int] = field(default_factory=list)


Commit = Callable[[], None]


class ParallelApplier:
    """Apply transactions on ``workers`` threads, respecting dependencies.

    Two phases per transaction: ``apply(txn)`` does the work (in parallel
    with whatever the dependencies allow) and returns a commit callable (or
    None when there is nothing to do at commit). The worker then calls it:
    with ``preserve_commit_order`` only once every earlier transaction has
    committed (so commits happen in binlog order, like
    ``replica_preserve_commit_order=ON``), else right away. A transaction is
    dispatched, in binlog order, once its dependency (and everything before
    it) has committed and a worker is free.

    The first failure (in binlog order) stops the run: nothing more is
    dispatched, transactions after the failed one are not committed (their
    ``rollback(txn)`` is called when given, for every transaction whose
    ``apply`` succeeded but that was not committed, also when its commit
    callable raised),
    earlier ones in flight still commit, and :meth:`run` raises
    :class:`ParallelApplyError` naming the transaction's GTID and position.
    Without ``preserve_commit_order`` a later independent transaction may
    already have committed before the failure happened (as on MySQL, gaps).
    """

    def __init__(
        self,
        workers: int,
        apply: Callable[[BinlogTxn], Commit | None],
        policy: Policy = "writeset",
        preserve_commit_order: bool = True,
        *,
        rollback: Callable[[BinlogTxn], None] | None = None,
        key_columns: KeyColumns | None = None,
        unique_keys: UniqueKeys | None = None,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.apply = apply
        self.policy = policy
        self.preserve_commit_order = preserve_commit_order
        self.rollback = rollback
        self._tracker_args: dict[str, Any] = dict(
            key_columns=key_columns, unique_keys=unique_keys, history_size=history_size)

    def run(self, txns: Iterable[BinlogTxn],
            dependencies: Sequence[int] | None = None) -> RunStats:
        """Apply ``txns`` (in binlog order); ``dependencies`` overrides the
        policy's (see :func:`dependencies` for their meaning)."""
        return _Run(self).go(txns, dependencies)


class _Run:
    def __init__(self, owner: ParallelApplier) -> None:
        self.o = owner
        self.cond = threading.Condition()
        self.queue: deque[tuple[int, BinlogTxn]] = deque()
        self.idle = owner.workers
        self.done = False
        self.lwm = -1  # every transaction 0..lwm has committed
        self.committed: set[int] = set()
        self.failure: tuple[int, BinlogTxn, BaseException] | None = None
        self.in_flight = 0
        self.stats = RunStats()

    def failed_before(self, i: int) -> bool:
        return self.failure is not None and self.failure[0] < i

    def go(self, txns: Iterable[BinlogTxn], deps: Sequence[int] | None) -> RunStats:
        tracker = None if deps is not None else DependencyTracker(
            self.o.policy, **self.o._tracker_args)
        threads = [threading.Thread(target=self.worker, name=f"applier-{w}", daemon=True)
                   for w in range(self.o.workers)]
        for t in threads:
            t.start()
        try:
            for i, txn in enumerate(txns):
                if deps is not None:
                    if i >= len(deps):
                        raise ValueError(f"{len(deps)} dependencies for more transactions")
                    dep = deps[i]
                else:
                    assert tracker is not None
                    dep = tracker.add(txn)
                if not -1 <= dep < i:
                    raise ValueError(f"transaction {i} cannot depend on {dep}")
                with self.cond:
                    self.cond.wait_for(lambda d=dep: self.failure is not None  # type: ignore[misc]
                                       or (self.lwm >= d and self.idle > 0))
                    if self.failure is not None:
                        break
                    self.idle -= 1
                    self.queue.append((i, txn))
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()
            for t in threads:
                t.join()
        if self.failure is not None:
            index, txn, exc = self.failure
            raise ParallelApplyError(index, txn, exc) from exc
        return self.stats

    def worker(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.queue) or self.done)
                if not self.queue:
                    return
                i, txn = self.queue.popleft()
                if self.failed_before(i):
                    self.idle += 1
                    self.cond.notify_all()
                    continue
                self.in_flight += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight)
            self.one(i, txn)

    def one(self, i: int, txn: BinlogTxn) -> None:
        applied = False
        try:
            commit = self.o.apply(txn)
            applied = True
            with self.cond:
                if self.o.preserve_commit_order:
                    self.cond.wait_for(lambda: self.lwm == i - 1 or self.failed_before(i))
                abort = self.failed_before(i)
                if abort:
                    self.stats.aborted += 1
            if abort:
                applied = False  # rolled back here, not again below
                if self.o.rollback is not None:
                    self.o.rollback(txn)
            elif commit is not None:
                commit()
        except BaseException as exc:  # noqa: BLE001 - re-raised by run()
            with self.cond:
                if self.failure is None or i < self.failure[0]:
                    self.failure = (i, txn, exc)
                self.in_flight -= 1
                self.idle += 1
                self.cond.notify_all()
            if applied and self.o.rollback is not None:
                try:
                    self.o.rollback(txn)
                except Exception:  # noqa: BLE001 - the first error is what counts
                    pass
            return
        with self.cond:
            if not abort:
                self.committed.add(i)
                self.stats.committed += 1
                self.stats.commit_order.append(i)
                while self.lwm + 1 in self.committed:
                    self.lwm += 1
                    self.committed.discard(self.lwm)
            self.in_flight -= 1
            self.idle += 1
            self.cond.notify_all()


# ------------------------------------------------------------------------ report


@dataclass
class PolicyReport:
    """Parallelism under one policy (definitions in the module docstring)."""

    policy: str
    transactions: int = 0
    critical_path: int = 0
    speedup_bound: float = 0.0
    mean_parallelism: float = 0.0
    group_histogram: dict[int, int] = field(default_factory=dict)
    width_histogram: dict[int, int] = field(default_factory=dict)
    serialized: int = 0  # transactions that wait for the one right before them

    def to_json(self) -> dict[str, Any]:
        return {
            "transactions": self.transactions,
            "critical_path": self.critical_path,
            "speedup_bound": round(self.speedup_bound, 4),
            "mean_parallelism": round(self.mean_parallelism, 4),
            "group_histogram": {str(k): v for k, v in sorted(self.group_histogram.items())},
            "width_histogram": {str(k): v for k, v in sorted(self.width_histogram.items())},
            "serialized": self.serialized,
        }


@dataclass
class Report:
    transactions: int
    policies: dict[str, PolicyReport]

    def to_json(self) -> dict[str, Any]:
        return {"transactions": self.transactions,
                "policies": {k: v.to_json() for k, v in self.policies.items()}}


class _ReportBuilder:
    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.prefix_max: list[int] = []  # max level of transactions 0..i
        self.levels: Counter[int] = Counter()
        self.groups: Counter[int] = Counter()
        self.group_start = 0
        self.barriers = 0

    def add(self, i: int, dep: int) -> int:
        level = 1 + (self.prefix_max[dep] if dep >= 0 else 0)
        self.prefix_max.append(max(level, self.prefix_max[-1] if self.prefix_max else 0))
        self.levels[level] += 1
        if i and dep == i - 1:
            self.barriers += 1
        if i and dep >= self.group_start:
            self.groups[i - self.group_start] += 1
            self.group_start = i
        return level

    def result(self) -> PolicyReport:
        n = len(self.prefix_max)
        groups = Counter(self.groups)
        if n:
            groups[n - self.group_start] += 1
        cp = self.prefix_max[-1] if n else 0
        return PolicyReport(
            policy=self.policy, transactions=n, critical_path=cp,
            speedup_bound=n / cp if cp else 0.0,
            mean_parallelism=sum(k * k * v for k, v in groups.items()) / n if n else 0.0,
            group_histogram=dict(sorted(groups.items())),
            width_histogram=dict(sorted(Counter(self.levels.values()).items())),
            serialized=self.barriers,
        )


def report_from_dependencies(deps: Sequence[int], policy: str = "given") -> PolicyReport:
    """The report of one dependency list (levels, groups: module docstring)."""
    b = _ReportBuilder(policy)
    for i, d in enumerate(deps):
        b.add(i, d)
    return b.result()


def levels(deps: Sequence[int]) -> list[int]:
    """Each transaction's level (the unit-time step it runs in)."""
    b = _ReportBuilder("given")
    return [b.add(i, d) for i, d in enumerate(deps)]


def parallelism_report(
    txns: Iterable[BinlogTxn],
    policy: Policy | Literal["both"] = "both",
    *,
    key_columns: KeyColumns | None = None,
    unique_keys: UniqueKeys | None = None,
    history_size: int = HISTORY_SIZE,
) -> Report:
    """How parallel ``txns`` are under ``policy`` (or both), in one pass
    (transactions are not kept)."""
    names: tuple[Policy, ...] = POLICIES if policy == "both" else (policy,)
    trackers = [DependencyTracker(p, key_columns=key_columns, unique_keys=unique_keys,
                                  history_size=history_size) for p in names]
    builders = [_ReportBuilder(p) for p in names]
    n = 0
    for i, txn in enumerate(txns):
        n += 1
        for tr, b in zip(trackers, builders, strict=True):
            b.add(i, tr.add(txn))
    return Report(n, {b.policy: b.result() for b in builders})
