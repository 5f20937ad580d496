"""Datasets of token ids and the collate that pads each batch to its own longest sequence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, IterableDataset


class TokenizedDataset(Dataset):
    """Token ids with one label id each (``-1`` where the label is unknown)."""

    def __init__(self, input_ids: Sequence[Sequence[int]], labels: Sequence[int]) -> None:
        self.input_ids = input_ids
        self.labels = labels

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


class LineDataset(IterableDataset):
    """Numbered texts from a lazily read source, tokenized as they stream past.

    ``lines`` is a callable returning a fresh iterator of ``(line_number, text)`` so that the
    dataset can be iterated more than once; ``encode`` maps a list of texts to lists of ids.
    """

    def __init__(self, lines, encode, chunk_size: int = 256) -> None:
        self.lines = lines
        self.encode = encode
        self.chunk_size = chunk_size

    def __iter__(self) -> Iterator[dict]:
        chunk: list[tuple[int, str]] = []
        for item in self.lines():
            chunk.append(item)
            if len(chunk) == self.chunk_size:
                yield from self._encode(chunk)
                chunk = []
        yield from self._encode(chunk)

    def _encode(self, chunk: list[tuple[int, str]]) -> Iterator[dict]:
        if not chunk:
            return
        ids = self.encode([text for _, text in chunk])
        for (line, _), input_ids in zip(chunk, ids, strict=True):
            yield {"input_ids": input_ids, "line": line}


class PadCollate:
    """Stack samples into tensors, padding to the longest sequence of this batch, not a global length."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(s["input_ids"]) for s in samples)
        input_ids = torch.full((len(samples), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(samples), width), dtype=torch.long)
        for row, sample in enumerate(samples):
            ids = sample["input_ids"]
            input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        for key in ("labels", "line"):
            if key in samples[0]:
                batch[key] = torch.tensor([s[key] for s in samples], dtype=torch.long)
        return batch
