"""Read labelled texts from aclImdb directories and archives, and plain-text predict inputs (tables: ``tables``).

Readers return plain Python lists of texts and labels (class names, sets of them, or numbers: the task's
``parse`` reads each cell); turning labels into targets and texts into tokens is the DataModule's job,
so that every source behaves alike from there on.
"""

from __future__ import annotations

import gzip
import re
import sys
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from imdb_cli.errors import UserError

if TYPE_CHECKING:
    from imdb_cli.tasks import Label

ACLIMDB_LABELS = {"neg": "negative", "pos": "positive"}
"""aclImdb folder names and the label names the tool reports for them."""

NEWLINE = b"\n"

_ACLIMDB_MEMBER = re.compile(r"(?:^|/)(train|test)/(neg|pos)/(\d+)_(\d+)\.txt$")

Text = str | tuple[str, str]
"""One input: a text, or a pair of texts (premise and hypothesis, question and passage)."""


@dataclass
class LabeledTexts:
    """Texts (or text pairs) with one label each, in a fixed order."""

    texts: list[Text] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> LabeledTexts:
        return LabeledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices])


def clean_review(text: str) -> str:
    """aclImdb reviews carry HTML line breaks; they are markup, not words."""
    return text.replace("<br />", " ").strip()


def read_aclimdb(path: Path, split: str, invalid_utf8: str = "error", ratings: bool = False) -> LabeledTexts:
    """Read one split (``train`` or ``test``) of aclImdb from a directory or a ``.tar.gz`` archive.

    Labels are ``negative`` and ``positive``, or with ``ratings`` each review's star rating (1-4 and
    7-10), from its file name ``<id>_<rating>.txt``. Reviews come ordered by label folder (negative
    first) and then by review id, whatever the order of files on disk or in the archive, so that
    seeded splits are the same everywhere.
    """
    if path.is_dir():
        found = _read_aclimdb_dir(path, split, invalid_utf8)
    elif path.is_file():
        found = _read_aclimdb_archive(path, split, invalid_utf8)
    else:
        raise UserError(f"data source {path} does not exist")
    missing = [name for name in ACLIMDB_LABELS if not any(key[0] == name for key in found)]
    if missing:
        raise UserError(f"data source {path} has no reviews in {split}/{missing[0]}: is it an aclImdb copy?")
    data = LabeledTexts()
    for key in sorted(found):
        text, rating = found[key]
        data.texts.append(text)
        data.labels.append(float(rating) if ratings else ACLIMDB_LABELS[key[0]])
    return data


def _read_aclimdb_dir(path: Path, split: str, invalid_utf8: str) -> dict[tuple[str, int], tuple[str, int]]:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    found = {}
    for folder in ACLIMDB_LABELS:
        for file in (root / split / folder).glob("*.txt"):
            match = _ACLIMDB_MEMBER.search(file.as_posix())
            if match:
                text = clean_review(decode(file.read_bytes(), file, invalid_utf8))
                found[folder, int(match[3])] = text, int(match[4])
    return found


def _read_aclimdb_archive(path: Path, split: str, invalid_utf8: str) -> dict[tuple[str, int], tuple[str, int]]:
    """Stream the archive: reviews are read straight from it, nothing is extracted to disk.

    A gzip archive is read to its very end, where gzip keeps its length and checksum: tarfile
    alone takes an archive cut short between two members for a complete one.
    """
    found = {}
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path) if gzipped else path.open("rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|" if gzipped else "r|*") as archive:
                for member in archive:
                    check_member(member, path)
                    match = _ACLIMDB_MEMBER.search(member.name)
                    if member.isfile() and match and match[1] == split:
                        data = archive.extractfile(member).read()
                        text = decode(data, f"{path}:{member.name}", invalid_utf8)
                        found[match[2], int(match[3])] = clean_review(text), int(match[4])
            while stream.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as err:
        raise UserError(f"data source {path} is not a readable tar archive ({err})") from None
    return found


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse members that would land outside their folder if extracted: absolute paths, ``..``, links."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.issym() or member.islnk() or member.isdev():
        raise UserError(f"archive {archive} has an unsafe member {member.name!r}; refusing to read it")


def decode(data: bytes, where, invalid_utf8: str = "error", lines: bool = False) -> str:
    """UTF-8 text; invalid bytes stop with where they are (the line too, for a file of ``lines``),
    or become U+FFFD with ``replace``."""
    if invalid_utf8 == "replace":
        return data.decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        if lines:
            where = f"{where}:{data.count(NEWLINE, 0, err.start) + 1}"
        raise UserError(
            f"{where} is not valid UTF-8 ({err.reason} at byte {err.start}); "
            "--data.invalid_utf8 replace substitutes U+FFFD for such bytes"
        ) from None


def read_lines(path: str, invalid_utf8: str = "error") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each non-blank line of a UTF-8 file, ``-`` meaning stdin.

    Line numbers are 1-based and count blank lines too, so that they point into the user's file.
    The file is read lazily: memory does not grow with its length. Invalid UTF-8 stops with the
    line's number, or becomes U+FFFD with ``invalid_utf8="replace"``.
    """
    if path == "-":
        yield from _non_blank(sys.stdin.buffer, path, invalid_utf8)
        return
    try:
        with open(path, "rb") as stream:
            yield from _non_blank(stream, path, invalid_utf8)
    except OSError as err:
        raise UserError(f"cannot read predict file {path}: {err.strerror or err}") from None


def _non_blank(stream, path: str, invalid_utf8: str) -> Iterator[tuple[int, str]]:
    replace = invalid_utf8 == "replace"
    for number, raw in enumerate(stream, start=1):
        text = raw.decode("utf-8", errors="replace") if replace else decode(raw, f"{path}:{number}")
        text = text.removeprefix("\ufeff").strip()
        if text:
            yield number, text
