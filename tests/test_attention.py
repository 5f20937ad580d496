import pytest
import torch
from transformers.integrations import sdpa_attention

from imdb_cli import attention, encoders


@pytest.fixture
def pair(tiny_encoder):
    plain = encoders.load_encoder(str(tiny_encoder)).eval()
    switched = encoders.load_encoder(str(tiny_encoder)).eval()
    assert attention.use_fast_attention(switched) and switched.config._attn_implementation == attention.NAME
    return plain, switched


def batch() -> dict:
    ids = torch.randint(5, 40, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1:, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_the_switched_encoder_computes_the_same_and_masks_padding(pair):
    plain, switched = pair
    inputs = batch()
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        same = switched(**inputs).last_hidden_state
        assert torch.equal(plain(**inputs).last_hidden_state[real], same[real])
        inputs["input_ids"][1:, 8:] = 7  # other padding tokens: the real tokens' vectors do not change
        assert torch.equal(switched(**inputs).last_hidden_state[real], same[real])


def test_attention_trains_in_fp32_under_cpu_bf16_autocast_only(pair, monkeypatch):
    _, switched = pair
    seen = []
    original = sdpa_attention.sdpa_attention_forward

    def spy(module, query, *args, **kwargs):
        seen.append(query.dtype)
        return original(module, query, *args, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = switched(**batch()).last_hidden_state
        assert out.requires_grad
        with torch.no_grad():
            switched(**batch())
    switched(**batch())
    layers = switched.config.num_hidden_layers
    assert seen == [torch.float32] * layers + [torch.bfloat16] * layers + [torch.float32] * layers
