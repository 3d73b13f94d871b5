"""The field's supervised reference: weaver-core's Particle Transformer (ParT) on jetfm's jets.

The network is weaver-core's own ``ParticleTransformer`` (particle embedding, pairwise
interaction embedding added to every block's attention, class-attention blocks); jetfm only
builds its inputs from a batch of padded jets, as the JetClass paper does:

* 17 particle features: log pT, log E, log pT/pT_jet, log E/E_jet, ΔR, charge, the five
  particle-type flags (charged hadron, neutral hadron, photon, electron, muon), tanh(d0),
  σ(d0), tanh(z0), σ(z0), Δη, Δφ, standardised with the JetClass recipe's constants;
* four-vectors (px, py, pz, E) of massless constituents, from which weaver computes the
  pairwise features ln Δ, ln kT, ln z, ln m².

It answers like :class:`jetfm.models.JetEncoder` — (tokens [B, 0, D], registers [B, 1, D])
— with the class token after ParT's class-attention blocks as its one register, so that the
downstream loop, its validation and its scoring treat it like every backbone; its head is
ParT's final linear layer (:class:`jetfm.downstream.heads.LinearJetHead`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jetfm.data.features import physical_constituents
from jetfm.models.interactions import scaled_delta_r, scaled_log_fraction

PART_FEATURES = ("log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r", "charge", "is_charged_hadron",
                 "is_neutral_hadron", "is_photon", "is_electron", "is_muon", "tanh_d0", "d0_err", "tanh_z0",
                 "z0_err", "deta", "dphi")
# jetfm's 8-class pid (0 γ, 1 h−, 2 h0, 3 h+, 4 e−, 5 e+, 6 μ−, 7 μ+) → charge and type flags
_CHARGE = (0.0, -1.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0)
_TYPE = ((1, 3), (2,), (0,), (4, 5), (6, 7))  # charged hadron, neutral hadron, photon, electron, muon


def part_inputs(features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor, jet: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ParT's particle features x [B, 17, N], four-vectors v [B, 4, N] and mask [B, 1, N].

    ``features`` are jetfm's model features [B, N, 7], ``pid`` [B, N], ``mask`` [B, N] and
    ``jet`` [B, 4] = (pT, η, φ, m). Padding is zero in x and v, as weaver expects.
    """
    c = physical_constituents(features)
    pt, deta, dphi = c["pt"], c["deta"], c["dphi"]
    jet = jet.float()
    jet_pt, jet_eta, jet_m = jet[:, 0:1], jet[:, 1:2], jet[:, 3:4]
    eta = jet_eta + deta
    energy = pt * torch.cosh(eta)
    jet_energy = torch.sqrt(jet_m**2 + (jet_pt * torch.cosh(jet_eta)) ** 2)
    charge = pid.new_tensor(_CHARGE, dtype=torch.float32)[pid]
    flags = [sum((pid == k).float() for k in kinds) for kinds in _TYPE]
    columns = [
        (torch.log(pt) - 1.7) * 0.7,
        (torch.log(energy) - 2.0) * 0.7,
        scaled_log_fraction(pt / jet_pt),
        scaled_log_fraction(energy / jet_energy),
        scaled_delta_r(deta, dphi),
        charge, *flags,
        torch.tanh(c["d0"]), c["d0_err"].clamp(0.0, 1.0),
        torch.tanh(c["z0"]), c["z0_err"].clamp(0.0, 1.0),
        deta, dphi,
    ]
    keep = mask[:, None, :].float()
    x = torch.stack(columns, dim=1) * keep
    # the jet axis as φ = 0: pairwise features depend on φ differences only
    v = torch.stack([pt * torch.cos(dphi), pt * torch.sin(dphi), pt * torch.sinh(eta), energy], dim=1) * keep
    return x, v, keep


class ParTBackbone(nn.Module):
    """weaver-core's ParticleTransformer up to its class token: forward(features, pid, mask, jet) →
    (tokens [B, 0, D], registers [B, 1, D])."""

    needs_jet = True

    def __init__(self, embed_dims: list[int], pair_embed_dims: list[int], num_heads: int, num_layers: int,
                 num_cls_layers: int = 2, dropout: float = 0.1, trim: bool = True) -> None:
        super().__init__()
        from weaver.nn.model.ParticleTransformer import ParticleTransformer

        self.config: dict[str, Any] = {
            "kind": "part", "embed_dims": list(embed_dims), "pair_embed_dims": list(pair_embed_dims),
            "num_heads": num_heads, "num_layers": num_layers, "num_cls_layers": num_cls_layers,
            "dropout": dropout, "trim": trim,
        }
        if num_cls_layers < 1:
            raise ValueError("ParT needs at least one class-attention layer (num_cls_layers)")
        self.dim = embed_dims[-1]
        block = {"dropout": dropout, "attn_dropout": dropout, "activation_dropout": dropout}
        # num_classes and fc_params None: weaver returns the normalised class token; the linear
        # classifier is the downstream head
        self.part = ParticleTransformer(
            input_dim=len(PART_FEATURES), num_classes=None, fc_params=None, embed_dims=list(embed_dims),
            pair_embed_dims=list(pair_embed_dims), num_heads=num_heads, num_layers=num_layers,
            num_cls_layers=num_cls_layers, block_params=block, trim=trim)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ParTBackbone:
        return cls(**{k: v for k, v in config.items() if k != "kind"})

    @property
    def n_registers(self) -> int:
        return 1

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor,
                jet: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if jet is None:
            raise ValueError("ParT needs the jets' kinematics (PaddedJets.jet)")
        x, v, m = part_inputs(features, pid, mask, jet)
        cls = self.part(x, v=v, mask=m)
        return cls.new_zeros(cls.shape[0], 0, self.dim), cls[:, None]
