import torch

from imdb_cli.data.batching import LineDataset, PadCollate, TokenizedDataset


def test_collate_pads_to_the_longest_in_the_batch_only():
    collate = PadCollate(pad_token_id=0)
    batch = collate([{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [8], "labels": 0}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]
    assert collate([{"input_ids": [1, 2], "labels": 0}])["input_ids"].shape == (1, 2)


def test_collate_carries_line_numbers_for_prediction():
    batch = PadCollate(pad_token_id=9)([{"input_ids": [1], "line": 3}, {"input_ids": [1, 2], "line": 7}])
    assert batch["line"].tolist() == [3, 7]
    assert "labels" not in batch
    assert batch["input_ids"].dtype == torch.long


def test_tokenized_dataset_pairs_ids_and_labels():
    data = TokenizedDataset([[1, 2], [3]], [0, 1])
    assert len(data) == 2
    assert data[1] == {"input_ids": [3], "labels": 1}


def test_line_dataset_streams_in_chunks_and_can_be_read_twice():
    lines = [(1, "a"), (3, "bb"), (4, "ccc")]
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return [[len(t)] for t in texts]

    data = LineDataset(lambda: iter(lines), encode, chunk_size=2)
    expected = [{"input_ids": [1], "line": 1}, {"input_ids": [2], "line": 3}, {"input_ids": [3], "line": 4}]
    assert list(data) == expected
    assert list(data) == expected
    assert calls == [2, 1, 2, 1]
