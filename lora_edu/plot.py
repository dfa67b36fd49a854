"""Every plot of the course. Each function takes data and returns a matplotlib ``Figure``.

Only this module (and ``widgets.py``) imports matplotlib, so the maths modules stay free of it.
Figures are made with the object-oriented API (``Figure``, not ``pyplot``), so a function never
touches global state and works the same in a notebook, a test or ``python -m lora_edu.figures``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

COLORS = {
    "embedding": "#8c8c8c",
    "attention": "#1f77b4",
    "mlp": "#ff7f0e",
    "norms": "#2ca02c",
    "other": "#d62728",
}


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _show_figures_in_notebooks() -> None:
    """Let a notebook cell display a returned ``Figure`` as a picture.

    Without pyplot, IPython has no display rule for a bare ``Figure`` and would print
    ``<Figure size ...>``; this registers one (what ``%matplotlib inline`` does for pyplot figures).
    Outside IPython it does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _figure_png)


_show_figures_in_notebooks()


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A blank figure in the course's style (constrained layout, readable fonts)."""
    return Figure(figsize=(width, height), layout="constrained")


def _finish_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Label the axes, add the title and a frameless legend, and drop the top and right spines."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


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


# ---- notebook 01: rank and SVD --------------------------------------------------------------------


def sample_image(max_side: int | None = None):
    """A grayscale photo as a float tensor (H, W) in [0, 1]: matplotlib's sample ``grace_hopper.jpg``.

    The file ships inside matplotlib (``mpl-data/sample_data``), so nothing is downloaded. If an install
    lacks it, a pattern drawn in code (stripes, a disc and a gradient) stands in. ``max_side`` shrinks
    the image by an integer stride so its longer side is at most that many pixels.
    """
    import torch
    from matplotlib import cbook
    from matplotlib import image as mpimg

    try:
        rgb = mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # (H, W, 3) uint8
        gray = torch.from_numpy(rgb[..., :3].astype("float32") @ [0.299, 0.587, 0.114]) / 255.0
    except (OSError, ValueError):
        y, x = torch.meshgrid(torch.linspace(-1, 1, 240), torch.linspace(-1, 1, 200), indexing="ij")
        gray = 0.5 + 0.25 * torch.sin(9 * x) * (y > 0) + 0.4 * ((x**2 + y**2) < 0.3) * (0.5 - y / 2)
        gray = gray.clamp(0, 1)
    if max_side is not None and max(gray.shape) > max_side:
        stride = -(-max(gray.shape) // max_side)
        gray = gray[::stride, ::stride]
    return gray.float().contiguous()


def plot_truncation(s, r: int, title: str | None = None, log: bool = False) -> Figure:
    """Singular values as bars: the first ``r`` (kept by truncated SVD) in colour, the rest (dropped) grey."""
    import torch

    s = torch.as_tensor(s, dtype=torch.float64).flatten()
    k = len(s)
    fig = new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    ax.bar(range(1, r + 1), s[:r].tolist(), color=COLORS["attention"], label=f"kept (first {r})")
    if r < k:
        ax.bar(range(r + 1, k + 1), s[r:].tolist(), color="#bbbbbb", label="dropped")
    tail = float(s[r:].square().sum().sqrt())
    ax.set_title(title or f"Rank {r} keeps the largest {r} of {k} singular values; "
                          f"error = sqrt(sum of dropped s²) = {tail:.3g}")
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value $s_i$")
    if log:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_error_comparison(svd_error: float, others: Mapping[str, Sequence[float]], r: int | None = None) -> Figure:
    """Histograms of how much worse other rank-r guesses are than the truncated SVD (relative, log scale).

    ``others`` maps a label to the Frobenius errors of its guesses; each is drawn as error / svd_error - 1.
    """
    import numpy as np

    excess = {label: np.maximum(np.asarray(errors, dtype=float) / svd_error - 1, 1e-12) for label, errors in others.items()}
    every = np.concatenate(list(excess.values()))
    bins = np.logspace(np.log10(every.min()) - 0.1, np.log10(every.max()) + 0.1, 50)
    fig = new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    palette = [COLORS["mlp"], COLORS["norms"], COLORS["other"], "#9467bd"]
    for (label, values), color in zip(excess.items(), palette):
        ax.hist(values, bins=bins, color=color, alpha=0.8, label=f"{label}: {len(values)} tries, best +{values.min():.2%}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.3%}".rstrip("0").rstrip(".") if x < 0.01 else f"{x:.0%}")
    ax.set_xlabel(f"extra error over the truncated SVD (whose error is {svd_error:.4g})")
    ax.set_ylabel("count")
    ax.set_title(f"Every rank-{r} guess is worse than the truncated SVD" if r else "Every guess is worse than the truncated SVD")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _image_array(picture):
    """A tensor or array image as a NumPy array matplotlib can show without copying warnings."""
    import numpy as np

    return picture.detach().cpu().numpy() if hasattr(picture, "detach") else np.asarray(picture)


def plot_rank_approximation(image, approx, title: str = "") -> Figure:
    """An image and its approximation side by side (grayscale, same colour scale)."""
    fig = new_figure(7.0, 3.8)
    for i, (picture, label) in enumerate(((image, "original"), (approx, title or "approximation"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.imshow(_image_array(picture), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    return fig


def plot_rank_strip(image, ranks: Sequence[int] = (1, 5, 20, 50)) -> Figure:
    """The image's best rank-r approximations in a row, each labelled with its storage and error."""
    import torch

    from lora_edu import rank

    m, n = image.shape
    fig = new_figure(2.2 * (len(ranks) + 1), 3.0)
    B, A = rank.truncated_svd(image, max(ranks))  # one SVD: the first r columns/rows give rank r
    panels = [(B[:, :r] @ A[:r], r) for r in ranks] + [(image, None)]
    for i, (picture, r) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(_image_array(picture.clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
        if r is None:
            ax.set_title(f"original\n{m}x{n} = {m * n:,} numbers", fontsize=9)
        else:
            share = rank.factored_size(m, n, r) / (m * n)
            error = float(torch.linalg.matrix_norm(image - picture) / torch.linalg.matrix_norm(image))
            ax.set_title(f"rank {r}: {_percent(share)} of the numbers\nerror {error:.1%}", fontsize=9)
        ax.set_axis_off()
    return fig


def plot_spectra(spectra: Mapping, what: str = "singular", ranks: Sequence[int] = (8, 64, 256)) -> Figure:
    """One panel per projection kind: pretrained spectra (a line per block) against random twins (grey).

    ``spectra`` is :func:`lora_edu.rank.collect_spectra`'s dict. ``what="singular"`` draws s_i / ||W||_F
    on a log scale (a steeper fall = faster decay); ``what="energy"`` draws the cumulative energy kept at rank r, with lines at ``ranks``.
    """
    import matplotlib as mpl

    from lora_edu import rank

    if what not in ("singular", "energy"):
        raise ValueError(f"what must be 'singular' or 'energy', got {what!r}.")
    kinds = list(dict.fromkeys(s.kind for s in spectra.values()))
    blocks = sorted({s.block for s in spectra.values() if s.block is not None})
    cmap = mpl.colormaps["viridis"]
    shade = {b: cmap(0.85 * i / max(len(blocks) - 1, 1)) for i, b in enumerate(blocks)}
    cols = 4
    rows = -(-(len(kinds) + 1) // cols)
    fig = new_figure(3.0 * cols, 2.6 * rows)
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, spec in enumerate(s for s in spectra.values() if s.kind == kind):
            pre, rnd = spec.singular_values, spec.random_singular_values
            if what == "energy":
                pre, rnd = rank.energy_curve(pre), rank.energy_curve(rnd)
            else:  # divide by the Frobenius norm, so every matrix holds the same total energy
                pre, rnd = pre / pre.square().sum().sqrt(), rnd / rnd.square().sum().sqrt()
            x = range(1, len(pre) + 1)
            ax.plot(x, rnd.tolist(), color="#999999", linestyle="--", linewidth=1, label="random" if j == 0 else None)
            ax.plot(x, pre.tolist(), color=shade.get(spec.block, COLORS["attention"]), linewidth=1.2)
        shape = next(s.shape for s in spectra.values() if s.kind == kind)
        ax.set_title(f"{kind}  {shape[0]}x{shape[1]}", fontsize=10)
        if what == "singular":
            ax.set_yscale("log")
        else:
            ax.set_xscale("log")
            ax.set_ylim(0, 1.02)
            for r in ranks:
                if r <= min(shape):
                    ax.axvline(r, color="#dddddd", linewidth=0.8, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        if i % cols == 0:
            ax.set_ylabel("$s_i$ / $||W||_F$" if what == "singular" else "energy kept", fontsize=9)
        if i >= len(kinds) - cols:
            ax.set_xlabel("index i" if what == "singular" else "rank r", fontsize=9)
    key = fig.add_subplot(rows, cols, len(kinds) + 1)
    key.set_axis_off()
    handles = [mpl.lines.Line2D([], [], color=shade[b], label=f"pretrained, block {b}") for b in blocks[:8]]
    handles.append(mpl.lines.Line2D([], [], color="#999999", linestyle="--", label="random Gaussian, same shape"))
    key.legend(handles=handles, loc="center", frameon=False, fontsize=8)
    fig.suptitle("Singular values of pretrained weights vs random Gaussian matrices" if what == "singular"
                 else "Energy kept by the best rank-r approximation")
    return fig


# ---- notebooks 02 and 03: training few parameters, LoRA from scratch ------------------------------


def plot_training_costs(rows: Sequence[Mapping[str, object]], title: str = "What one training step costs") -> Figure:
    """Two bar panels per method: trainable parameters (log scale) and activations saved for backward.

    ``rows``: dicts with ``method`` (str), ``trainable`` (int) and ``saved_mb`` (float).
    """
    names = [str(row["method"]) for row in rows][::-1]
    trainable = [float(row["trainable"]) for row in rows][::-1]
    saved = [float(row["saved_mb"]) for row in rows][::-1]
    fig = new_figure(9.0, 0.9 + 0.45 * len(rows))
    left, right = fig.subplots(1, 2, sharey=True)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    colors = [palette[i % len(palette)] for i in range(len(rows))][::-1]
    left.barh(names, trainable, color=colors)
    left.set_xscale("log")
    left.set_xlabel("trainable parameters (log scale)")
    for y, value in enumerate(trainable):
        left.text(value, y, f" {_millions(int(value))}", va="center", fontsize=9)
    left.set_xlim(min(trainable) / 3, max(trainable) * 30)
    right.barh(names, saved, color=colors)
    right.set_xlabel("activations saved for backward (MB)")
    for y, value in enumerate(saved):
        right.text(value, y, f" {value:.0f} MB", va="center", fontsize=9)
    right.set_xlim(0, max(saved) * 1.3)
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title)
    return fig


def plot_update_size_vs_rank(ranks: Sequence[int], sizes: Mapping[str, Sequence[float]]) -> Figure:
    """The update's size ``||ΔW||_F`` against the rank r, one line per scaling rule (log-log)."""
    fig = new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    styles = {"alpha/r": ("#1f77b4", "o"), "alpha/sqrt(r)": ("#ff7f0e", "s")}
    for name, values in sizes.items():
        color, marker = styles.get(name, ("#2ca02c", "^"))
        label = {"alpha/r": r"LoRA: $\alpha / r$", "alpha/sqrt(r)": r"rsLoRA: $\alpha / \sqrt{r}$"}.get(name, name)
        ax.plot(list(ranks), list(values), marker=marker, color=color, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(ranks), [str(r) for r in ranks])
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="y", which="minor", labelsize=8)
    _finish_axes(ax, "rank r", r"$\|\Delta W\|_F$ after training",
                 "Same steps, same learning rate: the update's size as r grows")
    return fig


def plot_latency(times: Mapping[str, float], flop_bound: float | None = None, reference: str = "plain") -> Figure:
    """Extra time of each entry over ``times[reference]`` (in %), with the FLOP bound as a dashed line if given."""
    names = [name for name in times if name != reference]
    extra = [100 * (times[name] / times[reference] - 1) for name in names]
    fig = new_figure(6.0, 1.2 + 0.5 * len(names))
    ax = fig.add_subplot()
    bars = ax.barh(names[::-1], extra[::-1], color=["#1f77b4" if e >= 0 else "#2ca02c" for e in extra[::-1]])
    for bar, value in zip(bars, extra[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:+.1f}%", va="center")
    ax.axvline(0, color="#444444", linewidth=0.8)
    top = max(extra + [0.0])
    if flop_bound is not None:
        ax.axvline(100 * flop_bound, color="#d62728", linestyle="--", linewidth=1,
                   label=f"FLOP bound r(d+k)/(dk) = {100 * flop_bound:.1f}%")
        top = max(top, 100 * flop_bound)
        fig.legend(frameon=False, loc="outside lower center")
    ax.set_xlim(min(extra + [0.0]) * 1.3 - 1, top * 1.3 + 1)
    ax.set_xlabel(f"extra time over {reference} (%)")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# ---- notebook 04: memory accounting ---------------------------------------------------------------

MEMORY_COLORS = {
    "weights": "#8c8c8c",
    "adapters": "#2ca02c",
    "quant_constants": "#bcbd22",
    "gradients": "#ff7f0e",
    "master_weights": "#9467bd",
    "optimizer_states": "#d62728",
    "activations": "#1f77b4",
}


def plot_memory_breakdown(
    bars: Mapping[str, Mapping[str, float]],
    gpu_memory_gb: Sequence[float] | float | None = None,
    title: str = "Training memory, part by part",
) -> Figure:
    """One stacked bar per setup: ``bars`` maps a label to {part: bytes} (e.g. ``breakdown.parts``).

    Parts are stacked in the order given, in decimal GB, with each bar's total on top; dashed lines
    mark GPU sizes (``gpu_memory_gb``, e.g. ``(24, 80)``) unless they would dwarf every bar.
    """
    labels = list(bars)
    parts = list(dict.fromkeys(part for setup in bars.values() for part in setup))
    totals = [sum(bars[label].values()) / 1e9 for label in labels]
    fig = new_figure(max(6.0, 3.0 + 1.3 * len(labels)), 4.5)
    ax = fig.add_subplot()
    bottom = [0.0] * len(labels)
    for part in parts:
        heights = [bars[label].get(part, 0) / 1e9 for label in labels]
        if not any(heights):
            continue
        ax.bar(labels, heights, bottom=bottom, color=MEMORY_COLORS.get(part, "#17becf"),
               label=part.replace("_", " "), width=0.6)
        bottom = [b + h for b, h in zip(bottom, heights)]
    for x, total in enumerate(totals):
        ax.text(x, total, f"{total:,.1f} GB" if total >= 1 else f"{total * 1e3:,.0f} MB", ha="center", va="bottom")
    lines = [] if gpu_memory_gb is None else (
        [gpu_memory_gb] if isinstance(gpu_memory_gb, (int, float)) else list(gpu_memory_gb))
    top = max(totals) * 1.15
    lines = [gb for gb in lines if gb <= 3 * max(totals)]  # a GPU far above every bar would flatten them
    for gb in lines:
        ax.axhline(gb, color="#444444", linestyle="--", linewidth=0.9)
        ax.text(len(labels) - 0.5, gb, f"{gb:g} GB GPU", ha="right", va="bottom", fontsize=9, color="#444444")
    ax.set_ylim(0, max([top] + [gb * 1.08 for gb in lines]))
    ax.set_ylabel("memory (GB, decimal)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_memory_scaling(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str = "sequence length (tokens)",
    title: str = "Activation memory",
) -> Figure:
    """Curves of bytes against ``x`` (shown in MB); a label starting with "measured" is drawn as dots."""
    fig = new_figure(6.5, 4.0)
    ax = fig.add_subplot()
    for i, (label, values) in enumerate(series.items()):
        mb = [v / 1e6 for v in values]
        if label.lower().startswith("measured"):
            ax.plot(list(x), mb, "o", color="#222222", label=label, zorder=3)
        else:
            ax.plot(list(x), mb, "-", color=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")[i % 4], label=label)
    _finish_axes(ax, xlabel, "MB", title)
    return fig


# ---- notebook 06: QLoRA ------------------------------------------------------------------------------

QUANT_COLORS = {"nf4": "#1f77b4", "int4": "#ff7f0e", "fp4": "#2ca02c"}


def plot_quant_levels(values, levels: Mapping[str, Sequence[float]], title: str = "Weights and 4-bit levels") -> Figure:
    """A histogram of block-normalised weights (w / absmax, in [-1, 1]) with each code book's levels.

    ``values``: 1-D array-like of normalised weights. ``levels``: name -> the code book's levels,
    e.g. ``{"nf4": nf4_code(), "int4": int4_code(), "fp4": fp4_code()}``. The top panel shows the
    histogram with the first code book's levels as lines; the bottom panel one row of levels per code.
    """
    import numpy as np

    data = np.asarray(values, dtype=float).reshape(-1)
    fig = new_figure(8.0, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])
    top.hist(data, bins=161, range=(-1, 1), color="#b0b0b0")
    names = list(levels)
    first = names[0]
    for level in np.asarray(levels[first], dtype=float):
        top.axvline(level, color=QUANT_COLORS.get(first, "#1f77b4"), linewidth=0.8, alpha=0.8)
    top.set_ylabel("count")
    top.set_title(f"{title}: {len(data):,} weights, {first.upper()} levels as lines")
    for row, name in enumerate(names):
        points = np.asarray(levels[name], dtype=float)
        bottom.scatter(points, np.full(len(points), row), marker="|", s=220,
                       color=QUANT_COLORS.get(name, "#9467bd"))
    bottom.set_yticks(range(len(names)), [f"{n.upper()} ({len(levels[n])})" for n in names])
    bottom.set_ylim(len(names) - 0.4, -0.6)
    bottom.set_xlabel("w / absmax of its block")
    for ax in (top, bottom):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_quant_errors(errors: Mapping[str, Mapping[str, float]], title: str = "Round-trip error per layer") -> Figure:
    """Grouped bars: relative error ``||W - deq(q(W))|| / ||W||`` per layer (outer key) and code (inner key)."""
    import numpy as np

    layers = list(errors)
    codes = list(next(iter(errors.values())))
    fig = new_figure(max(6.0, 0.9 * len(layers) + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(codes)
    x = np.arange(len(layers))
    for i, code in enumerate(codes):
        ax.bar(x + (i - (len(codes) - 1) / 2) * width, [100 * errors[layer][code] for layer in layers],
               width, label=code.upper(), color=QUANT_COLORS.get(code, "#9467bd"))
    ax.set_xticks(x, layers, rotation=30 if len(layers) > 7 else 0)
    ax.set_ylabel("relative error (%)")
    ax.set_title(title)
    ax.legend(frameon=False, ncols=len(codes))
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_loss_curves(curves: Mapping[str, Sequence[float]], title: str = "Training loss") -> Figure:
    """One line per run (name -> loss per step), e.g. LoRA against QLoRA on the same data."""
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, losses) in enumerate(curves.items()):
        ax.plot(range(1, len(losses) + 1), list(losses), label=name, color=palette[i % len(palette)],
                linestyle="-" if i == 0 else "--")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish_axes(ax, "step", "loss on the answer tokens", title)
    return fig


# ---- notebook 05: fine-tuning a small transformer ------------------------------------------------


def plot_history(history, title: str = "LoRA fine-tuning") -> Figure:
    """Training loss per step (and validation loss where measured), with the learning rate beside it.

    ``history`` is a :class:`lora_edu.train.History`.
    """
    fig = new_figure(9.0, 3.4)
    ax, lr_ax = fig.subplots(1, 2, width_ratios=[2, 1])
    ax.plot(history.step, history.loss, color=COLORS["attention"], linewidth=1.2, label="training batch")
    if history.val_loss:
        ax.plot(history.val_step, history.val_loss, "o-", color=COLORS["other"], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss on answer tokens")
    ax.set_title(title)
    ax.legend(frameon=False)
    lr_ax.plot(history.step, history.lr, color="#555555")
    lr_ax.set_xlabel("step")
    lr_ax.set_title("learning rate: warmup, cosine")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for a in (ax, lr_ax):
        a.spines[["top", "right"]].set_visible(False)
    return fig


def plot_update_energy(
    updates: Mapping[str, Sequence[float]], random: Mapping[str, Sequence[float]], r: int = 8,
    title: str = "How low-rank is the full fine-tune's update ΔW?",
) -> Figure:
    """Cumulative energy kept at rank k for each ΔW (solid) and a random matrix of its shape (dashed).

    ``updates`` and ``random`` map a layer name to its energy curve
    (:func:`lora_edu.rank.energy_curve`); a vertical line marks rank ``r``.
    """
    fig = new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
    for i, (name, curve) in enumerate(updates.items()):
        color = palette[i % len(palette)]
        x = range(1, len(curve) + 1)
        ax.plot(x, list(curve), color=color, linewidth=1.5, label=f"ΔW {name}")
        if name in random:
            ax.plot(range(1, len(random[name]) + 1), list(random[name]), color=color, linestyle="--",
                    linewidth=1, alpha=0.7)
    ax.plot([], [], color="#777777", linestyle="--", label="random matrix, same shape")
    ax.axvline(r, color="#bbbbbb", linewidth=1, zorder=0)
    ax.text(r, 0.02, f" r = {r}", color="#777777")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank k of the best approximation")
    ax.set_ylabel("share of ||ΔW||² kept")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_rank_sweep(
    ranks: Sequence[int], accuracies: Mapping[str, Sequence[float]], base_accuracy: float | None = None,
    title: str = "Exact match after the same number of steps",
) -> Figure:
    """Accuracy against LoRA rank, a line per scaling rule (e.g. ``alpha/r`` and ``alpha/sqrt(r)``)."""
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot()
    styles = [("#1f77b4", "o-"), ("#d62728", "s--"), ("#2ca02c", "^-."), ("#9467bd", "d:")]
    for i, (name, accs) in enumerate(accuracies.items()):
        color, style = styles[i % len(styles)]
        ax.plot(list(ranks)[: len(accs)], [100 * a for a in accs], style, color=color, label=name)
    if base_accuracy is not None:
        ax.axhline(100 * base_accuracy, color="#999999", linestyle=":", label="base model")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ranks), [str(r) for r in ranks])
    ax.set_ylim(-2, 102)
    _finish_axes(ax, "rank r", "exact match (%)", title)
    return fig
