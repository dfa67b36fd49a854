"""Latency ratios of lora_edu's LoRALinear: merged vs plain, unmerged overhead vs FLOPs, ours vs PEFT.

Run:  python benchmarks/lora_vs_peft.py [--tokens 512] [--r 8] [--rounds 7] [--threads N] [--clock cpu]

Prints, for each (k -> d) shape of SmolLM2-135M's linear layers:
  merged / plain         forward of a merged LoRALinear vs the plain nn.Linear (goal <= 1.01)
  unmerged / plain - 1   the extra time of the unmerged side path, next to the FLOP bound r(d+k)/(dk)
  ours / PEFT            forward + backward of LoRALinear vs PEFT's lora.Linear, same base, A, B and input
                         (goal <= 1.02)

Each timing is a torch.utils.benchmark median (wall clock); candidates are interleaved over several
rounds and the smallest median of each is kept, so another process slowing one round down does not bias
a ratio. On a machine shared with other jobs, wall-clock ratios are noise: ``--clock cpu`` runs on one
thread and measures the CPU time of that thread (``time.thread_time``), which other processes cannot
inflate. Ratios, not absolute times, are what carries over between machines.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import torch
from torch import nn
from torch.utils import benchmark

from lora_edu.lora import LoRALinear, lora_flop_ratio

SHAPES = [(576, 576), (576, 192), (576, 1536), (1536, 576)]  # (in_features k, out_features d)


CLOCK = "wall"


def _thread_time(fn, min_run_time: float) -> float:
    """Mean CPU time of this thread per call of ``fn`` (one warm-up call, then at least ``min_run_time``)."""
    fn()
    calls, start = 0, time.thread_time()
    while time.thread_time() - start < min_run_time:
        fn()
        calls += 1
    return (time.thread_time() - start) / calls


def best_medians(fns: dict[str, callable], rounds: int, min_run_time: float) -> dict[str, float]:
    """The smallest of ``rounds`` interleaved timings of each function, in seconds per call."""
    best = {name: float("inf") for name in fns}
    names = list(fns)
    for i in range(rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
            if CLOCK == "cpu":
                seconds = _thread_time(fns[name], min_run_time)
            else:
                t = benchmark.Timer(stmt="fn()", globals={"fn": fns[name]}, num_threads=torch.get_num_threads())
                seconds = t.blocked_autorange(min_run_time=min_run_time).median
            best[name] = min(best[name], seconds)
    return best


def peft_twin(ours: LoRALinear) -> nn.Module:
    """PEFT's lora.Linear around a copy of our base, with our A and B."""
    import peft

    class Host(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = copy.deepcopy(ours.base)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(Host(), peft.LoraConfig(r=ours.r, lora_alpha=ours.alpha, target_modules=["lin"]))
    layer = model.base_model.model.lin
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.lora_A)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    return layer


def measure(k: int, d: int, r: int, tokens: int, rounds: int, min_run_time: float) -> dict[str, float]:
    torch.manual_seed(0)
    plain = nn.Linear(k, d, bias=False).requires_grad_(False)
    ours = LoRALinear(copy.deepcopy(plain), r=r, alpha=2 * r)
    with torch.no_grad():
        ours.lora_B.normal_(std=0.02)
    merged = copy.deepcopy(ours)
    merged.merge()
    theirs = peft_twin(ours)
    x = torch.randn(tokens, k)

    with torch.no_grad():
        fwd = best_medians(
            {"plain": lambda: plain(x), "merged": lambda: merged(x), "unmerged": lambda: ours(x)}, rounds, min_run_time
        )

    xg = x.clone().requires_grad_()  # as inside a network: the input needs a gradient too
    grad_out = torch.randn(tokens, d)

    def step(layer: nn.Module):
        def run() -> None:
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            layer(xg).backward(grad_out)

        return run

    fb = best_medians({"ours": step(ours), "peft": step(theirs)}, rounds, min_run_time)
    return {
        "times": {**{f"fwd {n}": v for n, v in fwd.items()}, **{f"fwd+bwd {n}": v for n, v in fb.items()}},
        "merged/plain": fwd["merged"] / fwd["plain"],
        "unmerged overhead": fwd["unmerged"] / fwd["plain"] - 1,
        "flop bound": lora_flop_ratio(d, k, r),
        "ours/peft": fb["ours"] / fb["peft"],
        "plain ms": fwd["plain"] * 1e3,
        "ours fwd+bwd ms": fb["ours"] * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=512, help="rows of x (batch x sequence)")
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-run-time", type=float, default=0.2, help="seconds per blocked_autorange")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: torch.utils.benchmark; cpu: this thread's CPU time, one thread (busy machines)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    if args.clock == "cpu":
        torch.set_num_threads(1)  # all work on the timed thread
    elif args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} threads, "
          f"tokens={args.tokens}, r={args.r}, fp32, rounds={args.rounds}, clock={args.clock}")
    header = f"{'k -> d':>12} {'merged/plain':>13} {'unmerged +':>11} {'FLOP bound':>11} {'ours/PEFT':>10} {'plain ms':>9}"
    print(header)
    print("-" * len(header))
    for k, d in SHAPES:
        m = measure(k, d, args.r, args.tokens, args.rounds, args.min_run_time)
        print(f"{f'{k} -> {d}':>12} {m['merged/plain']:>13.3f} {m['unmerged overhead']:>10.1%} "
              f"{m['flop bound']:>10.1%} {m['ours/peft']:>10.3f} {m['plain ms']:>9.3f}")
    # The fixed per-call cost of each wrapper (Python and dispatch), measured where the matmuls cost nothing:
    # it bounds how far merged/plain and ours/PEFT can be from 1 once a layer's matmul takes longer.
    tiny = measure(64, 64, args.r, 1, args.rounds, args.min_run_time)["times"]
    print("\nper-call cost at 1 token, 64 -> 64 (microseconds): "
          + ", ".join(f"{name} {seconds * 1e6:.1f}" for name, seconds in tiny.items()))


if __name__ == "__main__":
    main()
