"""Texts to token ids, truncated to a length budget the way the user chose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Truncation = Literal["head", "tail", "head_tail"]


def truncate(ids: Sequence[int], budget: int, truncation: Truncation, head_tokens: int) -> list[int]:
    """Cut ``ids`` to at most ``budget`` tokens.

    ``head`` keeps the beginning, ``tail`` the end, and ``head_tail`` the first ``head_tokens`` and
    the last ``budget - head_tokens`` tokens (Sun et al. 2019 found 128 + 382 best on IMDB).
    """
    if len(ids) <= budget:
        return list(ids)
    if truncation == "head":
        return list(ids[:budget])
    if truncation == "tail":
        return list(ids[len(ids) - budget :])
    head = min(head_tokens, budget)
    tail = budget - head
    return list(ids[:head]) + (list(ids[len(ids) - tail :]) if tail else [])


class Encoder:
    """Tokenize texts with a Hugging Face fast tokenizer into ids with the model's special tokens.

    A text is cut as ``truncation`` says. A pair of texts is encoded the way the encoder was
    pretrained on pairs, by the tokenizer itself: separator between them, segment ids
    (``token_type_ids``) where the model has them, and the longer text truncated first.
    """

    def __init__(self, tokenizer, max_length: int, truncation: Truncation = "head", head_tokens: int = 128):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.head_tokens = head_tokens
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.budget = max_length - len(self.prefix) - len(self.suffix)
        if self.budget < 1:
            raise ValueError(f"max_length {max_length} leaves no room for text")

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        pieces = self.tokenizer(
            list(texts), add_special_tokens=False, truncation=False, return_attention_mask=False, verbose=False
        )["input_ids"]
        budget, how, head = self.budget, self.truncation, self.head_tokens
        return [self.prefix + truncate(ids, budget, how, head) + self.suffix for ids in pieces]

    def encode(self, texts: Sequence[str | tuple[str, str]]) -> dict[str, list[list[int]]]:
        """``input_ids`` of texts, or of pairs of texts; pairs add the ``token_type_ids`` the tokenizer
        makes (the model passes them only to encoders that read them: ``encoders.takes_segments``)."""
        if not texts or isinstance(texts[0], str):
            return {"input_ids": self(texts)}
        firsts, seconds = ([pair[i] for pair in texts] for i in (0, 1))
        encoded = self.tokenizer(
            firsts, seconds, truncation="longest_first", max_length=self.max_length,
            return_attention_mask=False, verbose=False,
        )  # fmt: skip
        return {key: encoded[key] for key in ("input_ids", "token_type_ids") if key in encoded}

    def batched(self, texts: Sequence, desc: str = "tokenizing", chunk: int = 2048) -> dict[str, list[list[int]]]:
        """``self.encode(texts)`` in chunks with a progress bar; the fast tokenizer uses every core per chunk."""
        from tqdm.auto import tqdm

        columns: dict[str, list[list[int]]] = {}
        with tqdm(total=len(texts), desc=desc, unit="text", disable=len(texts) <= chunk, leave=False) as bar:
            for start in range(0, len(texts), chunk):
                for key, values in self.encode(texts[start : start + chunk]).items():
                    columns.setdefault(key, []).extend(values)
                bar.update(min(chunk, len(texts) - start))
        return columns or {"input_ids": []}


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single text ([CLS] and [SEP] for BERT).

    Found by tokenizing a probe with and without special tokens, which works for every tokenizer
    family and every ``transformers`` version.
    """
    bare = tokenizer("text", add_special_tokens=False)["input_ids"]
    full = tokenizer("text", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError(f"cannot locate the text among the special tokens of {type(tokenizer).__name__}")
