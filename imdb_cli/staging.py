"""Outputs built beside their destination and renamed into place only when complete, with the
permissions of any file a user writes.

``tempfile`` creates files 0600 and directories 0700, private whatever the umask says: a
prediction file or an export renamed from one would stay unreadable to the group and the other
users the umask grants. These give the temporary the mode a plain ``open`` or ``mkdir`` would.
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
