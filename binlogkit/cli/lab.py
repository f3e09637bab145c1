"""``binlogkit lab``: start, list and stop private MariaDB/MySQL servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from binlogkit.lab import LabError, Server, get_server, lab_home, list_servers, start_server


def _fail(msg: str) -> NoReturn:
    click.echo(f"binlogkit lab: error: {msg.splitlines()[0] if msg else 'failed'}", err=True)
    sys.exit(2)


def _parse_option(text: str) -> tuple[str, str | None]:
    key, eq, value = text.partition("=")
    if not key.strip():
        _fail(f"bad --option {text!r}: expected KEY=VALUE or KEY")
    return key.strip(), (value if eq else None)


@click.group()
def lab() -> None:
    """Private MariaDB/MySQL servers with binary logging, for tests and fixtures.

    Instances are recorded in $BINLOGKIT_LAB_DIR (default <tmp>/binlogkit-lab).
    """


@lab.command()
@click.argument("flavor", type=click.Choice(["mariadb", "mysql"]))
@click.option("-o", "--option", "options", multiple=True, metavar="KEY[=VALUE]",
              help="Server option (repeatable), e.g. -o binlog-format=STATEMENT.")
@click.option("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one).")
@click.option("--name", help="Instance name (default: FLAVOR-PORT).")
@click.option("--basedir", type=click.Path(file_okay=False, path_type=Path),
              help="Parent directory of the instance (default: the lab dir).")
def start(flavor: str, options: tuple[str, ...], port: int | None, name: str | None,
          basedir: Path | None) -> None:
    """Start a server that keeps running after this command exits."""
    opts = dict(_parse_option(o) for o in options)
    try:
        srv = start_server("mariadb" if flavor == "mariadb" else "mysql", options=opts,
                           port=port, name=name, basedir=basedir or lab_home())
    except (LabError, ValueError) as exc:
        _fail(str(exc))
    click.echo(f"name:    {srv.name}")
    click.echo(f"url:     {srv.url}")
    click.echo(f"version: {srv.version}")
    click.echo(f"pid:     {srv.pid}")
    click.echo(f"datadir: {srv.datadir}")


@lab.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per server.")
def list_(as_json: bool) -> None:
    """List the servers started with the lab harness."""
    servers = list_servers()
    if as_json:
        for s in servers:
            click.echo(json.dumps({
                "name": s.name, "flavor": s.flavor, "version": s.version, "url": s.url,
                "pid": s.pid, "running": s.is_running(), "datadir": str(s.datadir),
                "options": s.options,
            }))
        return
    if not servers:
        click.echo("no lab servers")
        return
    rows = [("NAME", "STATE", "PID", "URL", "VERSION", "DATADIR")]
    rows += [(str(s.name), "running" if s.is_running() else "gone", str(s.pid), s.url,
              s.version, str(s.datadir)) for s in servers]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


@lab.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Stop every registered server.")
@click.option("--keep-data", is_flag=True, help="Keep the instance directory.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
def stop(names: tuple[str, ...], all_: bool, keep_data: bool, timeout: float) -> None:
    """Stop servers by NAME (or --all) and remove their data."""
    if all_ == bool(names):
        _fail("give server NAMEs or --all")
    try:
        servers: list[Server] = list_servers() if all_ else [get_server(n) for n in names]
        for s in servers:
            was = s.is_running()
            s.stop(timeout=timeout, remove_data=not keep_data)
            click.echo(f"stopped {s.name} (pid {s.pid})" if was else f"removed {s.name} (gone)")
    except (LabError, OSError) as exc:
        _fail(str(exc))
