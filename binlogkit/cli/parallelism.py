"""``binlogkit parallelism``: how parallel a replica could apply a binlog."""

from __future__ import annotations

import json

import click

from binlogkit.cli.common import expand_paths, reports_errors
from binlogkit.cli.dump import load_schemas
from binlogkit.replay.schedule import HISTORY_SIZE, PolicyReport, parallelism_report
from binlogkit.replay.transactions import read_transactions


def _histogram(h: dict[int, int]) -> str:
    return "  ".join(f"{k}:{v}" for k, v in sorted(h.items()))


def _text(r: PolicyReport) -> list[str]:
    return [
        f"policy {r.policy}:",
        f"  transactions:      {r.transactions}",
        f"  critical path:     {r.critical_path}",
        f"  speed-up bound:    {r.speedup_bound:.2f}",
        f"  mean parallelism:  {r.mean_parallelism:.2f}",
        f"  serialized:        {r.serialized}",
        f"  group sizes:       {_histogram(r.group_histogram)}",
        f"  txns per step:     {_histogram(r.width_histogram)}",
    ]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--policy", type=click.Choice(["commit_order", "writeset", "both"]),
              default="both", show_default=True, help="Dependency tracking to evaluate.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--history-size", type=click.IntRange(min=1), default=HISTORY_SIZE,
              show_default=True, help="WRITESET history size, in keys.")
@click.option("--schema", "schema_file", type=click.Path(dir_okay=False, exists=True),
              help="JSON table definitions (column names, primary keys) for binlogs whose"
                   " table maps lack them (see docs/rows.md).")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@reports_errors
def parallelism(files: tuple[str, ...], policy: str, as_json: bool, history_size: int,
                schema_file: str | None, verify_checksum: bool) -> None:
    """Transactions, critical path, mean parallelism and speed-up bound of
    binlog FILES under COMMIT_ORDER and/or WRITESET dependency tracking
    (definitions: docs/replay-parallel.md)."""
    paths = expand_paths(files)
    schemas = load_schemas(schema_file) if schema_file else None
    report = parallelism_report(
        read_transactions(paths, schemas=schemas, verify_checksum=verify_checksum),
        policy,  # type: ignore[arg-type]
        history_size=history_size,
    )
    if as_json:
        click.echo(json.dumps({"files": paths, **report.to_json()}, indent=2))
        return
    click.echo(f"transactions: {report.transactions}")
    for r in report.policies.values():
        for line in _text(r):
            click.echo(line)
