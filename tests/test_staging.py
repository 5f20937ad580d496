"""Staged outputs get the permissions of a plain write: the umask's, not tempfile's private 0600/0700."""

from __future__ import annotations

import os

import pytest

from imdb_cli.staging import publish, replace, staged_dir, staged_file


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


def test_a_published_directory_has_the_umasks_modes_whoever_wrote_its_files(tmp_path):
    directory = staged_dir(tmp_path / "exported")
    (directory / "model.safetensors").write_bytes(b"weights")
    (directory / "model.safetensors").chmod(0o600)  # what safetensors leaves
    old = os.umask(0o022)
    try:
        publish(directory)
    finally:
        os.umask(old)
    assert (directory / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_file_is_on_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(a))), real_replace(a, b)))
    fd, tmp = staged_file(tmp_path / "predictions.jsonl")
    os.write(fd, b"{}\n")
    os.close(fd)
    replace(tmp, tmp_path / "predictions.jsonl")
    assert calls == [("fsync", tmp), ("replace", tmp), ("fsync", str(tmp_path))]
    assert (tmp_path / "predictions.jsonl").read_text() == "{}\n"
