import pytest
import torch
from transformers.integrations import sdpa_attention

from imdb_cli import encoders
from imdb_cli.cpu import attention


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


def test_attention_trains_through_the_split_kernel_under_cpu_bf16_autocast_only(pair, monkeypatch):
    _, switched = pair
    seen = []
    original = sdpa_attention.sdpa_attention_forward

    def spy(module, query, *args, **kwargs):
        seen.append(query.dtype)
        return original(module, query, *args, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = switched(**batch()).last_hidden_state
        assert out.requires_grad and seen == []
        with torch.no_grad():
            switched(**batch())
    switched(**batch())
    layers = switched.config.num_hidden_layers
    assert seen == [torch.bfloat16] * layers + [torch.float32] * layers


def test_the_split_kernel_gives_fp32_attention_s_gradients_and_masks_padding(pair):
    plain, switched = pair
    torch.manual_seed(0)
    inputs = batch()
    real = inputs["attention_mask"].bool()
    target = torch.randn(*real.shape, plain.config.hidden_size)

    def grads(encoder, autocast: bool) -> tuple[torch.Tensor, dict]:
        encoder.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = encoder(**inputs).last_hidden_state.float()
        ((out - target)[real] ** 2).mean().backward()
        names = ("attention.self.query.weight", "attention.self.value.weight", "attention.output.dense.weight")
        return out.detach(), {n: p.grad for n, p in encoder.named_parameters() if n.endswith(names)}

    reference_out, reference = grads(plain, autocast=False)
    out, fast = grads(switched, autocast=True)
    assert torch.allclose(out[real], reference_out[real], atol=0.1)
    for name, grad in reference.items():
        assert (fast[name] - grad).norm() < 0.05 * grad.norm(), name
    inputs["input_ids"][1:, 8:] = 7  # other padding tokens: nothing real changes
    changed, again = grads(switched, autocast=True)
    assert torch.equal(changed[real], out[real])
    assert all(torch.equal(again[n], fast[n]) for n in fast)
