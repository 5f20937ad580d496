"""Outputs built beside their destination and renamed into place only when complete and on disk,
with the permissions of any file a user writes.

``tempfile`` creates files 0600 and directories 0700, private whatever the umask says, and so do
some writers (safetensors): a prediction file or an export renamed from one would stay unreadable
to the group and the other users the umask grants. These give the temporary the mode a plain
``open`` or ``mkdir`` would. A rename is durable only once the data it points to is: each file is
flushed to disk (``fsync``) before it is renamed into place, and the directory after.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def staged_file(dest: Path) -> tuple[int, str]:
    """An open descriptor and the path of a new file beside ``dest``, mode ``0666 & ~umask``."""
    fd, path = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, path


def staged_dir(dest: Path) -> Path:
    """A new directory beside ``dest``, mode ``0777 & ~umask``."""
    path = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    path.chmod(0o777 & ~_umask())
    return path


def replace(tmp: str | Path, dest: str | Path) -> None:
    """Move the complete file ``tmp`` onto ``dest``: its data on disk first, then the rename, then
    the directory entry; a crash leaves the old file or the new one, never an empty one."""
    _fsync(tmp)
    os.replace(tmp, dest)
    _fsync(Path(dest).parent)


def publish(directory: Path) -> None:
    """Ready a staged directory for its rename: every file inside with the umask's mode (``0666 &
    ~umask``, whoever wrote it) and on disk."""
    mode = 0o666 & ~_umask()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            path.chmod(mode)
            _fsync(path)
    _fsync(directory)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
