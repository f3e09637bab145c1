"""Feed a binlog to a real server through the server's own tools:
``mysqlbinlog FILE | mysql`` (inside the sid root) or ``mariadb-binlog FILE |
mariadb``. Shared by the replay tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from binlogkit.lab import Server


def pipe_into(server: Server, path: Path, sid_root: Path | None = None) -> None:
    """Apply ``path`` to ``server`` with the server's own decoder and client."""
    if server.flavor == "mysql":
        root = server.root or sid_root
        assert root is not None, "MySQL needs the sid root"
        (root / "tmp").mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="binlogkit-pipe-", dir=root / "tmp"))
        try:
            inside = tmp / path.name
            shutil.copyfile(path, inside)
            target = "/" + inside.relative_to(root).as_posix()
            cmd = (f"/usr/bin/mysqlbinlog --no-defaults {target} | /usr/bin/mysql --no-defaults"
                   f" -h {server.host} -P {server.port} -u root")
            run = subprocess.run(["chroot", str(root), "/bin/sh", "-c", cmd],
                                 capture_output=True, text=True, errors="replace", timeout=120,
                                 check=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        assert run.returncode == 0, run.stderr
        return
    exe, client = shutil.which("mariadb-binlog"), shutil.which("mariadb")
    if exe is None or client is None:
        pytest.skip("mariadb-binlog / mariadb not installed")
    dump = subprocess.run([exe, "--no-defaults", str(path)], capture_output=True, timeout=120,
                          check=True)
    run = subprocess.run([client, "--no-defaults", "-h", server.host, "-P", str(server.port),
                          "-u", "root"], input=dump.stdout, capture_output=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr.decode()
