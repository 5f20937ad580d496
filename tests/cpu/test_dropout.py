import pytest
import torch
from torch import nn

from imdb_cli import encoders
from imdb_cli.cpu.dropout import Dropout, use_fast_dropout


def test_the_mask_keeps_one_minus_p_scales_the_kept_and_repeats_with_the_seed():
    x = torch.rand(64, 128, 96, dtype=torch.bfloat16) + 1
    drop = Dropout(0.1).train()
    torch.manual_seed(3)
    out = drop(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.003
    assert torch.equal(out[kept], (x * (1 / 0.9))[kept])
    assert out.dtype == x.dtype and out.shape == x.shape
    torch.manual_seed(3)
    assert torch.equal(drop(x), out)
    assert not torch.equal(drop(x), out)


def test_the_gradient_goes_through_the_kept_elements_scaled():
    x = torch.randn(5, 7, 3, requires_grad=True)  # 105 elements: not a multiple of four bits' draws
    out = Dropout(0.5).train()(x)
    out.backward(torch.ones_like(out))
    kept = out.detach() != 0
    assert torch.equal(x.grad, kept.float() * 2)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_the_edges_and_evaluation_are_nn_dropout_s(p):
    x = torch.randn(4, 8)
    assert torch.equal(Dropout(p).train()(x), nn.Dropout(p).train()(x))
    assert torch.equal(Dropout(0.3).eval()(x), x)


def test_every_dropout_of_an_encoder_is_replaced_and_inference_is_unchanged(tiny_encoder):
    encoder = encoders.load_encoder(str(tiny_encoder)).eval()
    ids = torch.randint(5, 40, (2, 9))
    with torch.no_grad():
        before = encoder(input_ids=ids).last_hidden_state
    count = sum(type(m) is nn.Dropout for m in encoder.modules())
    assert count > 0 and use_fast_dropout(encoder) == count
    assert not any(type(m) is nn.Dropout for m in encoder.modules())
    with torch.no_grad():
        assert torch.equal(encoder(input_ids=ids).last_hidden_state, before)
    assert all(not m.training for m in encoder.modules())
