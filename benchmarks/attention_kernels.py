"""Which scaled-dot-product-attention kernel jetfm's attention runs, with jetfm's masks.

    python benchmarks/attention_kernels.py [--device cpu|cuda] [--size demo|paper] [--batch B]
                                           [--constituents N] [--reps 20]

``torch.nn.functional.scaled_dot_product_attention`` picks a kernel per call: flash attention
(no attention mask), memory-efficient attention and cuDNN (masks and biases allowed, within
limits) on CUDA, a flash kernel on the CPU, and the unfused math path when nothing else
accepts the inputs. The math path materialises the [B, H, N, N] scores, so a padding mask that
forced it would cost memory and speed without any error. For each way jetfm calls attention,

* key padding: a set of jets padded to the longest, registers in front ([B, 1, 1, N] mask);
* pair bias: the same with a ParT-style pairwise bias [B, H, N, N] (``pair_bias: true``);
* causal: the generative backbone's sequences (``is_causal``, no mask tensor);
* causal + cache: several new positions after cached ones (a boolean [n, start + n] mask);

one forward and backward of :class:`jetfm.models.transformer.SelfAttention` (bf16 autocast on
CUDA, fp32 on the CPU) runs under the profiler, which names the kernel that ran. Then each
backend is forced in turn (``torch.nn.attention.sdpa_kernel``): whether it accepts the call and
its time per forward + backward (median of ``--reps``). Prints JSON on stdout and a table on
stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

from jetfm.models.transformer import KVCache, SelfAttention
from jetfm.training import autocast

SIZES = {"demo": {"dim": 64, "heads": 4}, "paper": {"dim": 512, "heads": 8}}
REGISTERS = 8

# the ATen operators behind each kernel; the math path shows up as its own operator
KERNELS = {
    "flash": ("_scaled_dot_product_flash_attention", "_flash_attention_forward"),
    "efficient": ("_scaled_dot_product_efficient_attention", "_efficient_attention_forward"),
    "cudnn": ("_scaled_dot_product_cudnn_attention",),
    "cpu_flash": ("_scaled_dot_product_flash_attention_for_cpu",),
    "math": ("_scaled_dot_product_attention_math",),
}
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}


def kernel_names(events: list[str]) -> list[str]:
    """The kernels (keys of KERNELS) whose operators appear in the profiled ``events``."""
    names = {event.split("::")[-1].removesuffix("_backward") for event in events}
    return [kernel for kernel, ops in KERNELS.items() if names.intersection(ops)]


def cases(dim: int, heads: int, batch: int, n: int, device: torch.device
          ) -> dict[str, Callable[[SelfAttention, torch.Tensor], torch.Tensor]]:
    """Each way jetfm calls attention, as a function of (layer, input [B, R + n, dim])."""
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(max(1, n // 4), n + 1, (batch,), generator=gen)
    counts[0] = n
    visible = torch.arange(n)[None, :] < counts[:, None]
    key_mask = torch.cat([torch.ones(batch, REGISTERS, dtype=torch.bool), visible], dim=1).to(device)
    bias = (0.1 * torch.randn(batch, heads, REGISTERS + n, REGISTERS + n, generator=gen)).to(device)
    prefix = (REGISTERS + n) // 2

    def cached(layer: SelfAttention, x: torch.Tensor) -> torch.Tensor:
        cache = KVCache(x.shape[1])
        with torch.no_grad():
            layer(x[:, :prefix], None, causal=True, cache=cache)
        return layer(x[:, prefix:], None, causal=True, cache=cache)

    return {
        "key padding": lambda layer, x: layer(x, key_mask),
        "pair bias": lambda layer, x: layer(x, key_mask, bias=bias),
        "causal": lambda layer, x: layer(x, None, causal=True),
        "causal + cache": cached,
    }


def run_once(call: Callable[[SelfAttention, torch.Tensor], torch.Tensor], layer: SelfAttention,
             x: torch.Tensor, device: torch.device) -> None:
    with autocast(device):
        y = call(layer, x)
    y.float().square().mean().backward()


def profiled_kernels(call: Callable[..., torch.Tensor], layer: SelfAttention, x: torch.Tensor,
                     device: torch.device) -> list[str]:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run_once(call, layer, x, device)
    return kernel_names([event.key for event in prof.key_averages()])


def seconds(fn: Callable[[], None], reps: int, device: torch.device) -> float:
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forced(backend: str, call: Callable[..., torch.Tensor], layer: SelfAttention, x: torch.Tensor,
           device: torch.device, reps: int) -> dict[str, Any]:
    """Whether ``backend`` alone accepts the call, and its seconds per forward + backward."""
    try:
        with sdpa_kernel(BACKENDS[backend]):
            run_once(call, layer, x, device)  # warm-up, and the test of acceptance
            return {"accepted": True, "ms": round(1e3 * seconds(lambda: run_once(call, layer, x, device),
                                                                 reps, device), 3)}
    except RuntimeError as err:
        return {"accepted": False, "why": str(err).strip().splitlines()[0][:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: cuda when available")
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument("--batch", type=int, default=None, help="default 256 (CUDA), 32 (CPU)")
    parser.add_argument("--constituents", type=int, default=128, help="padded length (registers added)")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    size = SIZES[args.size]
    torch.manual_seed(0)
    layer = SelfAttention(size["dim"], size["heads"]).to(device)
    x = torch.randn(batch, REGISTERS + args.constituents, size["dim"], device=device, requires_grad=True)
    backends = ["flash", "efficient", "cudnn", "math"] if device.type == "cuda" else ["flash", "math"]

    rows = {}
    for name, call in cases(size["dim"], size["heads"], batch, args.constituents, device).items():
        chosen = profiled_kernels(call, layer, x, device)
        rows[name] = {"kernel": chosen, "fused": bool(chosen) and "math" not in chosen,
                      "default_ms": round(1e3 * seconds(lambda c=call: run_once(c, layer, x, device),
                                                        args.reps, device), 3),
                      "forced": {b: forced(b, call, layer, x, device, args.reps) for b in backends}}

    report = {
        "benchmark": "attention_kernels",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "command": " ".join(["python", "benchmarks/attention_kernels.py", *sys.argv[1:]]),
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "shape": {"batch": batch, "length": REGISTERS + args.constituents, **size},
        "cases": rows,
    }
    print(json.dumps(report, indent=2))
    print(f"{'case':15} {'kernel that ran':18} {'ms':>8}  " + "  ".join(f"{b:>10}" for b in backends),
          file=sys.stderr)
    for name, row in rows.items():
        cells = [f"{row['forced'][b]['ms']:8.2f}ms" if row["forced"][b]["accepted"] else f"{'refused':>10}"
                 for b in backends]
        print(f"{name:15} {','.join(row['kernel']) or '?':18} {row['default_ms']:8.2f}  " + "  ".join(cells),
              file=sys.stderr)


if __name__ == "__main__":
    main()
