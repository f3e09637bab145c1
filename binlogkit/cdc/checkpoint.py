"""Durable checkpoint stores (:class:`~binlogkit.cdc.model.CheckpointStore`).

- :class:`FileCheckpointStore`: one JSON file, replaced atomically: the new
  checkpoint goes to a temporary file in the same directory, which is
  fsynced, renamed over the old one, and the directory fsynced. A crash at
  any point leaves the old or the new checkpoint, never a torn one.
- :class:`SqliteCheckpointStore`: one row per ``name`` in a SQLite table
  (several consumers may share a database); ``save`` returns once the
  transaction is committed with ``synchronous=FULL``.

Both store :meth:`Checkpoint.to_json` and return what
:meth:`Checkpoint.from_json` makes of it; ``load`` returns None when nothing
was saved yet and raises :class:`CheckpointError` (one line naming the file)
when what is there cannot be read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

from binlogkit.cdc.model import Checkpoint

__all__ = ["CheckpointError", "FileCheckpointStore", "SqliteCheckpointStore"]


class CheckpointError(Exception):
    """A stored checkpoint cannot be read (corrupt file, wrong content)."""


def _parse(data: Any, where: str) -> Checkpoint:
    if not isinstance(data, dict) or not isinstance(data.get("position"), dict):
        raise CheckpointError(f"{where}: not a checkpoint (no 'position' object)")
    version = data.get("version", 1)
    if version != 1:
        raise CheckpointError(f"{where}: checkpoint version {version!r} is not supported")
    try:
        return Checkpoint.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: bad checkpoint: {exc!r}") from exc


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileCheckpointStore:
    """A checkpoint in the JSON file ``path`` (created with its directory on
    the first ``save``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileCheckpointStore({str(self.path)!r})"

    def load(self) -> Checkpoint | None:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"checkpoint file {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"checkpoint file {self.path} is corrupt: "
                                  f"{' '.join(str(exc).split())}") from exc
        return _parse(data, f"checkpoint file {self.path}")

    def save(self, checkpoint: Checkpoint) -> None:
        data = json.dumps(checkpoint.to_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(directory)


_SCHEMA = """CREATE TABLE IF NOT EXISTS binlogkit_checkpoint (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    saved_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
)"""


class SqliteCheckpointStore:
    """The checkpoint called ``name`` in the SQLite database ``path`` (table
    ``binlogkit_checkpoint``, one row per name). The database is opened in WAL
    mode with ``synchronous=FULL``: a committed save survives a power loss.
    Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str], name: str = "default") -> None:
        self.path = Path(path)
        self.name = name
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteCheckpointStore({str(self.path)!r}, name={self.name!r})"

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=FULL")
                    db.execute(_SCHEMA)
                except BaseException:
                    db.close()
                    raise
            except sqlite3.Error as exc:
                raise CheckpointError(f"checkpoint database {self.path}: {exc}") from exc
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> SqliteCheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self) -> Checkpoint | None:
        where = f"checkpoint database {self.path} (name {self.name!r})"
        with self._lock:
            try:
                row = self._conn().execute(
                    "SELECT data FROM binlogkit_checkpoint WHERE name = ?", (self.name,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise CheckpointError(f"{where}: {exc}") from exc
        if row is None:
            return None
        try:
            data = json.loads(row[0])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{where} is corrupt: {' '.join(str(exc).split())}") from exc
        return _parse(data, where)

    def save(self, checkpoint: Checkpoint) -> None:
        data = json.dumps(checkpoint.to_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        with self._lock:
            try:
                self._conn().execute(
                    "INSERT INTO binlogkit_checkpoint (name, data) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET data = excluded.data, "
                    "saved_at = excluded.saved_at", (self.name, data))
            except sqlite3.Error as exc:
                raise CheckpointError(f"checkpoint database {self.path}: {exc}") from exc
