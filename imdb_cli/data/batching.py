"""Datasets of token ids and the collate that pads each batch to its own longest sequence."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, IterableDataset, Sampler


class TokenizedDataset(Dataset):
    """Token ids with one target each: a class id, a 0/1 row per label (multi-label) or a number;
    ``token_type_ids`` (segment ids) for text pairs on encoders that have them."""

    def __init__(
        self,
        input_ids: Sequence[Sequence[int]],
        labels: Sequence,
        token_type_ids: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.input_ids = input_ids
        self.labels = labels
        self.token_type_ids = token_type_ids

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict:
        sample = {"input_ids": self.input_ids[index], "labels": self.labels[index]}
        if self.token_type_ids is not None:
            sample["token_type_ids"] = self.token_type_ids[index]
        return sample


class LineDataset(IterableDataset):
    """Numbered texts from a lazily read source, tokenized and sorted by length chunk by chunk.

    ``lines`` is a callable returning a fresh iterator of ``(line_number, text)``, or of
    ``(line_number, text, copied)`` where ``copied`` holds columns the records carry along, so that the
    dataset can be iterated more than once; ``encode`` maps a list of texts (or pairs) to columns of ids
    (:meth:`imdb_cli.data.tokenization.Encoder.encode`).
    Within each chunk of ``chunk_size`` texts, samples come longest first, so that batches hold
    texts of similar length; ``index`` (the text's position in the input) lets the writer restore
    the input order. Memory holds one chunk, however long the input.

    With ``num_replicas`` processes, rank ``r`` takes the texts whose index is ``r`` modulo
    ``num_replicas``: the ranks share the work evenly and their outputs interleave back into
    input order. ``total``, the number of texts where it is known (a file, not a stream), gives
    the dataset a length, and the progress bar its end.
    """

    def __init__(self, lines, encode, chunk_size: int = 1024, num_replicas: int = 1, rank: int = 0,
                 total: int | None = None) -> None:  # fmt: skip
        self.lines = lines
        self.encode = encode
        self.chunk_size = chunk_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.total = total

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("a stream of texts has no length")  # what len() raises; Lightning then shows no total
        return len(range(self.rank, self.total, self.num_replicas))

    def __iter__(self) -> Iterator[dict]:
        chunk: list[tuple[int, int, str, dict]] = []
        for index, (line, text, *copied) in enumerate(self.lines()):
            if index % self.num_replicas != self.rank:
                continue
            chunk.append((index, line, text, copied[0] if copied else {}))
            if len(chunk) == self.chunk_size:
                yield from self._encode(chunk)
                chunk = []
        yield from self._encode(chunk)

    def _encode(self, chunk: list[tuple[int, int, str, dict]]) -> Iterator[dict]:
        if not chunk:
            return
        columns = self.encode([text for _, _, text, _ in chunk])
        samples = [
            {"line": line, "index": index} | ({"copied": copied} if copied else {}) for index, line, _, copied in chunk
        ]
        for name, values in columns.items():
            for sample, ids in zip(samples, values, strict=True):
                sample[name] = ids
        yield from sorted(samples, key=lambda s: len(s["input_ids"]), reverse=True)


def bucket_widths(max_width: int, buckets: int, multiple_of: int = 1, smallest: int = 16) -> list[int]:
    """``buckets`` batch widths from about ``smallest`` up to ``max_width``, spaced geometrically (each
    the last times the same ratio, so that padding up to the next one adds at most that ratio's share
    at every length), each rounded up to a multiple of ``multiple_of`` (``max_width`` excepted)."""
    if buckets < 1:
        raise ValueError("at least one width bucket")
    if buckets == 1:
        return [max_width]
    low = min(max(smallest, multiple_of), max_width)
    ratio = (max_width / low) ** (1 / (buckets - 1))
    widths = {min(-(-round(low * ratio**step) // multiple_of) * multiple_of, max_width) for step in range(buckets)}
    return sorted(widths | {max_width})


class PadCollate:
    """Stack samples into tensors, padding to the longest sequence of this batch, not a global length.

    The width is rounded up to a multiple of ``multiple_of``, but not past ``max_width`` (the
    encoder's limit); with ``widths`` (:func:`bucket_widths`), up to the first of them that holds
    the batch. Every new tensor shape costs once, on a GPU (kernel choice) and under ``torch.compile``
    (a compilation): a few widths run faster there than every width from 1 to the maximum length.
    """

    def __init__(
        self, pad_token_id: int, multiple_of: int = 1, max_width: int | None = None, widths: Sequence[int] = ()
    ) -> None:
        self.pad_token_id = pad_token_id
        self.multiple_of = multiple_of
        self.max_width = max_width
        self.widths = sorted(widths)

    def width(self, longest: int) -> int:
        """The padded width of a batch whose longest sequence has ``longest`` tokens."""
        width = -(-longest // self.multiple_of) * self.multiple_of
        width = next((w for w in self.widths if w >= width), width)
        if self.max_width is not None:
            width = max(longest, min(width, self.max_width))
        return width

    def __call__(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        width = self.width(max(len(s["input_ids"]) for s in samples))
        input_ids = torch.full((len(samples), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(samples), width), dtype=torch.long)
        segments = "token_type_ids" in samples[0]
        token_type_ids = torch.zeros((len(samples), width), dtype=torch.long) if segments else None
        for row, sample in enumerate(samples):
            ids = sample["input_ids"]
            input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
            if segments:
                token_type_ids[row, : len(ids)] = torch.as_tensor(sample["token_type_ids"], dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if segments:
            batch["token_type_ids"] = token_type_ids
        if "labels" in samples[0]:  # class ids stay integers; multi-label rows and regression targets are floats
            batch["labels"] = torch.tensor([s["labels"] for s in samples])
        for key in ("line", "index"):
            if key in samples[0]:
                batch[key] = torch.tensor([s[key] for s in samples], dtype=torch.long)
        if "copied" in samples[0]:
            batch["copied"] = [s["copied"] for s in samples]
        return batch


class LengthBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices, grouped by length to cut padding, split across ranks.

    ``grouped`` training batches: the indices are shuffled, cut into mega-batches of
    ``mega_batches`` batches per rank, each mega-batch is sorted by length and cut into batches,
    and the steps are shuffled; every epoch (``set_epoch``) reshuffles with ``seed + epoch``.
    ``random``: the shuffled order cut into batches, as a plain shuffled DataLoader would.
    ``sorted``: evaluation order, longest first, no shuffling.
    With ``weights`` (training orders only), each epoch draws as many indices as there are samples,
    with replacement, each with probability proportional to its weight, in place of the shuffle:
    a class-balanced sampler for imbalanced data, as torch's ``WeightedRandomSampler``.

    Without weights, every index appears exactly once per epoch over all ranks. The samples are cut
    into a number of batches that is a multiple of ``num_replicas`` (batch sizes then differ by at
    most one), so that every rank takes the same number of steps without repeating samples. Only
    when there are fewer samples than that many batches (3 samples, batch size 1, 2 ranks) does a
    batch exceed ``batch_size``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        order: str = "grouped",
        seed: int = 0,
        mega_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        weights: Sequence[float] | None = None,
    ) -> None:
        if order not in ("grouped", "random", "sorted"):
            raise ValueError(f"unknown batch order {order!r}")
        if weights is not None and (order == "sorted" or len(weights) != len(lengths)):
            raise ValueError("weights need a training order and one weight per sample")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not among {num_replicas} replicas")
        self.lengths = lengths
        self.batch_size = batch_size
        self.order = order
        self.seed = seed
        self.mega_batches = mega_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.weights = weights
        self.epoch = 0
        self.skip = 0

    @property
    def sampler(self) -> LengthBatchSampler:
        """Lightning calls ``set_epoch`` on ``batch_sampler.sampler``: this sampler is its own."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_next(self, batches: int) -> None:
        """Leave out the first ``batches`` batches of the next pass only: the part of an epoch
        that a resumed run already trained on. ``len()`` still counts the whole epoch."""
        self.skip = batches

    def __len__(self) -> int:
        return self._num_batches() // self.num_replicas

    def _num_batches(self) -> int:
        """The fewest batches of at most ``batch_size`` that split evenly over the ranks; when
        there are too few samples for that, as many batches as keep every one non-empty."""
        samples, replicas = len(self.lengths), self.num_replicas
        if samples < replicas:
            raise ValueError(f"{samples} samples cannot be shared by {replicas} ranks")
        batches = math.ceil(math.ceil(samples / self.batch_size) / replicas) * replicas
        return batches if batches <= samples else samples // replicas * replicas

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        indices = list(range(len(self.lengths)))
        key = self.lengths.__getitem__
        if self.order == "sorted":
            indices.sort(key=key, reverse=True)
        elif self.weights is not None:
            indices = rng.choices(indices, weights=self.weights, k=len(indices))
        else:
            rng.shuffle(indices)
        if self.order == "grouped":
            span = self.batch_size * self.num_replicas * self.mega_batches
            megas = (sorted(indices[start : start + span], key=key) for start in range(0, len(indices), span))
            indices = [i for mega in megas for i in mega]
        batches = _split_evenly(indices, self._num_batches())
        steps = [batches[i : i + self.num_replicas] for i in range(0, len(batches), self.num_replicas)]
        if self.order == "grouped":
            rng.shuffle(steps)
        skip, self.skip = self.skip, 0
        for step in steps[skip:]:
            yield step[self.rank]


def _split_evenly(items: list[int], parts: int) -> list[list[int]]:
    """``parts`` contiguous slices whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    bounds = [0]
    for part in range(parts):
        bounds.append(bounds[-1] + size + (part < extra))
    return [items[bounds[i] : bounds[i + 1]] for i in range(parts)]
