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


def test_a_quick_run_validates_on_its_usual_share(tiny_encoder, imdb_dir):
    dm = make(tiny_encoder, source=str(imdb_dir), max_train_samples=6)
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val")] == [6, 2]  # 25% held out: 2 beside 6
    whole = make(tiny_encoder, source=str(imdb_dir), max_train_samples=6, max_val_samples=100)
    whole.setup("fit")
    assert len(whole.datasets["val"]) > 2


@pytest.mark.parametrize(("setting", "multiple"), [(None, 1), (1, 1), (8, 8)])  # None: 1 off a GPU
def test_batches_are_padded_to_their_own_longest_review(tiny_encoder, imdb_dir, setting, multiple):
    dm = make(tiny_encoder, source=str(imdb_dir), max_length=20, pad_to_multiple_of=setting)
    dm.setup("fit")
    lengths = [int(b["attention_mask"].sum(1).max()) for b in dm.val_dataloader()]
    widths = [b["input_ids"].shape[1] for b in dm.val_dataloader()]
    assert widths == [min(-(-n // multiple) * multiple, 20) for n in lengths]
    assert 20 in lengths  # some reviews are cut to max_length, which is no multiple of 8


def test_width_buckets_pad_every_batch_to_one_of_a_few_widths(tiny_encoder, imdb_dir):
    dm = make(tiny_encoder, source=str(imdb_dir), max_length=64, width_buckets=3)  # widths 16, 32, 64
    dm.setup("fit")
    batches = [*dm.train_dataloader(), *dm.val_dataloader()]
    lengths = [int(b["attention_mask"].sum(1).max()) for b in batches]
    widths = [b["input_ids"].shape[1] for b in batches]
    assert widths == [next(w for w in (16, 32, 64) if w >= n) for n in lengths]
    assert len(set(lengths)) > len(set(widths))


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


def write_jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_json_list_labels_make_the_task_multi_label(tiny_encoder, tmp_path):
    rows = [{"text": f"great film {i}", "label": ["pos", "music"] if i % 3 == 0 else ["pos"]} for i in range(8)]
    rows += [{"text": f"dull plot {i}", "label": "neg"} for i in range(4)]  # a plain label is a set of one
    dm = make(tiny_encoder, train_file=str(write_jsonl(tmp_path / "tags.jsonl", rows)))
    assert dm.task_kind == "multi_label" and dm.label_names == ["music", "neg", "pos"]
    dm.setup("fit")
    targets = dm.datasets["train"].labels + dm.datasets["val"].labels
    assert sorted(map(tuple, targets)) == sorted([(1.0, 0.0, 1.0)] * 3 + [(0.0, 0.0, 1.0)] * 5 + [(0.0, 1.0, 0.0)] * 4)


def test_a_label_separator_makes_the_task_multi_label(tiny_encoder, tmp_path):
    rows = ["text,label"] + [f"great film {i},action|comedy" for i in range(4)] + [f"dull {i},drama" for i in range(4)]
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    dm = make(tiny_encoder, train_file=str(tmp_path / "tags.csv"), label_separator="|")
    assert dm.task_kind == "multi_label" and dm.label_names == ["action", "comedy", "drama"]
    plain = make(tiny_encoder, train_file=str(tmp_path / "tags.csv"))
    assert plain.task_kind == "classification" and plain.label_names == ["action|comedy", "drama"]


def test_a_rare_class_is_in_both_splits(tiny_encoder, tmp_path):
    rows = ["text,label"] + [f"great film {i},common" for i in range(38)] + ["dull plot,rare", "awful plot,rare"]
    (tmp_path / "skewed.csv").write_text("\n".join(rows) + "\n")
    dm = make(tiny_encoder, train_file=str(tmp_path / "skewed.csv"))
    dm.setup("fit")
    assert dm.datasets["train"].labels.count(1) == 1 and dm.datasets["val"].labels.count(1) == 1
    assert len(dm.datasets["val"]) == 11  # a quarter of each class: 10 of 38 and 1 of 2


def test_a_balanced_sampler_draws_the_rare_class_as_often_as_the_common_one(tiny_encoder, tmp_path):
    rows = ["text,label"] + [f"great film {i},common" for i in range(190)] + [f"dull plot {i},rare" for i in range(10)]
    (tmp_path / "skewed.csv").write_text("\n".join(rows) + "\n")
    dm = make(tiny_encoder, train_file=str(tmp_path / "skewed.csv"), sampler="balanced")
    dm.setup("fit")
    labels = dm.datasets["train"].labels
    drawn = [labels[i] for epoch in range(10) for b in _epoch(dm.train_dataloader(), epoch) for i in b]
    assert len(drawn) == 10 * len(labels)
    assert 0.4 < drawn.count(1) / len(drawn) < 0.6
    assert dm.train_batches() == len(dm.train_dataloader()) == 38  # 150 texts in batches of 4
    assert sorted(i for b in dm.val_dataloader().batch_sampler for i in b) == list(range(50))  # each text once


def test_a_split_under_min_val_texts_is_not_held_out(tiny_encoder, tmp_path, capsys):
    rows = ["text,label"] + [f"great film {i},pos" for i in range(16)] + [f"dull plot {i},neg" for i in range(16)]
    (tmp_path / "few.csv").write_text("\n".join(rows) + "\n")
    dm = make(tiny_encoder, train_file=str(tmp_path / "few.csv"), min_val_texts=10, cache_dir=str(tmp_path / "c"))
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 32 and not dm.validates and dm.val_dataloader() == []
    assert "8 of 32 texts would validate, under --data.min_val_texts 10" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"under --data\.min_val_texts"):
        dm.setup("validate")
    held = make(tiny_encoder, train_file=str(tmp_path / "few.csv"), min_val_texts=8, cache_dir=str(tmp_path / "c"))
    held.setup("fit")  # the cache keeps the two splits apart
    assert (len(held.datasets["train"]), len(held.datasets["val"])) == (24, 8) and held.validates


def _epoch(loader, epoch: int) -> list[list[int]]:
    loader.batch_sampler.set_epoch(epoch)
    return list(loader.batch_sampler)


def test_a_balanced_sampler_needs_single_labels(tiny_encoder, tmp_path):
    rows = ["text,label"] + [f"great film {i},{i}.5" for i in range(40)]
    (tmp_path / "scores.csv").write_text("\n".join(rows) + "\n")
    dm = make(tiny_encoder, train_file=str(tmp_path / "scores.csv"), task="regression", sampler="balanced")
    dm.setup("fit")
    with pytest.raises(UserError, match="sampler balanced"):
        dm.train_dataloader()


def test_aclimdb_regression_reads_the_star_ratings(tiny_encoder, imdb_dir):
    dm = make(tiny_encoder, source=str(imdb_dir), task="regression")
    assert dm.task_kind == "regression" and dm.label_names == ["rating"]
    dm.setup("fit")
    assert sorted(set(dm.datasets["train"].labels)) == [2.0, 9.0]
    assert dm.datasets["val"].labels.count(2.0) == dm.datasets["val"].labels.count(9.0) == 3  # stratified


def test_pairs_carry_segment_ids_through_the_cache(tiny_encoder, tmp_path):
    rows = ["premise,hypothesis,label"] + [f"great film,loved it {i},same" for i in range(4)]
    rows += [f"great film,dull plot {i},different" for i in range(4)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    settings = {"train_file": str(tmp_path / "pairs.csv"), "text_column": ("premise", "hypothesis")}
    for _ in range(2):  # the second run reads the cache
        dm = make(tiny_encoder, cache_dir=str(tmp_path / "cache"), **settings)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        assert batch["token_type_ids"].shape == batch["input_ids"].shape and batch["token_type_ids"].max() == 1
    single = make(tiny_encoder, cache_dir=str(tmp_path / "cache"), train_file=str(tmp_path / "pairs.csv"))
    with pytest.raises(UserError, match="no column 'text'"):
        single.setup("fit")


def test_a_set_of_labels_in_an_aclimdb_or_mixed_run_is_one_line(tiny_encoder, imdb_dir, tmp_path):
    with pytest.raises(UserError, match="pass tables for this task"):
        make(tiny_encoder, source=str(imdb_dir), label_separator="|").setup("fit")
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": "great", "label": "a"}, {"text": "dull", "label": "b"}])
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": "great", "label": ["a", "b"]}])
    dm = make(tiny_encoder, train_file=str(train), test_file=str(test), val_fraction=0)
    with pytest.raises(UserError, match="mix JSON lists and single labels"):
        dm.setup("test")
