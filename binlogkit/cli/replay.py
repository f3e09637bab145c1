"""``binlogkit replay``: the statement-vs-row drift demo, and applying
binlogs to a server like a replica's SQL thread."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from binlogkit.cli.common import expand_paths, fail, reports_errors
from binlogkit.cli.servers import (
    ConnectOptions,
    ServerError,
    ServerURL,
    connect,
    connection_options,
)


class _DefaultToApply(click.Group):
    """``replay FILE ...`` means ``replay apply FILE ...``."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["apply", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_DefaultToApply)
def replay() -> None:
    """Show statement-based drift (replay demo) or apply binlogs to a
    server like a replica's SQL thread (replay FILE... --target URL)."""


@replay.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--write-binlogs", "binlog_dir", type=click.Path(file_okay=False),
              help="Keep the binlogs the demo writes in DIR.")
@click.option("--servers", is_flag=True,
              help="Run it on a real source and replica started by the lab harness.")
@click.option("--flavor", type=click.Choice(["mariadb", "mysql"]), default=None,
              help="Server flavor (--servers; default mariadb) or binlog flavor "
                   "(embedded; default mysql).")
@click.option("--rows", "show_rows", type=int, default=10, show_default=True,
              help="Differing rows to print per format.")
@reports_errors
def demo(as_json: bool, binlog_dir: str | None, servers: bool, flavor: str | None,
         show_rows: int) -> None:
    """Run nondeterministic statements through STATEMENT, ROW and MIXED
    replication and checksum source against replica.

    The workload: DELETE ... LIMIT 1 without ORDER BY (the replica walks
    another index), RAND() over rows visited in index order, SYSDATE(6),
    UUID(), and NOW() as a control.
    """
    from binlogkit.replay.demo import demo_workload, run_demo  # noqa: PLC0415

    if servers:
        if binlog_dir:
            fail("--write-binlogs is for the embedded demo (the servers keep their own binlogs)")
        from binlogkit.lab import LabError  # noqa: PLC0415
        from binlogkit.replay.servers_demo import run_server_demo  # noqa: PLC0415

        where = flavor or "mariadb"
        try:
            results = run_server_demo(where, progress=None if as_json else
                                      lambda m: click.echo(m, err=True))
        except LabError as exc:
            fail(f"cannot start {where} servers: {str(exc).splitlines()[0]}")
            return
        engine = f"real {where} source and replica (the replica lacks idx_a)"
    else:
        results = run_demo(binlog_dir, flavor=flavor or "mysql")
        engine = ("embedded engine (source walks idx_a, replica the primary key;"
                  " replica clock 0.25 s later, own UUID source)")
    if as_json:
        click.echo(json.dumps({"engine": engine, "workload": demo_workload(),
                               "formats": {r.fmt: r.as_json() for r in results}}, indent=2))
        return
    click.echo(f"on: {engine}")
    click.echo("workload:" if not servers else "workload (in database demo_<format>):")
    for sql in demo_workload():
        click.echo(f"  {sql}")
    click.echo("")
    click.echo(f"{'format':<10} {'source':<9} {'replica':<9} {'rows differ':>11}  chunks differ")
    for r in results:
        chunks = "; ".join(f"{c['table']} {c['range']}" for c in r.chunks) or "-"
        click.echo(f"{r.fmt:<10} {r.source_checksum:<9} {r.replica_checksum:<9}"
                   f" {r.diverged_rows:>11}  {chunks}")
    for r in results:
        if not r.rows:
            continue
        click.echo(f"\n{r.fmt}: rows that differ (source | replica)")
        for row in r.rows[:show_rows]:
            src, rep = row["source"], row["replica"]
            if src is None or rep is None:
                click.echo(f"  id {_k(row['key'])}: "
                           f"{'missing' if src is None else 'present'} | "
                           f"{'missing' if rep is None else 'present'}")
                continue
            cols = ", ".join(f"{c}={src.get(c)!r} | {rep.get(c)!r}" for c in row["columns"])
            click.echo(f"  id {_k(row['key'])}: {cols}")
        if len(r.rows) > show_rows:
            click.echo(f"  ... {len(r.rows) - show_rows} more")
    if binlog_dir:
        click.echo(f"\nbinlogs: {', '.join(str(r.binlog) for r in results)}")


def _k(key: Any) -> str:
    if isinstance(key, list):
        return ",".join(str(x) for x in key)
    return str(key)


@replay.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--target", metavar="URL", help="Server to apply to: mysql://user@host:port.")
@click.option("--dry-run", is_flag=True, help="Print the SQL instead of running it.")
@click.option("--gtids/--no-gtids", default=True, show_default=True,
              help="Apply each transaction under its GTID (SET GTID_NEXT / gtid_seq_no).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Apply with N parallel workers.")
@click.option("--policy", type=click.Choice(["commit_order", "writeset"]), default="writeset",
              show_default=True, help="How parallel workers are scheduled.")
@connection_options
@reports_errors
def apply_cmd(files: tuple[str, ...], target: str | None, dry_run: bool, gtids: bool,
              workers: int, policy: str, conn_opts: ConnectOptions) -> None:
    """Apply binlog FILES to a server, like a replica's SQL thread."""
    from binlogkit.replay.apply import ReplicaError  # noqa: PLC0415
    from binlogkit.replay.run import apply_files  # noqa: PLC0415

    if not dry_run and not target:
        fail("give --target URL (or --dry-run)")
    if workers < 1:
        fail("--workers must be at least 1")
    paths = expand_paths(files)
    try:
        if dry_run:
            report = apply_files(paths, None, out=sys.stdout, gtids=gtids)
        else:
            assert target is not None
            url = ServerURL.parse(target)
            report = apply_files(paths, lambda: connect(url, conn_opts), gtids=gtids,
                                 workers=workers, policy=policy)
    except ServerError as exc:
        fail(str(exc))
        return
    except ReplicaError as exc:
        fail(str(exc))
        return
    out = sys.stderr if dry_run else sys.stdout
    click.echo(report, file=out)
