"""``binlogkit fetch``: save a server's binlog files, byte for byte."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from binlogkit.cli.common import reports_errors
from binlogkit.cli.remote import open_stream, probe, remote_errors
from binlogkit.cli.servers import ConnectOptions, connection_options
from binlogkit.protocol.fetch import BinlogFetcher
from binlogkit.protocol.replica import Start


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command()
@click.argument("url")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--follow", "--stop-never", "-f", "follow", is_flag=True,
              help="Keep going: wait for new events and files (blocking dump) until "
                   "interrupted.")
@click.option("--start-file", metavar="NAME",
              help="The first binlog to fetch (default: the first one SHOW BINARY LOGS "
                   "lists).")
@click.option("--server-id", type=click.IntRange(1, 0xFFFFFFFF),
              help="The replica server_id to register (default: random).")
@click.option("--heartbeat", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds between the server's heartbeats (0: none).")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Do not list the files written.")
@connection_options
@reports_errors
def fetch(url: str, directory: str, follow: bool, start_file: str | None,
          server_id: int | None, heartbeat: float, verify_checksum: bool, quiet: bool,
          conn_opts: ConnectOptions) -> None:
    """Save the binlog files of the server at URL (mysql://user@host[:port] or
    mariadb://...) into DIRECTORY, byte-identical to the server's: each is
    written as NAME.partial and renamed to NAME when complete. Without
    --follow it ends at the end of the server's last binlog."""

    def on_file(path: Path, closed: bool) -> None:
        if not quiet:
            state = "closed" if closed else "active (in use on the server)"
            click.echo(f"{path}  {path.stat().st_size} bytes  {state}")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        _fetch(url, directory, follow, start_file, server_id, heartbeat, verify_checksum,
               conn_opts, on_file)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _fetch(url: str, directory: str, follow: bool, start_file: str | None,
           server_id: int | None, heartbeat: float, verify: bool, conn_opts: ConnectOptions,
           on_file: Callable[[Path, bool], None]) -> None:
    with remote_errors(url, conn_opts):
        remote = probe(url, conn_opts, list_files=start_file is None)
        start = Start(file=start_file or remote.files[0], pos=4)
        fetcher = BinlogFetcher(directory, flush=follow, on_file=on_file)
        try:
            with open_stream(remote, start, follow=follow, server_id=server_id,
                             heartbeat=heartbeat or None, verify=verify) as stream:
                for item in stream:
                    fetcher.feed(item)
        finally:
            fetcher.finish()
            sys.stdout.flush()
