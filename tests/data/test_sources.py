import io
import json
import tarfile

import pytest

from imdb_cli.data.sources import read_aclimdb, read_lines
from imdb_cli.data.tables import read_table
from imdb_cli.errors import UserError


def test_directory_and_archive_read_the_same_reviews(imdb_dir, imdb_archive):
    from_dir = read_aclimdb(imdb_dir, "train")
    assert read_aclimdb(imdb_dir.parent, "train") == from_dir  # the folder holding aclImdb/ works too
    from_archive = read_aclimdb(imdb_archive, "train")
    assert from_archive == from_dir
    assert len(from_dir) == 24
    assert from_dir.labels == ["negative"] * 12 + ["positive"] * 12
    assert all("<br />" not in text for text in from_dir.texts)


def test_splits_are_read_apart(imdb_archive):
    test = read_aclimdb(imdb_archive, "test")
    assert len(test) == 24
    assert not set(test.texts) & set(read_aclimdb(imdb_archive, "train").texts) - {""}


def test_reviews_are_ordered_by_label_then_numeric_id(tmp_path):
    for folder in ("neg", "pos"):
        (tmp_path / "train" / folder).mkdir(parents=True)
        for i in (10, 2, 1):
            (tmp_path / "train" / folder / f"{i}_5.txt").write_text(f"{folder} {i}")
    assert read_aclimdb(tmp_path, "train").texts == ["neg 1", "neg 2", "neg 10", "pos 1", "pos 2", "pos 10"]


def test_missing_split_is_a_user_error(imdb_dir, tmp_path):
    with pytest.raises(UserError, match="no reviews in test/neg"):
        read_aclimdb(tmp_path, "test")
    with pytest.raises(UserError, match="does not exist"):
        read_aclimdb(tmp_path / "nowhere", "train")


@pytest.mark.parametrize("kept", [0.05, 0.5, 0.9, 0.999])
def test_corrupt_archive_is_a_user_error(imdb_archive, tmp_path, kept):
    """Wherever a download stops (between two members too), the archive is refused as unreadable."""
    whole = imdb_archive.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole[: int(len(whole) * kept)])
    with pytest.raises(UserError, match="not a readable tar archive"):
        read_aclimdb(truncated, "train")


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/aclImdb/train/pos/0_9.txt", "link"])
def test_unsafe_archive_members_are_refused(tmp_path, name):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member = tarfile.TarInfo(name)
        if name == "link":
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(member)
        else:
            member.size = 4
            tar.addfile(member, io.BytesIO(b"text"))
    with pytest.raises(UserError, match="unsafe member"):
        read_aclimdb(path, "train")


def test_tables_in_every_format(table_files):
    train = read_table(table_files["train"], "text", "label")
    val = read_table(table_files["val"], "text", "label")
    test = read_table(table_files["test"], "text", "label")
    assert (len(train), len(val), len(test)) == (24, 9, 9)
    assert train.labels[:8] == ["pos"] * 8
    assert set(val.labels) == set(test.labels) == {"pos", "neg", "neutral"}


def test_table_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngood film,pos\nno label here,\n")
    with pytest.raises(UserError, match=r"bad.csv:3: empty label"):
        read_table(bad, "text", "label")
    with pytest.raises(UserError, match=r"no column 'sentiment'"):
        read_table(bad, "text", "sentiment")
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"text": "fine", "label": 1}\nnot json\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: cannot read JSON Lines"):
        read_table(lines, "text", "label")


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.jsonl"])
def test_a_table_not_in_utf8_names_its_line_or_is_read_with_replacements(tmp_path, name):
    path = tmp_path / name
    rows = [("text", "label"), ("fine film", "pos"), ("caf\xe9 society", "neg")]
    if name.endswith(".csv"):
        path.write_bytes("\n".join(",".join(row) for row in rows).encode("latin-1") + b"\n")
        line = 3
    else:
        path.write_bytes("\n".join(json.dumps(dict(zip(*[rows[0], row], strict=True))) for row in rows[1:]).encode())
        path.write_bytes(path.read_bytes().replace(b"\\u00e9", b"\xe9"))
        line = 2
    with pytest.raises(UserError, match=rf"{name}:{line} is not valid UTF-8 .* --data.invalid_utf8 replace"):
        read_table(path, "text", "label")
    assert read_table(path, "text", "label", "replace").texts == ["fine film", "caf\ufffd society"]


def test_label_names_sort_numbers_as_numbers():
    from imdb_cli.tasks.base import sorted_names

    assert sorted_names({"10", "2", "1"}) == ["1", "2", "10"]
    assert sorted_names({"pos", "neg"}) == ["neg", "pos"]


def test_aclimdb_ratings_come_from_the_file_names(imdb_dir):
    rated = read_aclimdb(imdb_dir, "train", ratings=True)
    assert rated.texts == read_aclimdb(imdb_dir, "train").texts
    assert set(rated.labels) == {2.0, 9.0}  # the fixture's negative and positive ratings


def test_read_lines_numbers_every_line_and_skips_blank_ones(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_bytes("\ufefffirst\r\n\r\n   \nsecond ünïcode\nthird".encode())
    assert list(read_lines(str(path))) == [(1, "first"), (4, "second ünïcode"), (5, "third")]


def test_read_lines_names_the_line_with_invalid_utf8(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"fine\n\xff\xfe bad\n")
    with pytest.raises(UserError, match=r"reviews.txt:2 is not valid UTF-8"):
        list(read_lines(str(path)))
