"""Pre-norm transformer with SwiGLU feed-forward, LayerScale and fused attention.

The same blocks serve the permutation-equivariant set encoders (a key-padding mask) and
the causal sequence model of generative pre-training (``causal=True``, with a
:class:`KVCache` per block for incremental decoding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class KVCache:
    """Keys and values of the positions decoded so far, for one attention layer.

    Allocated for ``max_length`` positions at the first append (with the keys' dtype, which
    autocast decides), so that each decoding step writes one slice instead of
    re-concatenating the whole history.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.length = 0
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, H, n, dh] after the cached positions; return all keys and values so far."""
        if self.k is None or self.v is None:
            b, h, _, dh = k.shape
            self.k = k.new_zeros(b, h, self.max_length, dh)
            self.v = v.new_zeros(b, h, self.max_length, dh)
        end = self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"KV cache holds {self.max_length} positions, {end} requested")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide dim {dim}")
        self.heads = heads
        # no key bias: it adds the same q·b to every key of a query, which the softmax cancels,
        # so its gradient is zero up to rounding, which Adam would amplify into a random walk
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.out = nn.Linear(dim, dim)
        self._register_load_state_dict_pre_hook(_split_qkv_bias)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, causal: bool = False,
                cache: KVCache | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``key_mask`` [B, N] (True = attend) for sets; ``causal``: position i sees positions ≤ i.

        ``bias`` [B, H, N, N] is added to the attention logits (a pairwise interaction bias;
        sets only); padded keys are masked on top of it.

        A causal sequence padded at the end needs no key mask: no real position sees a
        later (padded) one, and the fused kernels apply the causal mask without a tensor.
        With ``cache`` the new positions follow the cached ones.
        """
        b, n, d = x.shape
        bias_qkv = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias_qkv)
        q, k, v = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        start = 0
        if cache is not None:
            start = cache.length
            k, v = cache.append(k, v)
        if causal and key_mask is not None:
            raise ValueError("causal attention takes no key mask (pad sequences at the end)")
        if bias is not None:
            if causal:
                raise ValueError("a pairwise attention bias is for sets, not causal sequences")
            attn_mask = bias.to(q.dtype)
            if key_mask is not None:
                attn_mask = attn_mask.masked_fill(~key_mask[:, None, None, :], float("-inf"))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        elif not causal or n == 1:
            # key_mask [B, N] broadcasts over heads and queries; one new causal query sees every key.
            attn_mask = None if key_mask is None else key_mask[:, None, None, :]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        elif start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # several new positions after cached ones: query i sees keys ≤ start + i
            rows = torch.arange(n, device=x.device)[:, None] + start
            attn_mask = rows >= torch.arange(start + n, device=x.device)[None, :]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


def _split_qkv_bias(state: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
    """Read a state saved with one (q, k, v) bias: the query and value parts are kept, the key
    part, which changes no output, is dropped."""
    fused = state.pop(f"{prefix}qkv.bias", None)
    if fused is not None:
        q, _, v = fused.chunk(3)
        state[f"{prefix}q_bias"], state[f"{prefix}v_bias"] = q, v


class TransformerBlock(nn.Module):
    """x + LS(Attn(LN(x))), then x + LS(SwiGLU(LN(x)))."""

    def __init__(self, dim: int, heads: int, ff_mult: float = 2.0, layerscale_init: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = SwiGLU(dim, max(1, round(dim * ff_mult)))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), key_mask, causal, cache, bias))
        return x + self.ls2(self.ff(self.norm2(x)))


class Transformer(nn.Module):
    """A stack of pre-norm blocks with a final LayerNorm."""

    def __init__(self, dim: int, layers: int, heads: int, ff_mult: float = 2.0,
                 layerscale_init: float = 1e-5) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, ff_mult, layerscale_init) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None, causal: bool = False,
                caches: list[KVCache] | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``bias`` [B, H, N, N]: one pairwise attention bias shared by every block (as ParT's)."""
        for i, block in enumerate(self.blocks):
            x = block(x, key_mask, causal, None if caches is None else caches[i], bias)
        return self.norm(x)

    def new_caches(self, max_length: int) -> list[KVCache]:
        """One empty :class:`KVCache` per block for decoding up to ``max_length`` positions."""
        return [KVCache(max_length) for _ in self.blocks]
