import pytest

from imdb_cli.data.tokenization import Encoder, special_tokens, truncate
from imdb_cli.encoders import load_tokenizer

IDS = list(range(10))


@pytest.mark.parametrize(
    ("how", "expected"),
    [("head", [0, 1, 2, 3]), ("tail", [6, 7, 8, 9]), ("head_tail", [0, 7, 8, 9])],
)
def test_truncate_keeps_the_chosen_tokens(how, expected):
    assert truncate(IDS, 4, how, head_tokens=1) == expected


def test_short_sequences_are_untouched():
    assert truncate(IDS, 10, "head_tail", 3) == IDS


@pytest.fixture
def tokenizer(tiny_encoder):
    return load_tokenizer(str(tiny_encoder))


def test_special_tokens_frame_the_text(tokenizer):
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


def test_encoder_respects_max_length(tokenizer):
    encode = Encoder(tokenizer, max_length=6, truncation="head")
    short, long = encode(["great film", "the film was a great film and the plot was awful"])
    assert tokenizer.unk_token_id not in short + long
    assert short == [
        tokenizer.cls_token_id,
        *tokenizer.convert_tokens_to_ids(["great", "film"]),
        tokenizer.sep_token_id,
    ]
    assert len(long) == 6
    assert long[1:-1] == tokenizer.convert_tokens_to_ids(["the", "film", "was", "a"])


def test_head_tail_keeps_both_ends(tokenizer):
    encode = Encoder(tokenizer, max_length=6, truncation="head_tail", head_tokens=1)
    (ids,) = encode(["great the the the the the the awful boring"])
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "great", "the", "awful", "boring", "[SEP]"]
