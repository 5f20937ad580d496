import torch

from imdb_cli.model import SentimentClassifier


def make(tiny_encoder, **kwargs) -> SentimentClassifier:
    model = SentimentClassifier(encoder=str(tiny_encoder), **kwargs)
    model.configure_model()
    return model


def batch(n=3, width=7):
    ids = torch.randint(5, 30, (n, width))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    return ids, mask


def test_head_gives_one_logit_per_label(tiny_encoder):
    model = make(tiny_encoder, label_names=["a", "b", "c"], head_hidden=16)
    assert model(*batch()).shape == (3, 3)
    first, _, _, last = model.head
    assert (first.in_features, first.out_features, last.out_features) == (32, 16, 3)


def test_get_outputs_returns_token_states_and_cls_vector(tiny_encoder):
    model = make(tiny_encoder).eval()
    outputs = model.get_outputs(*batch(2, 5))
    assert outputs.hidden_states.shape == (2, 5, 32)
    assert torch.equal(outputs.cls, outputs.hidden_states[:, 0])


def test_encoder_trains_with_dropout_on(tiny_encoder):
    model = make(tiny_encoder)
    assert model.encoder.training
