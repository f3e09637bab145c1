"""Reading a live server's binlogs for ``binlogkit dump URL`` and
``binlogkit fetch``: the server's flavor and binlog list, the stream, and its
errors as one line (see docs/streaming.md)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
import pymysql

from binlogkit.cli.common import fail
from binlogkit.cli.servers import (
    MASK,
    ConnectOptions,
    ServerError,
    ServerURL,
    connect,
    mask_url,
)
from binlogkit.protocol.blocking import BinlogStream, ConnectionLost
from binlogkit.protocol.fetch import FetchError
from binlogkit.protocol.packets import ProtocolError
from binlogkit.protocol.replica import Flavor, Start, StreamError


@dataclass
class Remote:
    """A server to stream from: its URL, connection options, and what it said."""

    url: ServerURL
    opts: ConnectOptions
    flavor: Flavor
    version: str
    files: list[str]  # SHOW BINARY LOGS, oldest first (when asked for)

    def secrets(self) -> list[str]:
        out = [self.url.password or ""]
        if self.opts.password_env:
            out.append(os.environ.get(self.opts.password_env, ""))
        return [s for s in out if s]


def _mask(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    return text


def probe(url_text: str, opts: ConnectOptions, *, list_files: bool) -> Remote:
    """Connect once: the server's VERSION() (the flavor; a note on stderr when
    the URL's scheme says otherwise) and, when ``list_files``, SHOW BINARY LOGS."""
    url = ServerURL.parse(url_text)
    conn = connect(url, opts)
    sql = "SELECT VERSION()"
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            version = str(row[0]) if row else ""
            files: list[str] = []
            if list_files:
                sql = "SHOW BINARY LOGS"
                cur.execute(sql)
                files = [r[0].decode() if isinstance(r[0], bytes) else str(r[0])
                         for r in cur.fetchall()]
    except pymysql.MySQLError as exc:
        text = str(exc.args[1]) if len(exc.args) >= 2 else str(exc)
        raise ServerError(f"{url.display}: {sql}: {text}") from None
    finally:
        conn.close()
    flavor: Flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
    if flavor != url.scheme:
        click.echo(f"binlogkit: note: {url.display} is a {flavor} server ({version}); "
                   f"reading it as {flavor}", err=True)
    if list_files and not files:
        raise ServerError(f"{url.display}: SHOW BINARY LOGS lists no binlog")
    return Remote(url=url, opts=opts, flavor=flavor, version=version, files=files)


def open_stream(remote: Remote, start: Start, *, follow: bool, server_id: int | None,
                heartbeat: float | None, verify: bool) -> BinlogStream:
    """A BinlogStream on ``remote``: blocking when ``follow``. The first
    connection's failure is a ServerError; later ones (reconnects) keep the
    error number, so the stream retries what can pass (2003: the server is
    restarting) and stops on what cannot (1045: access denied)."""
    first = True

    def opener() -> pymysql.connections.Connection[Any]:
        nonlocal first
        try:
            return connect(remote.url, remote.opts)
        except ServerError as exc:
            if first:
                raise
            raise pymysql.err.OperationalError(exc.code or 2003, str(exc)) from None
        finally:
            first = False

    def on_reconnect(attempt: int, exc: BaseException) -> None:
        click.echo(f"binlogkit: note: {remote.url.display}: connection lost; reconnecting "
                   f"(attempt {attempt})", err=True)

    return BinlogStream(opener, start, server_id=server_id, flavor=remote.flavor,
                        blocking=follow, heartbeat=heartbeat, verify_checksum=verify,
                        reconnect=True, max_attempts=None if follow else 5,
                        on_reconnect=on_reconnect)


@contextlib.contextmanager
def remote_errors(url_text: str, opts: ConnectOptions) -> Iterator[None]:
    """Server, stream and connection errors as ``binlogkit: error: ...`` and
    exit 2; no password in the line."""
    shown = mask_url(url_text)
    secrets: list[str] = []
    with contextlib.suppress(ServerError):
        url = ServerURL.parse(url_text)
        shown = url.display
        secrets = Remote(url, opts, "mysql", "", []).secrets()
    try:
        yield
    except ServerError as exc:
        fail(_mask(str(exc), secrets))
    except StreamError as exc:
        fail(_mask(f"{shown}: {exc}", secrets))
    except ConnectionLost as exc:
        fail(_mask(f"{shown}: connection lost: {exc}", secrets))
    except (ProtocolError, FetchError, pymysql.MySQLError) as exc:
        fail(_mask(f"{shown}: {exc}", secrets))
