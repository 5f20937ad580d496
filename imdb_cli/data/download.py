"""Fetch a remote archive once into the cache, verified, so that no later run needs the network."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from imdb_cli import staging
from imdb_cli.errors import UserError

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
"""The official Large Movie Review Dataset v1.0 (Maas et al., ACL 2011)."""

KNOWN_SHA256 = {IMDB_URL: "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"}
"""Published checksums, used when the user gives none for these URLs."""

_CHUNK = 1 << 20


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https", "ftp")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(url: str, cache_dir: Path) -> Path:
    """Where ``url`` lives once downloaded: the file name of the URL inside ``cache_dir``."""
    return cache_dir / (Path(urlparse(url).path).name or "download")


def download(url: str, cache_dir: Path, sha256: str | None = None) -> Path:
    """Download ``url`` into ``cache_dir`` unless it is already there, and return the local path.

    The bytes go to a temporary file of this process's own, renamed only after the whole body
    arrived, its SHA-256 matched and it is on disk, so an interrupted or tampered download is
    never taken for the real file. A lock beside it (``.NAME.lock``) makes the processes that
    share a cache (DDP ranks, nodes on a shared file system) download once: the others wait, then
    find the file; where the file system ignores locks, each writes its own temporary and the
    renames replace one whole file with another.
    """
    from filelock import FileLock

    dest = cached_path(url, cache_dir)
    if dest.is_file():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(dest.with_name(f".{dest.name}.lock")):
        if not dest.is_file():  # not fetched by another process meanwhile
            _fetch(url, dest, sha256 or KNOWN_SHA256.get(url))
    return dest


def _fetch(url: str, dest: Path, expected: str | None) -> None:
    fd, part = staging.staged_file(dest)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:
            _copy_with_progress(response, out, int(response.headers.get("Content-Length") or 0), dest.name)
        if expected and (actual := sha256_of(Path(part))) != expected.lower():
            raise UserError(f"download of {url} is corrupt: sha256 {actual}, expected {expected}")
        staging.replace(part, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(
            f"cannot download {url} ({reason}); without network access pass a local copy: "
            "--data.source PATH/aclImdb_v1.tar.gz or an extracted aclImdb/ directory"
        ) from None
    finally:
        Path(part).unlink(missing_ok=True)


def _copy_with_progress(response, out, total: int, name: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total or None, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))
    if total and bar.n != total:
        raise OSError(f"connection closed after {bar.n} of {total} bytes")
