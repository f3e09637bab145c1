"""Shared CLI plumbing: error reporting, progress, walking files' events."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader, files_from_index

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """Print one line on stderr and exit with status 2."""
    click.echo(f"binlogkit: error: {message}", err=True)
    sys.exit(2)


def reports_errors(func: F) -> F:
    """Turn BinlogError/OSError into one line and exit 2; no tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BinlogError as exc:
            fail(str(exc))
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


class Progress:
    """Progress on stderr (only when it is a terminal), at most twice a second."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def update(self, done: int, label: str) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        sys.stderr.write(f"\r{label}: {100 * done // self.total}%  ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def expand_paths(paths: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p.endswith(".index"):
            out.extend(os.fspath(x) for x in files_from_index(p))
        else:
            out.append(p)
    return out


def walk(
    paths: list[str], *, verify: bool = True, follow: bool = False,
    progress_label: str | None = None,
) -> Iterator[tuple[int, BinlogReader, Event]]:
    """(file index, reader, event) for every event of the files, inner
    events of a TRANSACTION_PAYLOAD right after it."""
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths]
    progress = Progress(sum(sizes))
    base = 0
    try:
        for i, path in enumerate(paths):
            reader = BinlogReader(path, verify_checksum=verify,
                                  follow=follow and i == len(paths) - 1)
            for ev in reader:
                yield i, reader, ev
                if ev.type_code == EventType.TRANSACTION_PAYLOAD:
                    for inner in inner_events(ev, verify=verify,
                                              file=reader.name):
                        yield i, reader, inner
                if progress_label:
                    progress.update(base + ev.next_pos, progress_label)
            base += sizes[i]
    finally:
        progress.close()
