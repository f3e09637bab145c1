"""Feed a binlog to a real server through the server's own tools: the
decoder (MySQL 9.7's ``mysqlbinlog`` inside the sid root, or
``mariadb-binlog``) must read it with exit status 0 and no error, then its
output goes to the client (``mysql`` / ``mariadb``). Shared by the replay
tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from binlogkit.lab import Server


def _clean(what: str, run: subprocess.CompletedProcess[bytes]) -> None:
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 0 and "ERROR" not in err, f"{what}: {err}"


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
            decoded = subprocess.run(["chroot", str(root), "/usr/bin/mysqlbinlog",
                                      "--no-defaults", target], capture_output=True,
                                     timeout=120, check=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _clean("mysqlbinlog", decoded)
        client = ["chroot", str(root), "/usr/bin/mysql"]
    else:
        exe, mariadb = shutil.which("mariadb-binlog"), shutil.which("mariadb")
        if exe is None or mariadb is None:
            pytest.skip("mariadb-binlog / mariadb not installed")
        decoded = subprocess.run([exe, "--no-defaults", str(path)], capture_output=True,
                                 timeout=120, check=False)
        _clean("mariadb-binlog", decoded)
        client = [mariadb]
    run = subprocess.run([*client, "--no-defaults", "-h", server.host, "-P", str(server.port),
                          "-u", "root"], input=decoded.stdout, capture_output=True,
                         timeout=120, check=False)
    _clean("client", run)
