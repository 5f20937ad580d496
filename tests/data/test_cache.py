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
        return {"input_ids": [[1, 2], [3]], "token_type_ids": [[0, 1], [0]]}, ["pos", ("a", "b")]

    key = {"split": "train", "tokenizer": "abc"}
    expected = ({"input_ids": [[1, 2], [3]], "token_type_ids": [[0, 1], [0]]}, ["pos", ("a", "b")])
    assert cache.load_or_build(key, build) == expected
    assert cache.load_or_build(key, build) == expected
    assert len(builds) == 1
    cache.load_or_build({**key, "tokenizer": "other"}, build)
    assert len(builds) == 2


def test_a_damaged_entry_is_rebuilt(tmp_path):
    cache = TokenCache(tmp_path)
    key = {"k": 1}
    cache.path(key).write_bytes(b"not a torch file")
    assert cache.load_or_build(key, lambda: ({"input_ids": [[5]]}, [7.5])) == ({"input_ids": [[5]]}, [7.5])
    assert torch.load(cache.path(key), weights_only=True)["labels"] == [7.5]


def test_fingerprints_follow_content(tmp_path):
    file = tmp_path / "a.txt"
    file.write_text("one")
    before = fingerprint(file)
    file.write_text("two")
    assert fingerprint(file) != before
    directory_before = fingerprint(tmp_path)
    (tmp_path / "b.txt").write_text("new")
    assert fingerprint(tmp_path) != directory_before
