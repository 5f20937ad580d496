"""Dropout that trains faster on a CPU: the mask drawn as 16 random bits an element, four to one
64-bit draw of PyTorch's generator, instead of one ``bernoulli_`` draw an element.

On a 2-core Xeon with AMX, ``F.dropout`` of a bf16 (16, 320, 384) tensor took 12.5 ms, almost all of
it ``bernoulli_``; this one 2.5 ms forward (1.45 ms of it the random draw) and 0.4 ms backward. With
MiniLM's 13 dropouts a training step is 1.11x as fast, 1.17x beside imdb-cli's attention
(``bench/train_step.py``, docs/benchmarks/train-speed.md).
Each element is kept with probability ``1 - round(p * 65536) / 65536`` (``p`` within 1/65536) and
scaled by ``1 / (1 - p)``, as ``nn.Dropout`` does; the draws come from the same seeded generator, so a
run repeats itself, but not ``nn.Dropout``'s masks. In evaluation mode and on a GPU it is
``nn.Dropout``. The mask is a tensor of zeros and ones in the input's dtype, built from the random bits
with integer arithmetic (a comparison's boolean mask made every later step a slow mixed-dtype one),
applied in the forward and the backward pass with one ``addcmul`` each.
"""

from __future__ import annotations

import torch
from torch import nn


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
        low = min(max(round(p * 65536) - 32768, -32767), 32767)  # kept: the 16 bits, signed, are at least this
        keep = bits.view(torch.int16)[:n].view(x.shape).clamp_(low - 1, low).sub_(low - 1).to(x.dtype)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return _masked(x, keep, ctx.scale)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return _masked(grad, keep, ctx.scale), None


def _masked(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """``x * scale`` where ``keep`` is 1, +0 where it is 0 (NaN for a non-finite ``x``, as ``nn.Dropout``):
    ``torch.where(keep, x * scale, 0)`` to the bit for finite ``x``, in one kernel over tensors of one
    dtype (``where`` with a boolean mask took 4x as long)."""
    return torch.addcmul(keep.new_zeros(()), x, keep, value=scale)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster mask where it trains on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and 0 < self.p < 1 and x.device.type == "cpu" and not self.inplace:
            return _Dropout.apply(x, self.p)
        return super().forward(x)


def use_fast_dropout(module: nn.Module) -> int:
    """Replace every ``nn.Dropout`` inside ``module`` by :class:`Dropout`, in place (no weights
    change); how many were replaced."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                fast = Dropout(child.p, child.inplace)
                fast.train(child.training)
                setattr(parent, name, fast)
                replaced += 1
    return replaced
