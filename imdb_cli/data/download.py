"""Fetch a remote archive once into the cache, verified, so that no later run needs the network."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

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

    The bytes go to a ``.part`` file that is renamed only after the whole body arrived and its
    SHA-256 matched, so an interrupted or tampered download is never taken for the real file.
    """
    dest = cached_path(url, cache_dir)
    if dest.is_file():
        return dest
    expected = sha256 or KNOWN_SHA256.get(url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            _copy_with_progress(response, out, int(response.headers.get("Content-Length") or 0), dest.name)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise UserError(
            f"cannot download {url} ({reason}); without network access pass a local copy: "
            "--data.source PATH/aclImdb_v1.tar.gz or an extracted aclImdb/ directory"
        ) from None
    if expected:
        actual = sha256_of(part)
        if actual != expected.lower():
            part.unlink()
            raise UserError(f"download of {url} is corrupt: sha256 {actual}, expected {expected}")
    os.replace(part, dest)
    return dest


def _copy_with_progress(response, out, total: int, name: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total or None, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))
    if total and bar.n != total:
        raise OSError(f"connection closed after {bar.n} of {total} bytes")
