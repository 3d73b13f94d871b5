"""Generative pre-training heads of MPMv2: conditional flow (CNF), conditional flow-matching (CFM)
and the set-to-set flow-matching decoder (SSFM).

CNF and CFM model p(x_i | d_i) for each dropped constituent given the MPM decoder output d_i;
the SSFM decoder generates the whole dropped set given the encoder's latent set. Flow-matching
uses the linear path x_t = (1 − t) x + t z with z ~ N(0, 1), target velocity z − x, and
logit-normal t; sampling integrates dx/dt = v from t = 1 to t = 0 with Euler steps.
"""

from __future__ import annotations

import itertools
import math

import normflows as nf
import torch
import torch.nn.functional as F
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from normflows.utils.masks import create_alternating_binary_mask
from normflows.utils.splines import DEFAULT_MIN_DERIVATIVE
from torch import Tensor, nn

from jetfm.models.transformer import SwiGLU

__all__ = ["ConditionalFlowHead", "FlowMatchingHead", "SetFlowMatchingDecoder", "cosine_time_embedding"]


def cosine_time_embedding(t: Tensor, dim: int) -> Tensor:
    """[..., dim] embedding cos(π k t), k = 1..dim, of t ∈ [0, 1] (shape [...]).

    A cosine basis of [0, 1]: smooth, bounded and complete on the interval t lives on.
    """
    k = torch.arange(1, dim + 1, device=t.device, dtype=torch.float32)
    return torch.cos(math.pi * t.float()[..., None] * k)


def _logit_normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.sigmoid(torch.randn(shape, generator=generator, device=like.device, dtype=torch.float32))


def _zero_loss(module: nn.Module, *inputs: Tensor) -> Tensor:
    """A scalar 0 connected to the head's parameters and the inputs, so backward() and DDP work."""
    terms = [p.float().sum() for p in module.parameters()] + [x.float().sum() for x in inputs]
    return torch.stack(terms).sum() * 0.0


class _Conditioner(nn.Module):
    """MLP on [x_identity, context] giving the spline parameters (the context enters by concatenation)."""

    def __init__(self, in_features: int, out_features: int, context_dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden_features = hidden  # normflows scales the bin logits by 1/sqrt(hidden_features)
        self.net = nn.Sequential(
            nn.Linear(in_features + context_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, out_features))

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> Tensor:
        if context is None:
            raise ValueError("the conditioner needs a context")
        return self.net(torch.cat([inputs, context], dim=-1))


class _SplineCoupling(nf.flows.Flow):
    """Rational-quadratic spline coupling on alternating halves; forward maps base → data."""

    def __init__(self, n_features: int, context_dim: int, hidden: int, bins: int, tail_bound: float,
                 reverse: bool) -> None:
        super().__init__()
        self.coupling = PiecewiseRationalQuadraticCoupling(
            mask=create_alternating_binary_mask(n_features, even=reverse),
            transform_net_create_fn=lambda i, o: _Conditioner(i, o, context_dim, hidden),
            num_bins=bins, tails="linear", tail_bound=tail_bound)
        # Identity at initialisation: uniform bins and unit knot derivatives for every context.
        last = self.coupling.transform_net.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            bias = last.bias.view(-1, 3 * bins - 1)
            bias.zero_()
            bias[:, 2 * bins:] = math.log(math.expm1(1 - DEFAULT_MIN_DERIVATIVE))

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, log_det = self.coupling.inverse(z, context)
        return x, log_det.view(-1)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, log_det = self.coupling(x, context)
        return z, log_det.view(-1)


class ConditionalFlowHead(nn.Module):
    """Task "cnf": conditional normalising flow p(x | context), trained by maximum likelihood.

    ``blocks`` spline coupling layers with alternating masks, each conditioned by an MLP with two
    hidden layers of ``hidden`` units; fixed standard-normal base. Spline math runs in float32.
    """

    def __init__(self, n_features: int, context_dim: int, blocks: int = 6, hidden: int = 128,
                 bins: int = 8, tail_bound: float = 4.0) -> None:
        super().__init__()
        if n_features < 2:
            raise ValueError("a coupling flow needs at least two features")
        self.n_features = n_features
        flows = [_SplineCoupling(n_features, context_dim, hidden, bins, tail_bound, reverse=bool(i % 2))
                 for i in range(blocks)]
        self.flow = nf.ConditionalNormalizingFlow(nf.distributions.DiagGaussian(n_features, trainable=False),
                                                  flows)

    def log_prob(self, x: Tensor, context: Tensor) -> Tensor:
        """[M] log-density of x [M, F] given context [M, C], in float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.flow.log_prob(x.float(), context=context.float())

    def loss(self, x: Tensor, context: Tensor) -> Tensor:
        if x.shape[0] == 0:
            return x.new_zeros(()) + _zero_loss(self, context)
        return -self.log_prob(x, context).mean()

    @torch.no_grad()
    def sample(self, context: Tensor, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(context.shape[0], self.n_features, generator=generator, device=context.device)
        if context.shape[0] == 0:
            return z
        with torch.autocast(device_type=context.device.type, enabled=False):
            return self.flow(z, context=context.float())


class FlowMatchingHead(nn.Module):
    """Task "cfm": per-constituent conditional flow-matching.

    v(x_t, context, t) is an MLP with ``layers`` hidden layers of ``hidden`` SiLU units on
    [x_t, context, cos-embedding(t)].
    """

    def __init__(self, n_features: int, context_dim: int, hidden: int = 256, layers: int = 3,
                 time_dim: int = 16) -> None:
        super().__init__()
        self.n_features = n_features
        self.time_dim = time_dim
        widths = [n_features + context_dim + time_dim] + [hidden] * layers
        modules: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            modules += [nn.Linear(a, b), nn.SiLU()]
        modules.append(nn.Linear(widths[-1], n_features))
        self.net = nn.Sequential(*modules)

    def velocity(self, x_t: Tensor, context: Tensor, t: Tensor) -> Tensor:
        """v [M, F] at x_t [M, F], context [M, C], t [M]."""
        emb = cosine_time_embedding(t, self.time_dim)
        return self.net(torch.cat([x_t.float(), context.float(), emb], dim=-1))

    def loss(self, x: Tensor, context: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.shape[0] == 0:
            return x.new_zeros(()) + _zero_loss(self, context)
        x = x.float()
        t = _logit_normal((x.shape[0],), x, generator)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        x_t = x + t[:, None] * (z - x)
        return F.mse_loss(self.velocity(x_t, context, t).float(), z - x)

    @torch.no_grad()
    def sample(self, context: Tensor, steps: int = 32, generator: torch.Generator | None = None) -> Tensor:
        x = torch.randn(context.shape[0], self.n_features, generator=generator, device=context.device)
        for k in range(steps):
            t = x.new_full((x.shape[0],), 1.0 - k / steps)
            x = x - self.velocity(x, context, t).float() / steps
        return x


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


def _key_mask(mask: Tensor) -> Tensor:
    """[B, 1, 1, N] SDPA mask (True = attend); a row with no valid key attends to all so SDPA stays finite."""
    mask = mask | ~mask.any(dim=1, keepdim=True)
    return mask[:, None, None, :]


class _Attention(nn.Module):
    """Multi-head attention of queries x [B, T, D] on keys/values y [B, L, D] (y = x: self-attention)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide dim {dim}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, y: Tensor, attn_mask: Tensor) -> Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(y).view(b, y.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(out.transpose(1, 2).reshape(b, n, d))


class _DiTBlock(nn.Module):
    """Pre-norm self-attention, cross-attention and SwiGLU, each with adaLN-Zero time modulation."""

    def __init__(self, dim: int, heads: int, ff_mult: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.self_attn = _Attention(dim, heads)
        self.cross_attn = _Attention(dim, heads)
        self.ff = SwiGLU(dim, max(1, round(dim * ff_mult)))
        # (shift, scale, gate) per sub-layer; zero so that the block starts as the identity.
        self.ada = nn.Linear(dim, 9 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, cond: Tensor, latent: Tensor, self_mask: Tensor,
                cross_mask: Tensor) -> Tensor:
        mod = self.ada(F.silu(cond)).chunk(9, dim=-1)
        h = _modulate(self.norm(x), mod[0], mod[1])
        x = x + mod[2][:, None] * self.self_attn(h, h, self_mask)
        h = _modulate(self.norm(x), mod[3], mod[4])
        x = x + mod[5][:, None] * self.cross_attn(h, latent, cross_mask)
        h = _modulate(self.norm(x), mod[6], mod[7])
        return x + mod[8][:, None] * self.ff(h)


class SetFlowMatchingDecoder(nn.Module):
    """Task "ssfm": time-dependent transformer decoder generating the dropped set from the latent set.

    Self-attention over the noised dropped constituents, cross-attention to the linearly projected
    encoder outputs, DiT-style adaLN-Zero time injection; no positional encoding and no mask
    tokens, so the predicted velocity is permutation equivariant in the target set and invariant
    to the order of the latent set.
    """

    def __init__(self, n_features: int, latent_dim: int, dim: int = 256, layers: int = 4, heads: int = 8,
                 ff_mult: float = 2.0, time_dim: int = 64) -> None:
        super().__init__()
        self.n_features = n_features
        self.time_dim = time_dim
        self.embed = nn.Linear(n_features, dim)
        self.latent_proj = nn.Linear(latent_dim, dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(_DiTBlock(dim, heads, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_ada = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, n_features)
        for layer in (self.final_ada, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def velocity(self, x_t: Tensor, t: Tensor, target_mask: Tensor, latent: Tensor,
                 latent_mask: Tensor) -> Tensor:
        """v [B, T, F] at x_t [B, T, F] and per-jet time t [B]; zeros on padding."""
        valid = target_mask[..., None]
        # Zeroing padded inputs keeps garbage (even NaN) out of the masked attention products.
        x = self.embed(torch.where(valid, x_t, 0.0))
        latent = latent.to(self.latent_proj.weight.dtype)
        mem = self.latent_proj(torch.where(latent_mask[..., None], latent, 0.0))
        cond = self.time_mlp(cosine_time_embedding(t, self.time_dim))
        self_mask, cross_mask = _key_mask(target_mask), _key_mask(latent_mask)
        for block in self.blocks:
            x = block(x, cond, mem, self_mask, cross_mask)
        shift, scale = self.final_ada(F.silu(cond)).chunk(2, dim=-1)
        v = self.out(_modulate(self.norm(x), shift, scale))
        return torch.where(valid, v, 0.0)

    def loss(self, target: Tensor, target_mask: Tensor, latent: Tensor, latent_mask: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        if target.shape[0] * target.shape[1] == 0:
            return target.new_zeros(()) + _zero_loss(self, latent)
        x = torch.where(target_mask[..., None], target.float(), 0.0)
        t = _logit_normal((x.shape[0],), x, generator)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        x_t = x + t[:, None, None] * (z - x)
        v = self.velocity(x_t, t, target_mask, latent, latent_mask).float()
        err = torch.where(target_mask[..., None], (v - (z - x)).square(), 0.0)
        # Mean over valid constituents and features; clamp keeps an all-padding batch at 0 without a sync.
        count = target_mask.sum() * self.n_features
        return err.sum() / count.clamp(min=1)

    @torch.no_grad()
    def sample(self, target_mask: Tensor, latent: Tensor, latent_mask: Tensor, steps: int = 32,
               generator: torch.Generator | None = None) -> Tensor:
        b, n = target_mask.shape
        x = torch.randn(b, n, self.n_features, generator=generator, device=latent.device)
        x = torch.where(target_mask[..., None], x, 0.0)
        if b * n == 0:
            return x
        for k in range(steps):
            t = x.new_full((b,), 1.0 - k / steps)
            x = x - self.velocity(x, t, target_mask, latent, latent_mask).float() / steps
        return x
