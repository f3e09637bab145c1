"""``binlogkit rewrite``: re-encode every event from its parsed fields."""

from __future__ import annotations

import os
from pathlib import Path

import click

from binlogkit.cli.common import reports_errors, walk
from binlogkit.io.reader import BinlogReader
from binlogkit.io.writer import BinlogWriter


@click.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False, writable=True))
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@click.option("--fix-positions", is_flag=True,
              help="Set each event's log_pos to its end offset in TARGET.")
@reports_errors
def rewrite(source: str, target: str, verify_checksum: bool, fix_positions: bool) -> None:
    """Parse SOURCE and write every event again from its fields into TARGET.

    Nothing is copied as bytes: each event is built by the same spec that
    parsed it. Without options TARGET is byte-identical to SOURCE.
    """
    count = 0
    last: BinlogReader | None = None
    partial = Path(target).with_name(Path(target).name + ".partial")
    try:
        with BinlogWriter(partial, fix_positions=fix_positions) as writer:
            for _, reader, ev in walk([source], verify=verify_checksum,
                                      progress_label="rewrite"):
                last = reader
                if ev.inner:
                    continue  # carried by its TRANSACTION_PAYLOAD
                writer.write(ev)
                count += 1
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written TARGET on bad input
        raise
    os.replace(partial, target)
    truncated = last.truncated_at if last is not None else None
    msg = f"rewrote {count} events, {writer.pos} bytes"
    if truncated is not None:
        msg += f" (source ends inside an event at {truncated}; that event was not copied)"
    click.echo(msg, err=True)
