import torch

from imdb_cli.data.cache import TokenCache, fingerprint, flatten, unflatten


def test_flatten_round_trip():
    ids = [[1, 2, 3], [], [4]]
    assert unflatten(*flatten(ids)) == ids


def test_second_load_skips_the_build(tmp_path):
    cache = TokenCache(tmp_path)
    builds = []

    def build():
        builds.append(1)
        return [[1, 2], [3]], ["pos", "neg"]

    key = {"split": "train", "tokenizer": "abc"}
    assert cache.load_or_build(key, build) == ([[1, 2], [3]], ["pos", "neg"])
    assert cache.load_or_build(key, build) == ([[1, 2], [3]], ["pos", "neg"])
    assert len(builds) == 1
    cache.load_or_build({**key, "tokenizer": "other"}, build)
    assert len(builds) == 2


def test_a_damaged_entry_is_rebuilt(tmp_path):
    cache = TokenCache(tmp_path)
    key = {"k": 1}
    cache.path(key).write_bytes(b"not a torch file")
    assert cache.load_or_build(key, lambda: ([[5]], ["x"])) == ([[5]], ["x"])
    assert torch.load(cache.path(key), weights_only=True)["labels"] == ["x"]


def test_fingerprints_follow_content(tmp_path):
    file = tmp_path / "a.txt"
    file.write_text("one")
    before = fingerprint(file)
    file.write_text("two")
    assert fingerprint(file) != before
    directory_before = fingerprint(tmp_path)
    (tmp_path / "b.txt").write_text("new")
    assert fingerprint(tmp_path) != directory_before
