"""Autoregressive decoding of a gpt (OmniJet-α) backbone: KV cache vs recomputing the prefix.

    python benchmarks/sampling_speed.py [--rounds 5] [--threads 2] [--jets 256] [--length 64]
                                        [--sizes demo,paper] [--device cpu|cuda]

Two sizes: "demo" (the `omnijet` backbone and `vqvae-omnijet` codebook of config.yaml) and
"paper" (3 blocks × 256, 8 heads, ff_mult 4, 8192 codes, as in config/paper.yaml), randomly
initialised. Each decodes `--length` tokens for `--jets` jets after `<start>`, feeding back
the most probable token, in two ways:

* cached: one pass over `<start>`, then one single-position pass per token with each
  block's keys and values kept (``Transformer.new_caches``), as ``sample_codes`` does;
* recompute: at every step the whole sequence so far through the causal transformer.

Both must give the same tokens (checked every round; the logits agree to float noise).
Interleaved rounds, the order flipping every round; rates are medians over rounds, the
ratio the median of per-round ratios. Prints JSON on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from jetfm.config import backbone_recipe, load_config
from jetfm.models.next_token import NextTokenModel
from jetfm.models.token_encoder import TokenJetEncoder
from jetfm.training import autocast

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"encoder": {"dim": 256, "layers": 3, "heads": 8, "ff_mult": 4.0}, "codebook_size": 8192}


def _model(size: str) -> NextTokenModel:
    cfg = load_config(ROOT / "config.yaml")
    tok = cfg["tokenizers"]["vqvae-omnijet"]
    tokenizer = {k: tok[k] for k in ("codebook_size", "latent_dim", "dim", "layers", "heads", "features")}
    if size == "demo":
        encoder = backbone_recipe(cfg["backbones"]["omnijet"])["encoder"]
    else:
        encoder, tokenizer["codebook_size"] = PAPER["encoder"], PAPER["codebook_size"]
    torch.manual_seed(0)
    # LayerScale 0.5 instead of a near-zero init: random blocks that actually change the states
    encoder = {**encoder, "layerscale_init": 0.5}
    return NextTokenModel(TokenJetEncoder(**encoder, tokenizer=tokenizer)).eval()


@torch.no_grad()
def decode_cached(model: NextTokenModel, jets: int, length: int, device: torch.device) -> torch.Tensor:
    enc = model.encoder
    caches = enc.transformer.new_caches(1 + length)
    with autocast(device):
        logits = model.logits(enc.prefix(jets, device), caches)[:, -1]
    out = []
    for t in range(length):
        token = logits[:, : enc.n_codes].argmax(dim=1)  # codes only: every jet runs to full length
        out.append(token)
        if t < length - 1:
            with autocast(device):
                logits = model.logits(token[:, None], caches)[:, -1]
    return torch.stack(out, dim=1)


@torch.no_grad()
def decode_recompute(model: NextTokenModel, jets: int, length: int, device: torch.device) -> torch.Tensor:
    ids = model.encoder.prefix(jets, device)
    for _ in range(length):
        with autocast(device):
            logits = model.logits(ids)[:, -1]
        ids = torch.cat([ids, logits[:, : model.encoder.n_codes].argmax(dim=1, keepdim=True)], dim=1)
    return ids[:, 1:]


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def measure(size: str, jets: int, length: int, rounds: int, device: torch.device) -> dict[str, Any]:
    model = _model(size).to(device)
    ways = {"cached": decode_cached, "recompute": decode_recompute}
    for fn in ways.values():  # warm-up
        fn(model, min(jets, 8), min(length, 4), device)
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(rounds):
        outputs = {}
        for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            s, outputs[name] = _timed(lambda fn=ways[name]: fn(model, jets, length, device), device)
            seconds[name].append(s)
        agree = float((outputs["cached"] == outputs["recompute"]).float().mean())
        if agree < 0.99:  # argmax ties aside, both must pick the same tokens
            raise RuntimeError(f"cached and recomputed decoding disagree on {1 - agree:.1%} of the tokens")
    tokens = jets * length
    return {
        "size": size, "jets": jets, "length": length, "rounds": rounds,
        "parameters": sum(p.numel() for n, p in model.named_parameters()
                          if not n.startswith("encoder.tokenizer")),
        "tokens_per_s": {k: round(tokens / statistics.median(v), 1) for k, v in seconds.items()},
        "speedup_cached_over_recompute": round(statistics.median(
            b / a for a, b in zip(seconds["cached"], seconds["recompute"], strict=True)), 2),
        "per_round_speedup": [round(b / a, 2) for a, b in zip(seconds["cached"], seconds["recompute"],
                                                               strict=True)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jets", type=int, default=256)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--sizes", default="demo,paper")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = [measure(size, args.jets, args.length, args.rounds, device) for size in args.sizes.split(",")]
    for r in results:
        print(f"{r['size']:>5}: {r['jets']} jets × {r['length']} tokens, "
              f"cached {r['tokens_per_s']['cached']:.0f} tok/s, "
              f"recompute {r['tokens_per_s']['recompute']:.0f} tok/s, "
              f"speed-up {r['speedup_cached_over_recompute']}× {r['per_round_speedup']}", file=sys.stderr)
    print(json.dumps({"device": str(device), "threads": args.threads, "torch": torch.__version__,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
