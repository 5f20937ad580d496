"""Tables of texts: CSV, TSV, JSON Lines and Parquet, read row by row.

Training tables become :class:`LabeledTexts`; a table given to ``imdb predict`` is streamed, its text
column (and any id column) read one row at a time, so that memory does not grow with its length.
Parquet needs pyarrow (the ``tables`` extra).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from imdb_cli.data.sources import LabeledTexts, Text, decode
from imdb_cli.errors import UserError

JSON_LINES = (".jsonl", ".json", ".ndjson")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", *JSON_LINES)
"""File name endings read as tables; anything else given to predict is plain text, one input per line."""

PARQUET_BATCH = 1024
"""Parquet rows read at a time."""


def is_table(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def iter_rows(path: Path, invalid_utf8: str = "error", columns: list[str] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(where, row)`` for each row: ``where`` is the file line a CSV or JSON Lines row starts
    on, or the row number of a Parquet file. ``columns`` limits what Parquet reads."""
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_rows(path, columns)
    elif suffix in JSON_LINES:
        yield from _json_rows(path, invalid_utf8)
    else:
        yield from _csv_rows(path, invalid_utf8, "\t" if suffix == ".tsv" else ",")


def read_table(
    path: Path,
    text_column: str | tuple[str, str],
    label_column: str,
    invalid_utf8: str = "error",
    parse: Callable | None = None,
    separator: str | None = None,
) -> LabeledTexts:
    """Every row's text (or pair of texts, for two text columns) and label, from any table format.

    ``parse(cell, separator)`` reads a label cell (a task's ``parse``; by default a class name, or a
    JSON list of them); its ``ValueError`` becomes a one-line error naming the row.
    """
    from imdb_cli.tasks import SingleLabel

    parse = parse or SingleLabel.parse
    text_columns = columns_of(text_column)
    data = LabeledTexts()
    for where, row in iter_rows(path, invalid_utf8, [*text_columns, label_column]):
        for column in (*text_columns, label_column):
            if column not in row:
                raise UserError(f"{path}:{where}: no column {column!r} (columns: {', '.join(map(str, row))})")
        texts = []
        for column in text_columns:
            text = row[column]
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"{path}:{where}: empty text in column {column!r}")
            texts.append(text)
        try:
            label = parse(row[label_column], separator)
        except ValueError as err:
            raise UserError(f"{path}:{where}: {err} in column {label_column!r}") from None
        data.texts.append(texts[0] if len(texts) == 1 else tuple(texts))
        data.labels.append(label)
    if not data.texts:
        raise UserError(f"data file {path} has no rows")
    return data


def columns_of(text_column: str | tuple[str, str] | list[str]) -> list[str]:
    """The text column, or the two columns of a pair, as a list."""
    return [text_column] if isinstance(text_column, str) else list(text_column)


def read_predict_rows(
    path: str, text_column: str | tuple[str, str], id_column: str | None = None, invalid_utf8: str = "error"
) -> Iterator[tuple[int, Text, dict]]:
    """Yield ``(row, text, copied)`` for each row with a text: ``row`` counts from 1 (the first row
    after a CSV header), ``text`` is a pair for two text columns, ``copied`` holds the id column's
    value under its name. Rows with an empty text (either of a pair) are skipped, as blank lines of
    a text file are; their numbers are not reused."""
    text_columns = columns_of(text_column)
    columns = text_columns + ([id_column] if id_column else [])
    for number, (where, row) in enumerate(iter_rows(Path(path), invalid_utf8, columns), start=1):
        for column in columns:
            if column not in row:
                raise UserError(f"{path}:{where}: no column {column!r} (columns: {', '.join(map(str, row))})")
        texts = []
        for column in text_columns:
            text = row[column]
            if text is not None and not isinstance(text, str):
                raise UserError(f"{path}:{where}: column {column!r} holds {type(text).__name__}, not text")
            texts.append(text.strip() if text else "")
        if all(texts):
            copied = {id_column: row[id_column]} if id_column else {}
            yield number, texts[0] if len(texts) == 1 else tuple(texts), copied


def _text_lines(path: Path, invalid_utf8: str) -> Iterator[str]:
    """The file's lines (ended by LF, CRLF or a lone CR), decoded one at a time so that invalid
    UTF-8 names its line."""
    with path.open("rb") as stream:
        number = 0
        for raw in stream:
            body = raw.removesuffix(b"\n").removesuffix(b"\r")
            for piece in raw.splitlines(keepends=True) if b"\r" in body else (raw,):
                number += 1
                text = decode(piece, f"{path}:{number}", invalid_utf8)
                yield text.removeprefix("\ufeff") if number == 1 else text


def _csv_rows(path: Path, invalid_utf8: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    """Rows as dicts keyed by the header, each with the line it starts on; blank lines are skipped
    (and counted), missing cells are ``None``."""
    reader = csv.reader(_text_lines(path, invalid_utf8), delimiter=delimiter)
    try:
        header = next(reader, [])
        start = reader.line_num + 1
        for row in reader:
            if row:
                yield start, dict(zip(header, row + [None] * (len(header) - len(row)), strict=False))
            start = reader.line_num + 1
    except csv.Error as err:
        raise UserError(f"{path}:{reader.line_num}: cannot read CSV ({err})") from None


def _json_rows(path: Path, invalid_utf8: str) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(_text_lines(path, invalid_utf8), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as err:
                raise UserError(f"{path}:{number}: cannot read JSON Lines ({err})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: cannot read JSON Lines (each line must be a JSON object)")
            yield number, row


def _parquet_rows(path: Path, columns: list[str] | None) -> Iterator[tuple[int, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"reading {path} needs pyarrow: pip install pyarrow (imdb-cli's tables extra)") from None
    try:
        table = pq.ParquetFile(path)
    except Exception as err:
        detail = next(iter(str(err).splitlines()), type(err).__name__)
        raise UserError(f"{path} is not a readable Parquet file ({detail})") from None
    present = table.schema_arrow.names
    missing = [column for column in columns or [] if column not in present]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r} (columns: {', '.join(present)})")
    number = 0
    for batch in table.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
        for row in batch.to_pylist():
            number += 1
            yield number, row
