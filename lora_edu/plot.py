"""Every plot of the course. Each function takes data and returns a matplotlib ``Figure``.

Only this module (and ``widgets.py``) imports matplotlib, so the maths modules stay free of it.
Figures are made with the object-oriented API (``Figure``, not ``pyplot``), so a function never
touches global state and works the same in a notebook, a test or ``python -m lora_edu.figures``.
"""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

COLORS = {
    "embedding": "#8c8c8c",
    "attention": "#1f77b4",
    "mlp": "#ff7f0e",
    "norms": "#2ca02c",
    "other": "#d62728",
}


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A blank figure in the course's style (constrained layout, readable fonts)."""
    return Figure(figsize=(width, height), layout="constrained")


def plot_parameter_breakdown(parts: Mapping[str, int], title: str = "Where the parameters are") -> Figure:
    """A horizontal bar per part (embedding, attention, MLP, ...), labelled with millions and shares."""
    items = [(name, count) for name, count in parts.items() if count > 0]
    total = sum(count for _, count in items)
    fig = new_figure(7.0, 0.6 + 0.5 * len(items))
    ax = fig.add_subplot()
    names = [name for name, _ in items][::-1]
    counts = [count / 1e6 for _, count in items][::-1]
    bars = ax.barh(names, counts, color=[COLORS.get(n, "#9467bd") for n in names])
    for bar, (_, count) in zip(bars, items[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f"  {_millions(count)} ({_percent(count / total)})", va="center")
    ax.set_xlabel("parameters (millions)")
    ax.set_xlim(0, max(counts) * 1.35)
    ax.set_title(f"{title}: {total / 1e6:.1f} M in all")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f} M" if count >= 1e5 else f"{count:,}"


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 else f"{share:.2%}"
