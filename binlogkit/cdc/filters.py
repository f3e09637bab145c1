"""Which tables and columns the change records keep.

Patterns are shell globs (``*``, ``?``, ``[...]``, as :mod:`fnmatch`, case
sensitive) on ``db.table``; a pattern without a dot names a database
(``fx`` is ``fx.*``). A change is kept when its table matches an
``include`` pattern (or there are none) and no ``exclude`` pattern.
``columns_exclude`` patterns on ``db.table.column`` remove columns from the
images of the changes kept.

DDL is kept when it names a table kept (:meth:`Filter.ddl_included`).
A transaction whose changes are all filtered out still becomes a
:class:`~binlogkit.cdc.model.Txn` (with no changes), so the checkpoint moves
past it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import translate


def _regex(patterns: Iterable[str], *, parts: int) -> re.Pattern[str] | None:
    out = []
    for p in patterns:
        if not p:
            continue
        if p.count(".") < parts - 1:
            p += ".*" * (parts - 1 - p.count("."))
        out.append(translate(p))
    return re.compile("|".join(f"(?:{r})" for r in out)) if out else None


_DATABASE = re.compile(r"\s*(?:CREATE|ALTER|DROP)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?"
                       r"EXISTS\s+)?(`[^`]+`|\w+)", re.I)


class Filter:
    """Table and column filters (see the module doc)."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = (),
                 columns_exclude: Iterable[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.columns_exclude = tuple(columns_exclude)
        self._inc = _regex(self.include, parts=2)
        self._exc = _regex(self.exclude, parts=2)
        self._cols = _regex(self.columns_exclude, parts=3)
        self._tables: dict[tuple[str, str], bool] = {}
        self._dropped: dict[tuple[str, str, tuple[str, ...]], frozenset[str]] = {}

    @property
    def empty(self) -> bool:
        """Nothing is filtered."""
        return self._inc is None and self._exc is None and self._cols is None

    def table_included(self, schema: str, table: str) -> bool:
        """Whether changes of ``schema.table`` are kept."""
        key = (schema, table)
        found = self._tables.get(key)
        if found is None:
            name = f"{schema}.{table}"
            found = (self._inc is None or self._inc.fullmatch(name) is not None) \
                and (self._exc is None or self._exc.fullmatch(name) is None)
            if len(self._tables) > 65536:
                self._tables.clear()
            self._tables[key] = found
        return found

    def ddl_included(self, db: str, sql: str) -> bool:
        """Whether a DDL statement (default database ``db``) is kept: it names
        a table kept, or, naming none (CREATE DATABASE...), its database could
        hold one."""
        from binlogkit.cdc.schema_history import tables_named  # noqa: PLC0415 (sqlglot)

        named = tables_named(db, sql)
        if not named:
            m = _DATABASE.match(sql)
            return self.table_included(m.group(1).strip("`") if m else db, "")
        return any(self.table_included(s, t) for s, t in named)

    def excluded_columns(self, schema: str, table: str, columns: Iterable[str]) -> frozenset[str]:
        """The names among ``columns`` that ``columns_exclude`` removes."""
        if self._cols is None:
            return frozenset()
        cols = tuple(columns)
        key = (schema, table, cols)
        found = self._dropped.get(key)
        if found is None:
            rx = self._cols
            found = frozenset(c for c in cols if rx.fullmatch(f"{schema}.{table}.{c}"))
            if len(self._dropped) > 4096:
                self._dropped.clear()
            self._dropped[key] = found
        return found

    def __repr__(self) -> str:
        return (f"Filter(include={list(self.include)!r}, exclude={list(self.exclude)!r}, "
                f"columns_exclude={list(self.columns_exclude)!r})")
