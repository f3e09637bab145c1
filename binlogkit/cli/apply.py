"""``binlogkit apply --from BROKER --target SERVER``: apply what a broker
sink wrote to a MySQL/MariaDB server, exactly once, in source commit order
(see :mod:`binlogkit.cdc.broker_apply`)."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from binlogkit.cdc.broker_readers import DEFAULT_GROUP
from binlogkit.cdc.broker_urls import NO_FOLLOW_RETRY
from binlogkit.cli.common import fail, reports_errors
from binlogkit.cli.servers import (
    ConnectOptions,
    ServerError,
    ServerURL,
    connect,
    connection_options,
)


@click.command()
@click.option("--from", "from_url", required=True, metavar="URL",
              help="redis://HOST:PORT/PREFIX (the sink's key prefix) or "
                   "nats://HOST:PORT/STREAM (a JetStream stream).")
@click.option("--target", required=True, metavar="URL",
              help="The server to apply to: mysql://USER@HOST:PORT or mariadb://...")
@click.option("--name", default="src", show_default=True,
              help="The sink's server name (Redis streams PREFIX:NAME:*).")
@click.option("--group", "--durable", "group", default=DEFAULT_GROUP, show_default=True,
              help="Redis consumer group / NATS durable consumer; part of the identity "
                   "the positions are stored under.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep waiting for new messages, or stop once the broker is idle.")
@click.option("--idle", type=float, default=2.0, show_default=True,
              help="With --no-follow: stop after this many seconds without new messages.")
@click.option("--broker-timeout", type=float, default=None, metavar="SECONDS",
              help="Give up when the broker (or, after the first connection, the target) "
                   f"is unreachable this long [default: never; {NO_FOLLOW_RETRY:g} s with "
                   "--no-follow].")
@click.option("--max-pending", type=int, default=10000, show_default=True,
              help="NATS: at most this many messages unacknowledged (held); must exceed "
                   "the largest transaction.")
@connection_options
@reports_errors
def apply(from_url: str, target: str, name: str, group: str, follow: bool, idle: float,
          broker_timeout: float | None, max_pending: int, conn_opts: ConnectOptions) -> None:
    """Apply the change messages a broker sink (Redis Streams, NATS
    JetStream) wrote to the server at --target: each source transaction
    once, in commit order, with its position stored in the target
    (binlogkit.apply_position). Tables must exist on the target unless a
    CREATE TABLE for them comes through. Ctrl-C stops after the current
    transaction."""
    from binlogkit.cdc.broker_apply import Applier, ApplyError, ApplyStatus  # noqa: PLC0415
    from binlogkit.cdc.broker_readers import BrokerError, open_reader  # noqa: PLC0415
    from binlogkit.cdc.broker_urls import BrokerURL, BrokerURLError  # noqa: PLC0415

    secrets: list[str] = []

    def safe(text: str) -> str:
        for s in secrets:
            text = text.replace(s, "***")
        return text

    try:
        parsed = ServerURL.parse(target)
        broker = BrokerURL.parse(from_url)
    except (ServerError, BrokerURLError) as exc:
        fail(str(exc))
        return
    secrets += [s for s in (parsed.password, broker.password) if s]
    if idle <= 0:
        fail("--idle must be positive")
    retry_for = broker_timeout if broker_timeout is not None else (
        None if follow else NO_FOLLOW_RETRY)
    tty = sys.stderr.isatty()
    last = [time.monotonic(), 0]

    def status(st: ApplyStatus) -> None:
        now = time.monotonic()
        rate = (st.changes - last[1]) / max(now - last[0], 1e-3)
        last[0], last[1] = now, st.changes
        click.echo("\r" + st.line(rate).ljust(70), err=True, nl=False)

    applier = None
    reader = None
    stopping = [False]

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping[0]:
            raise KeyboardInterrupt
        stopping[0] = True
        if applier is not None:
            applier.stop()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        reader = open_reader(from_url, name=name, group=group, retry_for=retry_for,
                             max_pending=max_pending)
        applier = Applier(reader, lambda: connect(parsed, conn_opts), target=parsed.display,
                          follow=follow, idle=idle, retry_for=retry_for,
                          on_status=status if tty else None)
        if stopping[0]:
            applier.stop()
        result = applier.run()
        if result.seen == 0 and not follow:
            click.echo(f"{'' if not tty else chr(13)}binlogkit: warning: no messages under "
                       f"{broker.display}" + (f" (name {name})" if broker.kind == "redis"
                                              else ""), err=True)
    except (ApplyError, BrokerError, ServerError) as exc:
        if tty:
            click.echo("", err=True)
        fail(safe(str(exc)))
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if applier is not None:
            applier.close()
        if reader is not None:
            reader.close()
        if tty:
            click.echo("", err=True)
