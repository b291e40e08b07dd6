"""``nn.MultiheadAttention`` with its four projections as separate layers, so that each can
be tiled: PyTorch packs the query, key and value weights into one ``in_proj_weight``, which
is no layer ``tile_model`` can replace. :func:`tbn.tile_model` swaps each convertible
``nn.MultiheadAttention`` for a :class:`SplitAttention` (the same arithmetic) before it plans.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SplitAttention(nn.Module):
    """Multi-head self- or cross-attention over ``(batch, tokens, features)`` inputs, as
    ``nn.MultiheadAttention(batch_first=True)`` computes it without a mask: ``q_proj``,
    ``k_proj``, ``v_proj`` and ``out_proj`` are plain (or tiled) linear layers. Called like
    ``nn.MultiheadAttention``, it returns ``(output, None)``."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(embed_dim, embed_dim, bias=bias)
                                                               for _ in range(4))

    @staticmethod
    def convertible(m: nn.MultiheadAttention) -> bool:
        """Whether ``m`` is attention this module computes exactly (batch first, one width for
        query, key and value, no extra key/value bias, no zero attention)."""
        return m.batch_first and m._qkv_same_embed_dim and m.bias_k is None and not m.add_zero_attn

    @classmethod
    def from_float(cls, m: nn.MultiheadAttention) -> SplitAttention:
        """The same attention, ``m``'s weights copied into four linear layers."""
        if not cls.convertible(m):
            raise ValueError("SplitAttention takes batch_first attention with one width for query, key and "
                             "value, without add_bias_kv or add_zero_attn")
        new = cls(m.embed_dim, m.num_heads, bias=m.in_proj_bias is not None)
        e = m.embed_dim
        with torch.no_grad():
            for i, lin in enumerate((new.q_proj, new.k_proj, new.v_proj)):
                lin.weight.copy_(m.in_proj_weight[i * e:(i + 1) * e])
                if m.in_proj_bias is not None:
                    lin.bias.copy_(m.in_proj_bias[i * e:(i + 1) * e])
            new.out_proj.weight.copy_(m.out_proj.weight)
            if m.out_proj.bias is not None:
                new.out_proj.bias.copy_(m.out_proj.bias)
        return new.train(m.training)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, E) -> (N, heads, T, d)
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``nn.MultiheadAttention``'s call: (output, the attention weights or None)."""
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise ValueError("SplitAttention attends over every token: no mask, no is_causal")
        q, k, v = (self._heads(proj(x)) for proj, x in ((self.q_proj, query), (self.k_proj, key),
                                                        (self.v_proj, value)))
        weights = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        mixed = (weights @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], self.embed_dim)
        seen = (weights.mean(dim=1) if average_attn_weights else weights) if need_weights else None
        return self.out_proj(mixed), seen


def split_attention(model: nn.Module) -> list[str]:
    """Replace each convertible ``nn.MultiheadAttention`` inside ``model`` by a
    :class:`SplitAttention` in place; the names replaced."""
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.MultiheadAttention) and SplitAttention.convertible(m) and name]
    for name, m in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, SplitAttention.from_float(m))
    return [name for name, _ in found]
