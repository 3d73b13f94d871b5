"""Training throughput of the jet encoder beside a plain nn.TransformerEncoder, and FLOP/s vs matmul peak.

    python benchmarks/training_speed.py [--sample btag|boosted|full] [--rounds 5] [--threads 2]
                                        [--device cpu|cuda] [--sizes demo,paper] [--compile]

Two sizes: "demo" (the encoder of `--backbone` in config.yaml) and "paper" (8 layers × 512,
8 heads, 8 registers, ff_mult 2). For each, one batch of synthetic jets (constituent counts
drawn like the btag sample, 1–15 with mean ≈ 6, or like JetClass, up to 128 with mean ≈ 50, or
128 for every jet with `--sample full`),
padded to the batch maximum with a key-padding mask, is trained on by

* jetfm: JetEncoder (pre-norm, SwiGLU, LayerScale, registers, fused attention);
* compiled (with --compile): the jetfm encoder with its transformer stack under torch.compile,
  as config key `compile` trains it (dynamic shapes; compiled in the untimed warm-up steps);
* plain: the same embedding and registers in front of nn.TransformerEncoder (pre-norm,
  GELU, dropout 0) with a final LayerNorm. SwiGLU with hidden h has 3·dim·h weights, so the
  plain feed-forward width is 1.5·h: both models have the same matmul FLOPs per token.

A step is forward + backward + AdamW; the loss is the mean square of the outputs. FLOPs per
step (forward + backward) come from FlopCounterMode, outside the timing. Interleaved rounds:
in each, single steps of the two models alternate (the order flips every time), and on the
CPU each pair is followed by fp32 torch.mm of square matrices (1024² and 2048², the better
is the peak) and of the model's own [tokens, dim] × [dim, 3·dim] shape; a round's value of
each is the median of its measurements. Rates are medians over rounds, ratios medians of
per-round ratios. On CUDA the steps run under bf16 autocast and MFU is taken against
--peak-tflops instead. Prints JSON on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from jetfm.config import load_config
from jetfm.contract import CONTINUOUS_FEATURES, N_PID_CLASSES
from jetfm.models import JetEncoder
from jetfm.training import compile_transformers

PAPER = {"dim": 512, "layers": 8, "heads": 8, "registers": 8, "ff_mult": 2.0}
ROOT = Path(__file__).resolve().parents[1]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

_aten = torch.ops.aten


# FlopCounterMode has no formula for the CPU flash-attention kernel; count it like the CUDA ones:
# QKᵀ and PV forward, four matmuls of that size backward.
def _cpu_sdpa_flop(query_shape: torch.Size, key_shape: torch.Size, value_shape: torch.Size,
                   *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    b, h, n, d = query_shape
    return 2 * b * h * n * key_shape[2] * (d + value_shape[3])


def _cpu_sdpa_backward_flop(grad_shape: torch.Size, query_shape: torch.Size, key_shape: torch.Size,
                            value_shape: torch.Size, *args: Any, out_shape: Any = None,
                            **kwargs: Any) -> int:
    return 2 * _cpu_sdpa_flop(query_shape, key_shape, value_shape)


CPU_SDPA_FLOPS = {_aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
                  _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flop}


class PlainEncoder(nn.Module):
    """JetEncoder's embedding and registers in front of torch.nn.TransformerEncoder."""

    def __init__(self, dim: int, layers: int, heads: int, registers: int, ff_mult: float) -> None:
        super().__init__()
        self.dim = dim
        self.dim_feedforward = plain_feedforward(dim, ff_mult)
        self.embed = nn.Sequential(nn.Linear(len(CONTINUOUS_FEATURES), dim), nn.SiLU(), nn.Linear(dim, dim))
        self.pid_embed = nn.Embedding(N_PID_CLASSES, dim)
        self.registers = nn.Parameter(torch.randn(registers, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=self.dim_feedforward,
                                           activation="gelu", batch_first=True, norm_first=True, dropout=0.0)
        self.transformer = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim),
                                                 enable_nested_tensor=False)

    def forward(self, features: torch.Tensor, pid: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, r = features.shape[0], self.registers.shape[0]
        x = self.embed(features) + self.pid_embed(pid)
        x = torch.cat([self.registers.expand(b, r, self.dim).to(x.dtype), x], dim=1)
        key_mask = torch.cat([mask.new_ones(b, r), mask], dim=1)
        y = self.transformer(x, src_key_padding_mask=~key_mask)  # True = padding here
        return y[:, r:], y[:, :r]


def plain_feedforward(dim: int, ff_mult: float) -> int:
    """Width of a GELU MLP with the weights (and FLOPs) of JetEncoder's SwiGLU."""
    return round(1.5 * max(1, round(dim * ff_mult)))


def draw_batch(sample: str, batch: int, seed: int, device: torch.device) -> Batch:
    rng = np.random.default_rng(seed)
    if sample == "btag":
        counts = np.clip(1 + rng.poisson(5.0, batch), 1, 15)
    elif sample == "full":  # every jet at the 128-constituent cap: no padding (the papers' timing case)
        counts = np.full(batch, 128)
    else:
        counts = np.clip(np.rint(rng.gamma(5.0, 10.0, batch)), 1, 128).astype(int)
    n = int(counts.max())
    mask = torch.arange(n)[None, :] < torch.from_numpy(counts)[:, None]
    features = torch.from_numpy(rng.standard_normal((batch, n, len(CONTINUOUS_FEATURES)), dtype=np.float32))
    pid = torch.from_numpy(rng.integers(0, N_PID_CLASSES, (batch, n)))
    features = features * mask[..., None]
    pid = pid * mask
    return features.to(device), pid.to(device), mask.to(device)


class Trainer:
    """One model, its AdamW and the step that is timed."""

    def __init__(self, model: nn.Module, batch: Batch, device: torch.device) -> None:
        self.model = model.to(device).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=1e-5)
        self.batch = batch
        self.device = device

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward_backward(self) -> None:
        with self.autocast():
            tokens, registers = self.model(*self.batch)
        loss = tokens.float().square().mean() + registers.float().square().mean()
        loss.backward()

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.forward_backward()
        self.opt.step()

    def flops(self) -> int:
        self.opt.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FLOPS) as counter:
            self.forward_backward()
        self.opt.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    def seconds_per_step(self) -> float:
        return timed(self.step, 1, self.device)


def timed(fn: Callable[[], Any], reps: int, device: torch.device) -> float:
    """Seconds per call of fn."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / reps


class Matmul:
    """fp32 FLOP/s of torch.mm of [m, k] × [k, n] (2mkn per product), repeated for about `seconds`."""

    def __init__(self, m: int, k: int, n: int, device: torch.device, seconds: float = 0.1) -> None:
        self.a, self.b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        self.flop, self.device = 2 * m * k * n, device
        once = timed(self.run, 1, device)  # also a warm-up
        self.reps = max(1, min(100, round(seconds / max(once, 1e-6))))

    def run(self) -> None:
        torch.mm(self.a, self.b)

    def flops_per_s(self) -> float:
        return self.flop / timed(self.run, self.reps, self.device)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def med(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def rounded(values: list[float], digits: int = 3) -> list[float]:
    return [round(v, digits) for v in values]


def alternating(trainers: dict[str, Trainer], index: int) -> Iterator[tuple[str, Trainer]]:
    items = list(trainers.items())
    return iter(items if index % 2 == 0 else items[::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", default="btag", choices=["btag", "boosted", "full"],
                        help="constituent counts like btag jets, like JetClass, or 128 for every jet")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repetitions; medians reported")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per model and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model before the rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: cuda when available")
    parser.add_argument("--sizes", default="demo,paper", help="comma-separated subset of demo,paper")
    parser.add_argument("--demo-batch", type=int, default=None, help="default 256 (CPU), 1000 (CUDA)")
    parser.add_argument("--paper-batch", type=int, default=None, help="default 64 (CPU), 1000 (CUDA)")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--backbone", default="mpm-kmeans", help="backbone whose encoder is the demo size")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="CUDA only: dense bf16 peak for MFU (989 = H100 SXM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true",
                        help="also time the jetfm encoder with torch.compile (config key compile)")
    args = parser.parse_args()

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    sizes: dict[str, dict[str, Any]] = {"demo": dict(cfg["backbones"][args.backbone]["encoder"]),
                                        "paper": dict(PAPER)}
    names = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = set(names) - set(sizes)
    if unknown:
        parser.error(f"unknown sizes {sorted(unknown)}")
    default_batch = {"demo": 1000 if cuda else 256, "paper": 1000 if cuda else 64}
    batch_sizes = {"demo": args.demo_batch or default_batch["demo"],
                   "paper": args.paper_batch or default_batch["paper"]}

    setups: dict[str, dict[str, Any]] = {}
    for name in names:
        size = sizes[name]
        batch = draw_batch(args.sample, batch_sizes[name], args.seed, device)
        torch.manual_seed(args.seed)
        jetfm = JetEncoder(size["dim"], size["layers"], size["heads"], size["registers"], size["ff_mult"])
        plain = PlainEncoder(size["dim"], size["layers"], size["heads"], size["registers"], size["ff_mult"])
        trainers = {"jetfm": Trainer(jetfm, batch, device), "plain": Trainer(plain, batch, device)}
        flops = {k: t.flops() for k, t in trainers.items()}
        if args.compile:
            compiled = JetEncoder(size["dim"], size["layers"], size["heads"], size["registers"],
                                  size["ff_mult"])
            compiled.load_state_dict(jetfm.state_dict())
            compile_transformers(compiled)
            trainers["compiled"] = Trainer(compiled, batch, device)
            flops["compiled"] = flops["jetfm"]  # the same arithmetic, fused differently
        for t in trainers.values():
            for _ in range(args.warmup):
                t.step()
        b, n = batch[2].shape
        tokens = b * (n + size["registers"])
        setups[name] = {"size": size, "trainers": trainers, "flops": flops, "tokens": tokens,
                        "batch": b, "max_constituents": n,
                        "mean_constituents": float(batch[2].sum()) / b,
                        "plain_dim_feedforward": plain.dim_feedforward,
                        "times": {k: [] for k in trainers}, "peak": [], "shape_matmul": []}

    squares = [] if cuda else [Matmul(n, n, n, device) for n in (1024, 2048)]
    for name in names:
        d = setups[name]["size"]["dim"]
        setups[name]["shape_mm"] = None if cuda else Matmul(setups[name]["tokens"], d, 3 * d, device)
    for r in range(args.rounds):  # interleaved, so drifts of a shared machine hit everything
        for name in names:
            s = setups[name]
            # single steps of the two models alternate, with matmuls between them; a round's
            # value of each is the median of its measurements in the round
            samples: dict[str, list[float]] = {k: [] for k in (*s["trainers"], "peak", "shape")}
            for i in range(args.steps):
                for key, trainer in alternating(s["trainers"], r + i):
                    samples[key].append(trainer.seconds_per_step())
                if not cuda:
                    samples["peak"].append(max(mm.flops_per_s() for mm in squares))
                    samples["shape"].append(s["shape_mm"].flops_per_s())
            for key in s["trainers"]:
                s["times"][key].append(statistics.median(samples[key]))
            print(f"round {r + 1}/{args.rounds} {name}: "
                  + ", ".join(f"{k} {s['times'][k][-1]:.3f} s" for k in s["trainers"]) + " per step",
                  file=sys.stderr)
            if not cuda:
                s["peak"].append(statistics.median(samples["peak"]))
                s["shape_matmul"].append(statistics.median(samples["shape"]))

    results: dict[str, Any] = {}
    table = []
    for name in names:
        s = setups[name]
        tj, tp = s["times"]["jetfm"], s["times"]["plain"]
        ratio = [p / j for j, p in zip(tj, tp, strict=True)]
        models = list(s["trainers"])
        gflops = {k: [s["flops"][k] / t / 1e9 for t in s["times"][k]] for k in models}
        out: dict[str, Any] = {
            "config": s["size"], "batch": s["batch"], "max_constituents": s["max_constituents"],
            "mean_constituents": round(s["mean_constituents"], 2), "tokens_per_step": s["tokens"],
            "plain_dim_feedforward": s["plain_dim_feedforward"],
            "params": {k: sum(p.numel() for p in t.model.parameters()) for k, t in s["trainers"].items()},
            "gflop_per_step": {k: round(v / 1e9, 3) for k, v in s["flops"].items()},
            "jetfm_jets_per_s": round(s["batch"] / statistics.median(tj), 1),
            "plain_jets_per_s": round(s["batch"] / statistics.median(tp), 1),
            # paired per round, so a slow spell of the machine cancels
            "ratio_jetfm_over_plain": med(ratio), "ratio_per_round": rounded(ratio),
            "jetfm_gflops": med(gflops["jetfm"], 1), "plain_gflops": med(gflops["plain"], 1),
        }
        if "compiled" in s["trainers"]:
            tc = s["times"]["compiled"]
            speedup = [j / c for j, c in zip(tj, tc, strict=True)]
            out |= {"compiled_jets_per_s": round(s["batch"] / statistics.median(tc), 1),
                    "compiled_gflops": med(gflops["compiled"], 1),
                    "ratio_compiled_over_jetfm": med(speedup), "ratio_compiled_per_round": rounded(speedup)}
        if cuda:
            for k in models:
                mfu = [g / (args.peak_tflops * 1e3) for g in gflops[k]]
                out[f"{k}_mfu"], out[f"{k}_mfu_per_round"] = med(mfu, 4), rounded(mfu, 4)
        else:
            out["matmul_peak_gflops"] = med([p / 1e9 for p in s["peak"]], 1)
            out["matmul_peak_gflops_per_round"] = rounded([p / 1e9 for p in s["peak"]], 1)
            out["shape_matmul_gflops"] = med([f / 1e9 for f in s["shape_matmul"]], 1)
            for k in models:
                frac = [g * 1e9 / p for g, p in zip(gflops[k], s["peak"], strict=True)]
                out[f"{k}_fraction_of_peak"] = med(frac)
                out[f"{k}_fraction_of_peak_per_round"] = rounded(frac)
                shape = [g * 1e9 / f for g, f in zip(gflops[k], s["shape_matmul"], strict=True)]
                out[f"{k}_fraction_of_shape_matmul"] = med(shape)
        results[name] = out
        table.append((name, out))

    report: dict[str, Any] = {
        "benchmark": "training_speed",
        "machine": {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "device": torch.cuda.get_device_name(device) if cuda else "cpu"},
        "command": " ".join(["python", "benchmarks/training_speed.py", *sys.argv[1:]]),
        "sample": args.sample, "rounds": args.rounds, "steps_per_round": args.steps,
        "precision": "bf16 autocast" if cuda else "fp32",
    }
    if cuda:
        report["peak_tflops"] = args.peak_tflops
    else:
        peaks = [p / 1e9 for name in names for p in setups[name]["peak"]]
        report["matmul_peak_gflops"] = med(peaks, 1)
    report["sizes"] = results
    print(json.dumps(report, indent=2))

    ref = "MFU" if cuda else "of peak"
    print(f"{'size':6} {'batch':>5} {'jetfm j/s':>10} {'plain j/s':>10} {'ratio':>6} {'jetfm GF/s':>10} "
          f"{'plain GF/s':>10} {'peak GF/s':>10} {'jetfm ' + ref:>13} {'plain ' + ref:>13}", file=sys.stderr)
    for name, out in table:
        fj = out["jetfm_mfu" if cuda else "jetfm_fraction_of_peak"]
        fp = out["plain_mfu" if cuda else "plain_fraction_of_peak"]
        peak = args.peak_tflops * 1e3 if cuda else out["matmul_peak_gflops"]
        print(f"{name:6} {out['batch']:5d} {out['jetfm_jets_per_s']:10.1f} {out['plain_jets_per_s']:10.1f} "
              f"{out['ratio_jetfm_over_plain']:6.3f} {out['jetfm_gflops']:10.1f} {out['plain_gflops']:10.1f} "
              f"{peak:10.1f} {fj:13.3f} {fp:13.3f}", file=sys.stderr)
        if "compiled_jets_per_s" in out:
            fc = out["compiled_mfu" if cuda else "compiled_fraction_of_peak"]
            print(f"{'':6} compiled: {out['compiled_jets_per_s']:.1f} jets/s, "
                  f"{out['ratio_compiled_over_jetfm']:.3f} × jetfm eager (per round "
                  f"{out['ratio_compiled_per_round']}), {ref} {fc:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
