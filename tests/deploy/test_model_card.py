"""The export's model card (:mod:`imdb_cli.deploy.model_card`); its end-to-end checks are in test_export.py."""


def test_the_model_card_says_which_tokens_a_long_text_keeps():
    from imdb_cli.deploy.model_card import _kept

    meta = {"max_length": 512, "truncation": "head_tail", "head_tokens": 128}
    assert _kept(meta, 2) == "their first 128 and last 382 tokens"
    assert _kept({**meta, "head_tokens": 600}, 2) == "their first 510 tokens"
    assert _kept({**meta, "truncation": "tail"}, 2) == "their last 510 tokens"
