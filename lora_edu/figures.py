"""Write the course's key figures to ``figures/``: ``python -m lora_edu.figures [--out DIR]``.

Each entry of ``FIGURES`` names a file and the function that draws it. Every file is written to a
temporary name and renamed into place, and the command says which files it wrote or replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from lora_edu import plot
from lora_edu.models import model_skeleton, parameter_breakdown


def smollm2_parameters() -> Figure:
    """SmolLM2-135M's parameters by part (from its architecture; no weights needed)."""
    return plot.plot_parameter_breakdown(parameter_breakdown(model_skeleton()), "SmolLM2-135M-Instruct")


def weight_spectra() -> Figure:
    """Notebook 01: singular values of SmolLM2's weights (6 blocks spread through depth) vs random twins."""
    from lora_edu.models import load_model
    from lora_edu.rank import collect_spectra

    model, _ = load_model(device="cpu")
    return plot.plot_spectra(collect_spectra(model, blocks=6, seed=0))


def rank_r_approximation() -> Figure:
    """Notebook 01: a photo's best rank-r approximations (truncated SVD) with their storage and error."""
    return plot.plot_rank_strip(plot.sample_image(), ranks=(1, 5, 20, 50))


def memory_7b() -> Figure:
    """Notebook 04: training memory of Mistral-7B, full fine-tune vs LoRA vs QLoRA, part by part."""
    from lora_edu.memory import estimate_training_memory

    setups = {
        "full fine-tune\n(mixed precision)": estimate_training_memory("mistral-7b", "full", "mixed"),
        "LoRA r=8 on q, v\n(16-bit base)": estimate_training_memory("mistral-7b", "lora", "mixed"),
        "QLoRA r=8 on q, v\n(NF4 base)": estimate_training_memory("mistral-7b", "qlora", "mixed"),
    }
    return plot.plot_memory_breakdown({k: b.parts for k, b in setups.items()}, gpu_memory_gb=(24, 80),
                                      title="Mistral-7B, AdamW, batch 1 x 512 tokens (estimate)")


def rslora_scaling() -> Figure:
    """Notebook 03: the update's size after the same training as r grows, alpha/r vs rsLoRA's alpha/sqrt(r)."""
    from lora_edu.lora import update_size_after_training

    ranks = (1, 4, 16, 64)
    return plot.plot_update_size_vs_rank(ranks, update_size_after_training(ranks))


def nf4_levels() -> Figure:
    """Notebook 06: a SmolLM2 layer's weights (blocks of 64 over their absmax) with the NF4, Int4 and FP4 levels."""
    from lora_edu.models import load_model
    from lora_edu.quant import fp4_code, int4_code, nf4_code

    model, _ = load_model(device="cpu")
    name = "model.layers.15.self_attn.q_proj"
    blocks = model.get_submodule(name).weight.detach().reshape(-1, 64)  # (n_blocks, 64)
    normalised = blocks / blocks.abs().amax(dim=1, keepdim=True)
    levels = {"nf4": nf4_code(), "int4": int4_code(), "fp4": fp4_code()}
    return plot.plot_quant_levels(normalised.flatten(), levels, "SmolLM2-135M, layer 15 q_proj")


FIGURES: dict[str, Callable[[], Figure]] = {
    "smollm2_parameters.png": smollm2_parameters,
    "weight_spectra.png": weight_spectra,
    "rank_r_approximation.png": rank_r_approximation,
    "memory_7b.png": memory_7b,
    "rslora_scaling.png": rslora_scaling,
    "nf4_levels.png": nf4_levels,
}


def save_figure(fig: Figure, path: Path, dpi: int = 150) -> None:
    """Save ``fig`` to ``path`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_figures(out: Path, names: list[str] | None = None) -> list[Path]:
    """Draw and save the figures named (all by default) into ``out``; return their paths."""
    unknown = sorted(set(names or []) - set(FIGURES))
    if unknown:
        raise SystemExit(f"Unknown figure(s): {', '.join(unknown)}. Known: {', '.join(FIGURES)}")
    written = []
    for name in names or list(FIGURES):
        path = Path(out) / name
        existed = path.exists()
        save_figure(FIGURES[name](), path)
        print(f"{'replaced' if existed else 'wrote'} {path}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lora_edu.figures", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"figures to draw (default: all): {', '.join(FIGURES)}")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default: figures)")
    args = parser.parse_args(argv)
    write_figures(args.out, args.names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
