"""Command-line interface: ``binlogkit``."""

from __future__ import annotations

import click

from binlogkit import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="binlogkit")
def main() -> None:
    """Read, check and rewrite MySQL and MariaDB binary logs."""


def _register() -> None:
    from binlogkit.cli import (
        apply,
        checksum,
        dump,
        fetch,
        gtid,
        lab,
        parallelism,
        replay,
        rewrite,
        stats,
        tail,
    )

    main.add_command(dump.dump)
    main.add_command(fetch.fetch)
    main.add_command(stats.stats)
    main.add_command(rewrite.rewrite)
    main.add_command(lab.lab)
    main.add_command(gtid.gtid)
    main.add_command(replay.replay)
    main.add_command(checksum.checksum)
    main.add_command(parallelism.parallelism)
    main.add_command(tail.tail)
    main.add_command(apply.apply)


_register()
