"""Staged outputs get the permissions of a plain write: the umask's, not tempfile's private 0600/0700."""

from __future__ import annotations

import os

import pytest

from imdb_cli.staging import staged_dir, staged_file


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_staged_outputs_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        fd, path = staged_file(tmp_path / "predictions.jsonl")
        os.close(fd)
        directory = staged_dir(tmp_path / "exported")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert directory.stat().st_mode & 0o777 == 0o777 & ~umask
    assert os.path.dirname(path) == str(tmp_path) and directory.parent == tmp_path
