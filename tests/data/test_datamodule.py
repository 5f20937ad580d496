import pytest

from imdb_cli.data.datamodule import IMDBDataModule
from imdb_cli.errors import UserError


def make(tiny_encoder, **kwargs) -> IMDBDataModule:
    return IMDBDataModule(tokenizer=str(tiny_encoder), batch_size=4, **kwargs)


def test_train_split_is_divided_seeded_75_25_and_test_kept_whole(tiny_encoder, imdb_archive):
    dm = make(tiny_encoder, source=str(imdb_archive))
    dm.setup("fit")
    dm.setup("test")
    train, val, test = (dm.datasets[s] for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 6, 24)
    assert dm.label_names == ["negative", "positive"]
    train_texts = set(map(tuple, train.input_ids))
    assert not train_texts & set(map(tuple, val.input_ids))

    again = make(tiny_encoder, source=str(imdb_archive))
    again.setup("fit")
    assert again.datasets["val"].input_ids == val.input_ids
    other_seed = make(tiny_encoder, source=str(imdb_archive), seed=7)
    other_seed.setup("fit")
    assert other_seed.datasets["val"].input_ids != val.input_ids


def test_subsets_are_seeded_and_sized(tiny_encoder, imdb_dir):
    dm = make(tiny_encoder, source=str(imdb_dir), max_train_samples=5, max_val_samples=2, max_test_samples=3)
    dm.setup("fit")
    dm.setup("test")
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [5, 2, 3]
    same = make(tiny_encoder, source=str(imdb_dir), max_train_samples=5)
    same.setup("fit")
    assert same.datasets["train"].input_ids == dm.datasets["train"].input_ids


@pytest.mark.parametrize(("setting", "multiple"), [(None, 1), (1, 1), (8, 8)])  # None: 1 off a GPU
def test_batches_are_padded_to_their_own_longest_review(tiny_encoder, imdb_dir, setting, multiple):
    dm = make(tiny_encoder, source=str(imdb_dir), max_length=20, pad_to_multiple_of=setting)
    dm.setup("fit")
    lengths = [int(b["attention_mask"].sum(1).max()) for b in dm.val_dataloader()]
    widths = [b["input_ids"].shape[1] for b in dm.val_dataloader()]
    assert widths == [min(-(-n // multiple) * multiple, 20) for n in lengths]
    assert 20 in lengths  # some reviews are cut to max_length, which is no multiple of 8


def test_tables_take_label_names_from_the_data(tiny_encoder, table_files):
    dm = make(tiny_encoder, **{f"{s}_file": str(p) for s, p in table_files.items()})
    assert dm.label_names == ["neg", "neutral", "pos"]
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["train"]) == 24 and len(dm.datasets["val"]) == 9 and len(dm.datasets["test"]) == 9
    assert sorted(set(dm.datasets["train"].labels)) == [0, 1, 2]


def test_given_label_names_fix_the_ids_and_reject_unknown_labels(tiny_encoder, table_files):
    dm = make(tiny_encoder, train_file=str(table_files["train"]), label_names=["pos", "neg", "neutral"])
    dm.setup("fit")
    assert dm.label_names == ["pos", "neg", "neutral"]
    narrow = make(tiny_encoder, train_file=str(table_files["train"]), label_names=["pos", "neg"])
    with pytest.raises(UserError, match="label 'neutral'"):
        narrow.setup("fit")


def test_tables_without_a_test_file_say_which_flag_is_missing(tiny_encoder, table_files):
    dm = make(tiny_encoder, train_file=str(table_files["train"]))
    with pytest.raises(UserError, match=r"--data\.test_file"):
        dm.setup("test")


def test_predict_streams_numbered_lines(tiny_encoder, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("great film\n\nawful film\n")
    dm = make(tiny_encoder, predict_file=str(path))
    dm.setup("predict")
    (batch,) = list(dm.predict_dataloader())
    assert batch["line"].tolist() == [1, 3]
    with pytest.raises(UserError, match="does not exist"):
        make(tiny_encoder, predict_file=str(tmp_path / "missing.txt")).setup("predict")
