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


FIGURES: dict[str, Callable[[], Figure]] = {
    "smollm2_parameters.png": smollm2_parameters,
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
