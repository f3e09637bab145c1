"""``binlogkit tail URL``: a server's row changes as JSON Lines, or into a
broker (``--sink``), with a checkpoint so a restart continues where it stopped."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from binlogkit.cdc.broker_urls import NO_FOLLOW_RETRY
from binlogkit.cdc.model import SinkError
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


def _open_sink(sink_url: str | None, output: str | None, fmt: str, *, name: str,
               prefix: str, partitions: int, replicas: int, retry_for: float | None) -> Any:
    """The sink for ``--sink`` (a broker) or ``-o`` / stdout (JSON Lines)."""
    if sink_url is None:
        from binlogkit.cdc.sinks import JsonLinesSink  # noqa: PLC0415
        return JsonLinesSink(output, fmt=fmt)  # type: ignore[arg-type]
    from binlogkit.cdc.broker_urls import BrokerURL  # noqa: PLC0415
    broker = BrokerURL.parse(sink_url)
    if broker.kind == "redis":
        from binlogkit.cdc.redis_sink import RedisStreamsSink  # noqa: PLC0415
        return RedisStreamsSink(broker.servers, prefix=broker.path, server=name,
                                fmt=fmt, partitions=partitions,  # type: ignore[arg-type]
                                retries=None, retry_for=retry_for)
    from binlogkit.cdc.nats_sink import NatsJetStreamSink  # noqa: PLC0415
    return NatsJetStreamSink(broker.servers, stream=broker.path, prefix=prefix, server=name,
                             fmt=fmt, partitions=partitions,  # type: ignore[arg-type]
                             replicas=replicas, retry_for=retry_for)


def _sink_line(st: Any, sink: Any, consumer: Any, shown: list[float], now: float) -> str:
    """Acknowledged changes, their rate since the last line, and the broker's
    lag: the source's lag once the broker has everything read, else now minus
    the commit time of the last acknowledged transaction."""
    acked = sink.acked_changes
    rate = (acked - shown[1]) / max(now - shown[0], 1e-6) if shown[0] else 0.0
    shown[1] = acked
    newest = consumer.lag.last_commit_ts
    last = sink.last_acked_ts_ms / 1000.0
    if newest is None or last >= newest:
        lag = st.lag
    else:
        lag = max(0.0, time.time() - last) if last else None
    lag_text = "-" if lag is None else f"{lag:.1f} s"
    return f"{acked:,} changes acked ({rate:,.0f}/s), broker lag {lag_text}"


@click.command()
@click.argument("url")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False),
              help="Checkpoint file (JSON; a .sqlite or .db name: SQLite). Required, "
                   "except with a Redis sink (which keeps it with the entries).")
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
@click.option("--sink", "sink_url", metavar="URL",
              help="Into a broker instead: nats://HOST:PORT[,HOST:PORT...]/STREAM or "
                   "redis://HOST:PORT/PREFIX (docs/brokers.md).")
@click.option("--name", default="src", show_default=True,
              help="The source's name in broker subjects, stream keys and message IDs.")
@click.option("--prefix", default="binlogkit", show_default=True,
              help="NATS subject prefix.")
@click.option("--partitions", type=click.IntRange(1), default=1, show_default=True,
              help="Split each table's subject/stream in N by primary key.")
@click.option("--replicas", type=click.IntRange(1, 5), default=1, show_default=True,
              help="Replicas of the JetStream stream when it is created.")
@click.option("--broker-timeout", type=float, default=None, metavar="SECONDS",
              help="Give up when the broker is unreachable this long [default: never; "
                   f"{NO_FOLLOW_RETRY:g} s with --no-follow].")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Wait for new changes, or stop at the end of the server's binlogs.")
@click.option("--server-id", type=int, help="Replica server id (default: random).")
@click.option("--heartbeat", type=float, default=5.0, show_default=True,
              help="Seconds between the source's heartbeats when it is idle.")
@click.option("--batch", type=int, default=100, show_default=True,
              help="Transactions per acknowledgement (and per redelivery after a crash).")
@connection_options
@reports_errors
def tail(url: str, checkpoint_path: str | None, fmt: str, snapshot_mode: str,
         include: tuple[str, ...], exclude: tuple[str, ...], output: str | None,
         sink_url: str | None, name: str, prefix: str, partitions: int, replicas: int,
         broker_timeout: float | None, follow: bool, server_id: int | None, heartbeat: float,
         batch: int, conn_opts: ConnectOptions) -> None:
    """Print the row changes of the server at URL (mysql:// or mariadb://)
    as JSON Lines: op, before, after, source; or, with --sink, publish them
    to NATS JetStream or Redis Streams. Ctrl-C stops after the current
    transaction and saves the checkpoint."""
    from binlogkit.cdc.checkpoint import (  # noqa: PLC0415
        CheckpointError,
        FileCheckpointStore,
        SqliteCheckpointStore,
    )
    from binlogkit.cdc.consumer import CdcError, Consumer, Status  # noqa: PLC0415
    from binlogkit.cdc.snapshot import SnapshotError  # noqa: PLC0415
    from binlogkit.protocol.blocking import ConnectionLost  # noqa: PLC0415
    from binlogkit.protocol.replica import StreamError  # noqa: PLC0415

    try:
        parsed = ServerURL.parse(url)
    except ServerError as exc:
        fail(str(exc))
        return
    if sink_url is not None and output is not None:
        fail("--sink and --output exclude each other")
    try:
        retry_for = broker_timeout if broker_timeout is not None else (
            None if follow else NO_FOLLOW_RETRY)
        sink = _open_sink(sink_url, output, fmt, name=name, prefix=prefix,
                          partitions=partitions, replicas=replicas, retry_for=retry_for)
    except ValueError as exc:
        fail(str(exc))
        return
    store: Any = None
    if checkpoint_path is not None:
        store = (SqliteCheckpointStore(checkpoint_path)
                 if checkpoint_path.endswith((".sqlite", ".db"))
                 else FileCheckpointStore(checkpoint_path))
    elif not hasattr(sink, "write_with_checkpoint"):
        sink.close()
        fail("--checkpoint is required (except with a Redis sink)")
    shown = [0.0, 0.0, 0.0]  # last shown at, acked changes then

    def status(st: Status) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.5:
            line = st.line() if sink_url is None else _sink_line(st, sink, consumer, shown, now)
            shown[0] = now
            click.echo("\r" + line.ljust(70), err=True, nl=False)

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
            SnapshotError, SinkError) as exc:
        fail(str(exc))
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        sink.close()
        if sys.stderr.isatty():
            click.echo("", err=True)
