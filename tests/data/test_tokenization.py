import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(0, 300),
    budget=st.integers(1, 100),
    how=st.sampled_from(["head", "tail", "head_tail"]),
    head_tokens=st.integers(0, 120),
)
def test_truncation_never_exceeds_the_budget_and_keeps_the_promised_ends(length, budget, how, head_tokens):
    ids = list(range(length))
    kept = truncate(ids, budget, how, head_tokens)
    assert len(kept) == min(length, budget)
    if length <= budget:
        assert kept == ids
    elif how == "head":
        assert kept == ids[:budget]
    elif how == "tail":
        assert kept == ids[-budget:]
    else:
        head = min(head_tokens, budget)
        assert kept[:head] == ids[:head]
        assert kept[head:] == ids[length - (budget - head) :]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet="abcdefgh lotr", min_size=1, max_size=200), min_size=1, max_size=8))
def test_encoded_texts_fit_max_length_with_special_tokens_at_the_ends(tiny_encoder, texts):
    tokenizer = load_tokenizer(str(tiny_encoder))
    for ids in Encoder(tokenizer, max_length=12, truncation="head_tail", head_tokens=4)(texts):
        assert len(ids) <= 12
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id


def test_a_pair_is_encoded_as_the_encoder_was_pretrained_with_segment_ids(tokenizer):
    encode = Encoder(tokenizer, max_length=10)
    columns = encode.encode([("great film", "dull plot"), ("great " * 20, "dull")])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    first, long = columns["input_ids"]
    assert first[0] == cls and first.count(sep) == 2 and len(long) == 10  # cut to max_length
    assert columns["token_type_ids"][0] == [0] * (first.index(sep) + 1) + [1] * (len(first) - first.index(sep) - 1)
    assert long[-2] != sep and tokenizer.decode(long[long.index(sep) + 1 : -1]) == "dull"  # the longer text is cut
    assert list(encode.encode(["great film"])) == ["input_ids"]  # single texts need no segments


def test_only_encoders_with_a_segment_table_read_segment_ids(tiny_encoder):
    from transformers import AutoModel, DistilBertConfig, DistilBertModel

    from imdb_cli.encoders import takes_segments

    assert takes_segments(AutoModel.from_pretrained(tiny_encoder))
    tiny = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32)
    assert not takes_segments(DistilBertModel(tiny))  # its tokenizer gives them all the same, it has no table
