"""``binlogkit tail URL``: a server's row changes as JSON Lines, with a
checkpoint so a restart continues where it stopped."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from binlogkit.cli.common import fail, reports_errors
from binlogkit.cli.servers import (
    ConnectOptions,
    ServerError,
    ServerURL,
    connect,
    connection_options,
)

# client errors a reconnect may cure: can't connect (a restarting server),
# server gone, connection lost (binlogkit.protocol.blocking retries these)
_TRANSIENT = frozenset({2003, 2006, 2013})


def _connector(url: ServerURL, opts: ConnectOptions) -> Any:
    """``connect`` for the consumer. The first connection's failure is a
    ServerError (one line, exit 2); later ones (the stream reconnecting after
    a lost connection or a server restart) are re-raised as the PyMySQL
    error the stream driver knows, so it retries them with backoff instead
    of the consumer ending."""
    import pymysql  # noqa: PLC0415

    connected = [False]

    def open_connection() -> Any:
        try:
            conn = connect(url, opts)
        except ServerError as exc:
            if connected[0] and exc.code in _TRANSIENT:
                raise pymysql.err.OperationalError(exc.code, str(exc)) from None
            raise
        connected[0] = True
        return conn

    return open_connection


@click.command()
@click.argument("url")
@click.option("--checkpoint", "checkpoint_path", required=True,
              type=click.Path(dir_okay=False),
              help="Checkpoint file (JSON; a .sqlite or .db name: SQLite).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "debezium"]), default="jsonl",
              show_default=True, help="One object per row change, or Debezium's envelope.")
@click.option("--snapshot", "snapshot_mode", default="when-needed", show_default=True,
              type=click.Choice(["when-needed", "initial", "never"]),
              help="Full resync: when there is no checkpoint or the binlog it needs is "
                   "purged (when-needed), only when there is no checkpoint (initial), "
                   "or never (fail instead).")
@click.option("--include", multiple=True, metavar="DB.TABLE",
              help="Only these tables (shell globs; repeatable).")
@click.option("--exclude", multiple=True, metavar="DB.TABLE",
              help="Leave these tables out (shell globs; repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Append to this file (fsync'd before the checkpoint moves) instead of "
                   "stdout.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Wait for new changes, or stop at the end of the server's binlogs.")
@click.option("--server-id", type=int, help="Replica server id (default: random).")
@click.option("--heartbeat", type=float, default=5.0, show_default=True,
              help="Seconds between the source's heartbeats when it is idle.")
@click.option("--batch", type=int, default=100, show_default=True,
              help="Transactions per acknowledgement (and per redelivery after a crash).")
@connection_options
@reports_errors
def tail(url: str, checkpoint_path: str, fmt: str, snapshot_mode: str,
         include: tuple[str, ...], exclude: tuple[str, ...], output: str | None,
         follow: bool, server_id: int | None, heartbeat: float, batch: int,
         conn_opts: ConnectOptions) -> None:
    """Print the row changes of the server at URL (mysql:// or mariadb://)
    as JSON Lines: op, before, after, source. Ctrl-C stops after the current
    transaction and saves the checkpoint."""
    from binlogkit.cdc.checkpoint import (  # noqa: PLC0415
        CheckpointError,
        FileCheckpointStore,
        SqliteCheckpointStore,
    )
    from binlogkit.cdc.consumer import CdcError, Consumer, Status  # noqa: PLC0415
    from binlogkit.cdc.sinks import JsonLinesSink  # noqa: PLC0415
    from binlogkit.cdc.snapshot import SnapshotError  # noqa: PLC0415
    from binlogkit.protocol.blocking import ConnectionLost  # noqa: PLC0415
    from binlogkit.protocol.replica import StreamError  # noqa: PLC0415

    try:
        parsed = ServerURL.parse(url)
    except ServerError as exc:
        fail(str(exc))
        return
    store: Any = (SqliteCheckpointStore(checkpoint_path)
                  if checkpoint_path.endswith((".sqlite", ".db"))
                  else FileCheckpointStore(checkpoint_path))
    sink = JsonLinesSink(output, fmt=fmt)  # type: ignore[arg-type]
    shown = [0.0]

    def status(st: Status) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.5:
            shown[0] = now
            click.echo("\r" + st.line().ljust(70), err=True, nl=False)

    consumer = Consumer(_connector(parsed, conn_opts), sink, store,
                        snapshot=snapshot_mode, include=list(include),  # type: ignore[arg-type]
                        exclude=list(exclude), server_id=server_id, heartbeat=heartbeat,
                        batch=batch, on_status=status if sys.stderr.isatty() else None)
    stopping = [False]

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping[0]:
            raise KeyboardInterrupt
        stopping[0] = True
        consumer.stop()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        consumer.run(follow=follow)
    except (CdcError, ServerError, StreamError, ConnectionLost, CheckpointError,
            SnapshotError) as exc:
        fail(str(exc))
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        sink.close()
        if sys.stderr.isatty():
            click.echo("", err=True)
