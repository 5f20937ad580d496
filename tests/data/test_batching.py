import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imdb_cli.data.batching import LengthBatchSampler, LineDataset, PadCollate, TokenizedDataset, bucket_widths


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
        return {"input_ids": [[len(t)] * len(t) for t in texts]}

    data = LineDataset(lambda: iter(lines), encode, chunk_size=2)
    expected = [
        {"input_ids": [2, 2], "line": 3, "index": 1},
        {"input_ids": [1], "line": 1, "index": 0},
        {"input_ids": [3, 3, 3], "line": 4, "index": 2},
    ]
    assert list(data) == expected
    assert list(data) == expected
    assert calls == [2, 1, 2, 1]


def test_line_dataset_sorts_each_chunk_by_length_and_numbers_inputs():
    lines = [(1, "a"), (2, "ccc"), (5, "bb"), (6, "dddd")]
    data = LineDataset(lambda: iter(lines), lambda texts: {"input_ids": [[0] * len(t) for t in texts]}, chunk_size=3)
    assert [(s["index"], s["line"]) for s in data] == [(1, 2), (2, 5), (0, 1), (3, 6)]


def padded_tokens(lengths, batches):
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_grouped_batches_pad_far_less_than_random_ones():
    rng = random.Random(0)
    lengths = [rng.randint(20, 512) for _ in range(2000)]
    grouped = list(LengthBatchSampler(lengths, 16, "grouped", seed=1))
    shuffled = list(LengthBatchSampler(lengths, 16, "random", seed=1))
    assert padded_tokens(lengths, grouped) < 0.7 * padded_tokens(lengths, shuffled)
    assert sorted(i for b in grouped for i in b) == list(range(2000))


def test_grouped_order_is_seeded_and_changes_every_epoch():
    lengths = list(range(100))
    sampler = LengthBatchSampler(lengths, 8, "grouped", seed=3)
    first = list(sampler)
    assert list(LengthBatchSampler(lengths, 8, "grouped", seed=3)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sorted_evaluation_batches_are_longest_first():
    lengths = [3, 9, 1, 7, 5]
    assert list(LengthBatchSampler(lengths, 2, "sorted")) == [[1, 3], [4, 0], [2]]


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 600), min_size=1, max_size=300),
    batch_size=st.integers(1, 40),
    replicas=st.integers(1, 4),
    order=st.sampled_from(["grouped", "random", "sorted"]),
    epoch=st.integers(0, 5),
)
def test_every_sample_exactly_once_per_epoch_on_every_number_of_ranks(lengths, batch_size, replicas, order, epoch):
    assume(len(lengths) >= replicas)
    per_rank = []
    for rank in range(replicas):
        sampler = LengthBatchSampler(lengths, batch_size, order, seed=7, num_replicas=replicas, rank=rank)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(b for b in batches)
        if math.ceil(math.ceil(len(lengths) / batch_size) / replicas) * replicas <= len(lengths):
            assert all(len(b) <= batch_size for b in batches)
        per_rank.append(batches)
    assert len({len(batches) for batches in per_rank}) == 1  # same number of steps on every rank
    assert sorted(i for batches in per_rank for b in batches for i in b) == list(range(len(lengths)))


@pytest.mark.parametrize("order", ["grouped", "random"])
def test_weighted_draws_follow_the_weights_and_keep_the_epoch_length(order):
    labels = [0] * 95 + [1] * 5
    weights = [1 / 95] * 95 + [1 / 5] * 5
    drawn = []
    for epoch in range(40):
        sampler = LengthBatchSampler([10 + i % 7 for i in range(100)], 8, order, seed=3, weights=weights)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 13 and sum(map(len, batches)) == 100
        drawn += [labels[i] for b in batches for i in b]
    assert 0.45 < sum(drawn) / len(drawn) < 0.55  # the 5% class makes half of the draws
    again = LengthBatchSampler([10 + i % 7 for i in range(100)], 8, order, seed=3, weights=weights)
    again.set_epoch(39)
    assert list(again) == batches  # seeded: a resumed epoch draws the same texts


def test_weights_need_a_training_order_and_one_per_sample():
    with pytest.raises(ValueError):
        LengthBatchSampler([1, 2, 3], 2, "sorted", weights=[1, 1, 1])
    with pytest.raises(ValueError):
        LengthBatchSampler([1, 2, 3], 2, "grouped", weights=[1, 1])


def test_lightning_reaches_set_epoch_through_the_dataloader():
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    sampler = LengthBatchSampler(list(range(40)), 4, "grouped", seed=0)
    loader = DataLoader(list(range(40)), batch_sampler=sampler)
    first = [batch.tolist() for batch in loader]
    _set_sampler_epoch(loader, 1)  # what Lightning calls at every epoch start
    assert sampler.epoch == 1 and [batch.tolist() for batch in loader] != first


def test_skip_next_leaves_out_the_trained_batches_once():
    sampler = LengthBatchSampler(list(range(40)), 4, "grouped", seed=0)
    whole = list(sampler)
    sampler.skip_next(3)
    assert list(sampler) == whole[3:]
    assert len(sampler) == len(whole)
    assert list(sampler) == whole


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=20), pad=st.integers(0, 5), multiple=st.integers(1, 16)
)
def test_collate_keeps_every_token_and_masks_only_padding(lengths, pad, multiple):
    samples = [{"input_ids": list(range(100, 100 + n)), "labels": i % 2} for i, n in enumerate(lengths)]
    batch = PadCollate(pad_token_id=pad, multiple_of=multiple, max_width=50)(samples)
    width = batch["input_ids"].shape[1]
    assert batch["input_ids"].shape[0] == len(lengths)
    assert max(lengths) <= width < max(lengths) + multiple
    assert width % multiple == 0 or width == 50  # rounded up, but never past the encoder's limit
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for row, n in enumerate(lengths):
        assert batch["input_ids"][row, :n].tolist() == samples[row]["input_ids"]
        assert (batch["input_ids"][row, n:] == pad).all()


def epoch_widths(lengths: list[int], collate: PadCollate, batch_size: int = 16) -> tuple[set[int], float]:
    """The distinct widths of one epoch of grouped training batches, and the share of padding in them."""
    batches = list(LengthBatchSampler(lengths, batch_size, "grouped", seed=0))
    widths = [collate.width(max(lengths[i] for i in batch)) for batch in batches]
    real = sum(lengths)
    return set(widths), 1 - real / sum(w * len(b) for w, b in zip(widths, batches, strict=True))


def test_width_buckets_bound_the_shapes_of_a_full_size_epoch():
    """18,750 texts of IMDB-like lengths at 512 tokens (a log-normal with a median near 230 and a
    tenth cut at the limit): every width 1 to 512 can occur, and a multiple of 8 still leaves
    dozens; 16 width buckets leave at most 16, and the share of padding stays within 20 points of theirs."""
    rng = random.Random(0)
    lengths = [min(512, max(8, round(rng.lognormvariate(5.45, 0.6)))) for _ in range(18_750)]
    exact, exact_padding = epoch_widths(lengths, PadCollate(0, 1, 512))
    eight, _ = epoch_widths(lengths, PadCollate(0, 8, 512))
    widths = bucket_widths(512, 16, 8)
    bucketed, padding = epoch_widths(lengths, PadCollate(0, 8, 512, widths))
    assert len(exact) > 200 and 40 < len(eight) <= 64
    assert bucketed <= set(widths) and len(bucketed) <= 16 and 512 in bucketed
    assert exact_padding < padding < exact_padding + 0.2


@settings(max_examples=200, deadline=None)
@given(max_width=st.integers(1, 1024), buckets=st.integers(1, 40), multiple=st.sampled_from([1, 8, 64]))
def test_bucket_widths_reach_the_limit_in_few_steps(max_width, buckets, multiple):
    widths = bucket_widths(max_width, buckets, multiple)
    assert widths == sorted(set(widths)) and widths[-1] == max_width and len(widths) <= buckets
    assert all(w % multiple == 0 for w in widths[:-1])
    collate = PadCollate(0, multiple, max_width, widths)
    assert all(collate.width(n) in widths and collate.width(n) >= n for n in range(1, max_width + 1))


class FakeRanks:
    """Several ranks' trainers in one process: rank 0 broadcasts, and a sum is known in advance."""

    def __init__(self, world: int, total: int, root: Path) -> None:
        self.world, self.total, self.shared = world, total, None
        self.trainers = [
            SimpleNamespace(world_size=world, global_rank=rank, default_root_dir=str(root), strategy=self)
            for rank in range(world)
        ]

    def broadcast(self, obj, src: int = 0):
        self.shared = obj if obj is not None else self.shared
        return self.shared

    def reduce(self, tensor, reduce_op: str):
        return torch.tensor(self.total)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.tuples(st.booleans(), st.integers(1, 30)), min_size=1, max_size=60),
    chunk=st.integers(1, 16),
    batch_size=st.integers(1, 8),
    world=st.integers(1, 3),
)
def test_sorted_prediction_comes_back_in_input_order(tmp_path_factory, lines, chunk, batch_size, world):
    """Any mix of blank and non-blank lines, chunked, sorted by length, batched, split over 1-3
    ranks, then written: one output, in input order."""
    import json

    from torch.utils.data import DataLoader

    from imdb_cli.data.sources import read_lines
    from imdb_cli.predict import PredictionWriter

    path = tmp_path_factory.mktemp("order") / "in.txt"
    path.write_text("".join(("x" * n if keep else "  ") + "\n" for keep, n in lines))
    expected = [number for number, (keep, _) in enumerate(lines, start=1) if keep]
    assume(expected)
    ranks = FakeRanks(world, len(expected), path.parent)
    from imdb_cli.tasks import build_task

    module = SimpleNamespace(label_names=["a", "b"], device="cpu", task=build_task("classification", ["a", "b"]))
    writers = [PredictionWriter(str(path.with_suffix(".jsonl"))) for _ in range(world)]
    for rank, writer in enumerate(writers):
        writer.on_predict_start(ranks.trainers[rank], module)
        encode = lambda texts: {"input_ids": [[7] * len(t) for t in texts]}  # noqa: E731
        data = LineDataset(lambda: read_lines(str(path)), encode, chunk, num_replicas=world, rank=rank)
        for batch in DataLoader(data, batch_size=batch_size, collate_fn=PadCollate(0)):
            probs = torch.full((len(batch["line"]), 2), 0.5)
            prediction = {"index": batch["index"], "line": batch["line"], "scores": probs}
            writer.write_on_batch_end(ranks.trainers[rank], module, prediction, None, None, 0)
    for rank in reversed(range(world)):  # rank 0 last: it merges once every part is complete
        writers[rank].on_predict_end(ranks.trainers[rank], module)
    written = [json.loads(line)["line"] for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert written == expected
    assert not list(path.parent.glob(".imdb-predict-*"))


def test_collate_pads_segments_and_keeps_each_kind_of_target():
    collate = PadCollate(pad_token_id=0)
    pairs = [{"input_ids": [5, 6, 7], "token_type_ids": [0, 0, 1], "labels": [1.0, 0.0]},
             {"input_ids": [5], "token_type_ids": [0], "labels": [0.0, 1.0]}]  # fmt: skip
    batch = collate(pairs)
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 2)  # multi-label rows
    assert collate([{"input_ids": [5], "labels": 7.5}])["labels"].dtype == torch.float32  # a regression target
    assert collate([{"input_ids": [5], "labels": 1}])["labels"].dtype == torch.int64  # a class id
    assert "token_type_ids" not in collate([{"input_ids": [5], "labels": 1}])
