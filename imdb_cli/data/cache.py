"""Tokenize once: token ids kept on disk, keyed by everything that could change them.

A second run on the same data, tokenizer and truncation loads its ids in well under a second
instead of reading and tokenizing the source again. Entries are plain tensors and strings, loaded
with ``weights_only=True``, and written to a temporary file that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from imdb_cli import staging
from imdb_cli.data.download import sha256_of
from imdb_cli.staging import staged_file

Columns = dict[str, list[list[int]]]
"""Token columns by name, each a list of one list of ids per text."""


def fingerprint(path: Path) -> str:
    """Content hash of a file; for a directory, a hash of its files' names, sizes and times."""
    if path.is_file():
        return sha256_of(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's full definition (vocabulary, normalizer, special tokens)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


class TokenCache:
    """Token ids (``input_ids``, and ``token_type_ids`` for text pairs) and labels on disk under
    ``directory``, one file per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.directory / f"{digest}.pt"

    def load_or_build(self, key: dict, build: Callable[[], tuple[Columns, list]]) -> tuple[Columns, list]:
        path = self.path(key)
        if path.is_file():
            try:
                entry = torch.load(path, weights_only=True)
                columns = {name: unflatten(flat, entry["offsets"]) for name, flat in entry["columns"].items()}
                return columns, entry["labels"]
            except Exception:  # an unreadable entry is rebuilt, never trusted
                path.unlink(missing_ok=True)
        columns, labels = build()
        self._save(path, columns, labels, key)
        return columns, labels

    def _save(self, path: Path, columns: Columns, labels: list, key: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        flat = {name: flatten(ids) for name, ids in columns.items()}
        offsets = flat["input_ids"][1]
        fd, tmp = staged_file(path)
        os.close(fd)
        try:
            entry = {"columns": {name: f for name, (f, _) in flat.items()}, "offsets": offsets, "labels": labels}
            torch.save(entry | {"key": json.dumps(key)}, tmp)
            staging.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)


def flatten(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = torch.zeros(len(ids) + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor([len(x) for x in ids], dtype=torch.int64).cumsum(0)
    flat = torch.tensor([t for x in ids for t in x], dtype=torch.int32)
    return flat, offsets


def unflatten(flat: torch.Tensor, offsets: torch.Tensor) -> list[list[int]]:
    values, bounds = flat.tolist(), offsets.tolist()
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
