"""``binlogkit checksum A B``: compare the tables of two servers chunk by chunk
(pt-table-checksum style, see docs/replay-engine.md) and print the primary-key
ranges whose rows differ. Exit 0 when equal, 1 when they differ, 2 on error."""

from __future__ import annotations

import sys

import click
import pymysql

from binlogkit.cli.common import fail
from binlogkit.cli.servers import (
    ConnectOptions,
    ServerError,
    ServerURL,
    connect,
    connection_options,
)
from binlogkit.replay.checksum import ChunkDiff, diff, server_checksum, server_tables


def _split_tables(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    for n in names:
        if n.count(".") != 1 or n.startswith(".") or n.endswith("."):
            raise click.BadParameter(f"{n!r}: expected db.table", param_hint="--tables")
    return names


@click.command("checksum")
@click.argument("url_a", metavar="URL_A")
@click.argument("url_b", metavar="URL_B")
@click.option("--tables", metavar="DB.T,...",
              help="Tables to compare (default: every base table of A and B outside the "
                   "system schemas).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows per chunk (chunk boundaries come from A).")
@connection_options
def checksum(url_a: str, url_b: str, tables: str | None, chunk_size: int,
             conn_opts: ConnectOptions) -> None:
    """Compare table contents of two servers (mysql://... or mariadb://...)."""
    try:
        wanted = _split_tables(tables)
        ua, ub = ServerURL.parse(url_a), ServerURL.parse(url_b)
        diffs, compared = _compare(ua, ub, wanted, chunk_size, conn_opts)
    except ServerError as exc:
        fail(str(exc))
        return
    except click.BadParameter as exc:
        fail(exc.format_message())
        return
    for d in diffs:
        click.echo(str(d))
    n = len({d.table for d in diffs})
    if diffs:
        click.echo(f"{n} of {compared} tables differ ({len(diffs)} ranges)")
        sys.exit(1)
    click.echo(f"{compared} table{'' if compared == 1 else 's'} equal")


def _compare(ua: ServerURL, ub: ServerURL, wanted: list[str] | None, chunk_size: int,
             opts: ConnectOptions) -> tuple[list[ChunkDiff], int]:
    ca = connect(ua, opts)
    try:
        cb = connect(ub, opts)
    except ServerError:
        ca.close()
        raise
    current = ua
    try:
        names_a = set(server_tables(ca))
        current = ub
        names_b = set(server_tables(cb))
        names = wanted if wanted is not None else sorted(names_a | names_b)
        out: list[ChunkDiff] = []
        for name in names:
            schema, table = name.split(".", 1)
            if name not in names_a or name not in names_b:
                if name not in names_a and name not in names_b:
                    raise ServerError(f"{name}: no such table on either server")
                side = "A" if name not in names_a else "B"
                out.append(ChunkDiff(name, None, None, 0, 0, 0, 0, missing=side))
                continue
            current = ua
            a = server_checksum(ca, schema, table, chunk_size)
            current = ub
            b = server_checksum(cb, schema, table, chunk_size, boundaries=a.boundaries)
            out.extend(diff(a, b))
        return out, len(names)
    except pymysql.MySQLError as exc:
        text = str(exc.args[1]) if len(exc.args) >= 2 else str(exc)
        raise ServerError(f"{current.display}: {text}") from None
    finally:
        ca.close()
        cb.close()
