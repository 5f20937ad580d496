"""Tables: CSV, TSV, JSON Lines and Parquet read alike, for training and, row by row, for predict."""

from __future__ import annotations

import json

import pytest

from imdb_cli.data.tables import is_table, read_predict_rows, read_table
from imdb_cli.errors import UserError

ROWS = [
    {"id": "a7", "review": "a fine film", "label": "pos"},
    {"id": "b2", "review": "", "label": "neg"},
    {"id": "c9", "review": "dull,\nand long", "label": "neg"},
    {"id": "d1", "review": "  loved it ", "label": "pos"},
]


def write(path, rows=ROWS):
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        import csv

        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_predict_rows_keep_row_numbers_and_ids_and_skip_empty_texts(tmp_path, suffix):
    path = write(tmp_path / f"reviews{suffix}")
    assert is_table(path)
    rows = list(read_predict_rows(str(path), "review", "id"))
    assert rows == [
        (1, "a fine film", {"id": "a7"}),
        (3, "dull,\nand long", {"id": "c9"}),
        (4, "loved it", {"id": "d1"}),
    ]
    assert [copied for *_, copied in read_predict_rows(str(path), "review")] == [{}, {}, {}]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_missing_column_names_the_columns_there_are(tmp_path, suffix):
    path = write(tmp_path / f"reviews{suffix}")
    with pytest.raises(UserError, match=r"no column 'text' \(columns: id, review, label\)"):
        list(read_predict_rows(str(path), "text"))


def test_training_tables_read_parquet_and_name_a_csv_rows_first_line(tmp_path):
    rows = [row | {"review": row["review"] or "x"} for row in ROWS]
    parquet = read_table(write(tmp_path / "t.parquet", rows), "review", "label")
    assert parquet.texts[2] == "dull,\nand long" and parquet.labels == ["pos", "neg", "neg", "pos"]
    with pytest.raises(UserError, match=r"t.csv:2: empty label"):
        read_table(write(tmp_path / "t.csv", [rows[0] | {"label": ""}]), "review", "label")
    broken = [*rows[:3], rows[3] | {"label": ""}]
    with pytest.raises(UserError, match=r"t.csv:6: empty label"):  # row 4 starts on line 6: row 3 spans two
        read_table(write(tmp_path / "t.csv", broken), "review", "label")


def test_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_text("text,label\n")
    with pytest.raises(UserError, match=r"bad.parquet is not a readable Parquet file"):
        read_table(path, "text", "label")


def test_a_non_text_column_is_refused(tmp_path):
    path = write(tmp_path / "n.jsonl", [{"review": 3, "id": 1}])
    with pytest.raises(UserError, match=r"n.jsonl:1: column 'review' holds int, not text"):
        list(read_predict_rows(str(path), "review", "id"))


def test_csv_rows_after_blank_lines_and_with_lone_cr_line_ends(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_bytes(b'id,review\r\n\r\nr1,fine film\r\n\r\nr2,"two\r\nlines"\r\nr3,short\r\n')
    rows = list(read_predict_rows(str(path), "review", "id"))
    assert [(row, copied["id"]) for row, _, copied in rows] == [(1, "r1"), (2, "r2"), (3, "r3")]
    path.write_bytes(b"id,review,label\r\r\nr1,fine film,pos\r\nr2,,neg\r")
    with pytest.raises(UserError, match=r"gaps.csv:4: empty text"):
        read_table(path, "review", "label")
    mac = tmp_path / "mac.csv"
    mac.write_bytes(b"review,label\rfine film,pos\rdull,neg\r")
    assert read_table(mac, "review", "label").labels == ["pos", "neg"]


def test_two_text_columns_read_as_pairs_for_training_and_predict(tmp_path):
    rows = [{"premise": "a fine film", "hypothesis": "it was good", "label": "same", "id": 1},
            {"premise": "dull", "hypothesis": "", "label": "different", "id": 2}]  # fmt: skip
    path = write(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(UserError, match=r"pairs.jsonl:2: empty text in column 'hypothesis'"):
        read_table(path, ("premise", "hypothesis"), "label")
    assert read_table(write(tmp_path / "p.csv", rows[:1]), ("premise", "hypothesis"), "label").texts == [
        ("a fine film", "it was good")
    ]
    assert list(read_predict_rows(str(path), ("premise", "hypothesis"), "id")) == [
        (1, ("a fine film", "it was good"), {"id": 1})
    ]  # the row with an empty text is skipped


def test_a_label_cell_the_task_cannot_read_names_its_row(tmp_path):
    from imdb_cli.tasks import MultiLabel, Regression

    scores = write(tmp_path / "scores.csv", [{"text": "fine", "label": "7"}])
    assert read_table(scores, "text", "label", parse=Regression.parse).labels == [7.0]
    write(scores, [{"text": "fine", "label": "7"}, {"text": "dull", "label": "low"}])
    with pytest.raises(UserError, match=r"scores.csv:3: target 'low' is not a number in column 'label'"):
        read_table(scores, "text", "label", parse=Regression.parse)
    tags = write(tmp_path / "tags.csv", [{"text": "fine", "label": "action|"}])
    with pytest.raises(UserError, match=r"tags.csv:2: label separator '\|' leaves an empty label in 'action\|'"):
        read_table(tags, "text", "label", parse=MultiLabel.parse, separator="|")
