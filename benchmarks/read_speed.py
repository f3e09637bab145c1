"""Read speed: binlogkit's reader and CLI beside the servers' own decoders,
on the same files, in one run (ratios are what matter; absolute figures vary).

    python benchmarks/read_speed.py [FILE ...]      (default: the fixtures)

mysql-replication, the Python peer, has no file reader (it only streams from
a live server), so the comparison here is with mariadb-binlog / mysqlbinlog.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from binlogkit.codec.event import encode_event
from binlogkit.io.reader import BinlogReader

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    files = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "fixtures").rglob("*.0000*"))
    total = sum(p.stat().st_size for p in files)
    n_events = sum(1 for p in files for _ in BinlogReader(p))

    def parse() -> None:
        for p in files:
            for _ in BinlogReader(p):
                pass

    def rebuild() -> None:
        for p in files:
            for ev in BinlogReader(p):
                encode_event(ev)

    def tool(cmd: list[str]) -> None:
        for p in files:
            subprocess.run([*cmd, str(p)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)

    rows = [
        ("binlogkit parse (API)", timed(parse)),
        ("binlogkit parse+rebuild (API)", timed(rebuild)),
        ("binlogkit dump --format jsonl", timed(lambda: tool(
            [sys.executable, "-m", "binlogkit", "dump", "--format", "jsonl"]))),
        ("mariadb-binlog (C++)", timed(lambda: tool(["mariadb-binlog", "--force-if-open"]))),
    ]
    print(f"{len(files)} files, {total / 1e6:.2f} MB, {n_events} events")
    base = rows[-1][1]
    for name, secs in rows:
        print(f"  {name:<32} {secs:8.3f} s  {total / secs / 1e6:7.2f} MB/s"
              f"  {n_events / secs:9.0f} events/s  x{secs / base:5.2f} of mariadb-binlog")


if __name__ == "__main__":
    main()
