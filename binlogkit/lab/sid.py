"""Run programs inside the Debian sid root that holds MySQL (``chroot``).

The root is ``$BINLOGKIT_SID_ROOT`` (default ``/opt/binlogkit-sid``). A host file
outside the root is not visible to programs in it, so :func:`sid_path` copies
such a file into ``<root>/tmp/binlogkit-XXXX/`` and returns the in-root path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SidPath", "host_path", "run_in_sid", "sid_path", "sid_root"]

DEFAULT_SID_ROOT = "/opt/binlogkit-sid"
_SID_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SidPath(str):
    """A path as seen inside the sid root (a plain ``str`` subclass)."""


def sid_root() -> Path:
    """The sid root: ``$BINLOGKIT_SID_ROOT`` or ``/opt/binlogkit-sid``."""
    return Path(os.environ.get("BINLOGKIT_SID_ROOT") or DEFAULT_SID_ROOT)


def _inside(path: Path, root: Path) -> str | None:
    """The in-root form of an absolute host ``path`` if it lies under ``root``."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return "/" + rel.as_posix() if rel.parts else "/"


def host_path(inner: str | os.PathLike[str], *, root: Path | None = None) -> Path:
    """Map a path inside the root (e.g. ``/var/lib/x``) to the host path."""
    root = (root or sid_root()).resolve()
    return root / os.fspath(inner).lstrip("/")


def sid_path(
    path: str | os.PathLike[str], *, root: Path | None = None, tmpdir: Path | None = None
) -> SidPath:
    """Return the path under which the host file ``path`` is visible inside the root.

    A file already under the root is not copied. Otherwise it is copied into
    ``tmpdir`` (a host directory under the root) or a fresh
    ``<root>/tmp/binlogkit-XXXX/``; the copy keeps its base name. The caller
    owns the copy (it lives in the root's /tmp).
    """
    root = (root or sid_root()).resolve()
    src = Path(path).resolve()
    inner = _inside(src, root)
    if inner is not None:
        return SidPath(inner)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file")
    if tmpdir is None:
        (root / "tmp").mkdir(exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="binlogkit-", dir=root / "tmp"))
    dest = tmpdir / src.name
    n = 1
    while dest.exists():
        dest = tmpdir / str(n) / src.name
        n += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    inner = _inside(dest, root)
    assert inner is not None
    return SidPath(inner)


def run_in_sid(
    args: Sequence[str | os.PathLike[str]],
    *,
    root: Path | None = None,
    check: bool = False,
    **kw: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run ``args`` inside the sid root with ``chroot`` (``subprocess.run`` keywords pass on).

    Arguments given as :class:`pathlib.Path` are host paths: each is mapped with
    :func:`sid_path` (files outside the root are copied into one temp dir in the
    root, removed afterwards). Plain strings pass unchanged. ``PATH`` is set to a
    standard system path unless ``env`` is given.
    """
    root = (root or sid_root()).resolve()
    if not (root / "usr").is_dir():
        raise FileNotFoundError(f"{root}: no sid root here (set BINLOGKIT_SID_ROOT)")
    tmp: Path | None = None
    argv: list[str] = []
    try:
        for a in args:
            if isinstance(a, Path):
                if _inside(a.resolve(), root) is None and tmp is None:
                    (root / "tmp").mkdir(exist_ok=True)
                    tmp = Path(tempfile.mkdtemp(prefix="binlogkit-", dir=root / "tmp"))
                argv.append(sid_path(a, root=root, tmpdir=tmp))
            else:
                argv.append(os.fspath(a))
        if "env" not in kw:
            kw["env"] = {**os.environ, "PATH": _SID_PATH_ENV}
        return subprocess.run(["chroot", str(root), *argv], check=check, **kw)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
