"""Jet-relative inputs and pairwise interaction features of constituents, for the encoder.

Both are computed from the model features of the constituents the encoder sees (``visible``:
real and not masked for pre-training), so that nothing about a hidden constituent leaks
into them.

* relative inputs (per constituent): log(pT / Σ pT) with the sum over the visible
  constituents, and ΔR to the jet axis;
* pairwise features (per pair, the four of the Particle Transformer for massless
  constituents): ln Δ, ln kT = ln(min(pT_i, pT_j) Δ), ln z = ln(min(pT_i, pT_j) / (pT_i + pT_j)),
  ln m² = ln(2 pT_i pT_j (cosh Δη − cos Δφ)), with Δ = √(Δη² + Δφ²).
"""

from __future__ import annotations

import torch
from torch import nn

from jetfm.data.features import physical_constituents

N_RELATIVE = 2
N_PAIR = 4
_EPS = 1e-8


def scaled_log_fraction(fraction: torch.Tensor) -> torch.Tensor:
    """(log x + 4.7) × 0.7: the JetClass recipe's standardisation of log pT/pT_jet and log E/E_jet."""
    return (torch.log(fraction) + 4.7) * 0.7


def scaled_delta_r(deta: torch.Tensor, dphi: torch.Tensor) -> torch.Tensor:
    """(ΔR − 0.2) × 4: the JetClass recipe's standardisation of ΔR to the jet axis."""
    return (torch.hypot(deta, dphi) - 0.2) * 4.0


def relative_inputs(features: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """[B, N, 2]: (log pT/ΣpT + 4.7) × 0.7 and (ΔR − 0.2) × 4, zero where not visible."""
    c = physical_constituents(features)
    pt = c["pt"] * visible
    total = pt.sum(dim=1, keepdim=True).clamp(min=_EPS)
    columns = [scaled_log_fraction((pt / total).clamp(min=_EPS)), scaled_delta_r(c["deta"], c["dphi"])]
    return (torch.stack(columns, dim=-1) * visible[..., None]).to(features.dtype)


def pair_features(features: torch.Tensor) -> torch.Tensor:
    """[B, N, N, 4]: ln Δ, ln kT, ln z, ln m² of every pair, each divided by 4 (order one)."""
    c = physical_constituents(features)
    pt, eta, phi = c["pt"], c["deta"], c["dphi"]
    d_eta = eta[:, :, None] - eta[:, None, :]
    d_phi = phi[:, :, None] - phi[:, None, :]
    delta = torch.sqrt(d_eta**2 + d_phi**2)
    pt_min = torch.minimum(pt[:, :, None], pt[:, None, :])
    pt_sum = pt[:, :, None] + pt[:, None, :]
    m2 = 2.0 * pt[:, :, None] * pt[:, None, :] * (torch.cosh(d_eta) - torch.cos(d_phi))
    z = pt_min / pt_sum.clamp(min=_EPS)
    logs = [torch.log(v.clamp(min=_EPS)) for v in (delta, pt_min * delta, z, m2)]
    return (torch.stack(logs, dim=-1) / 4.0).to(features.dtype)


class PairBias(nn.Module):
    """Pairwise features → a small MLP → one attention bias per head [B, H, N, N]; zero for every
    pair with a constituent that is not visible."""

    def __init__(self, heads: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_PAIR, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, heads))

    def forward(self, features: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        bias = self.net(pair_features(features)).permute(0, 3, 1, 2)
        both = visible[:, None, :, None] & visible[:, None, None, :]
        return bias * both
