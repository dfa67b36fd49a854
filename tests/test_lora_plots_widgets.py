"""Notebooks 02/03: the plots return Figures, the rank/alpha widget computes what it shows."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from lora_edu import plot, widgets
from lora_edu.lora import lora_param_count, lora_scaling, update_size_after_training


def test_update_size_shrinks_with_alpha_over_r_and_not_with_rslora():
    sizes = update_size_after_training(ranks=(1, 16), steps=10, d=64, k=64)
    standard, rs = sizes["alpha/r"], sizes["alpha/sqrt(r)"]
    assert standard[0] == pytest.approx(rs[0])  # r = 1: the two rules agree
    assert standard[1] < 0.6 * standard[0]
    assert rs[1] > 0.7 * rs[0]


def test_plots_return_figures():
    rows = [{"method": "full", "trainable": 134_000_000, "saved_mb": 200.0},
            {"method": "lora", "trainable": 460_800, "saved_mb": 150.0}]
    assert isinstance(plot.plot_training_costs(rows), Figure)
    assert isinstance(plot.plot_update_size_vs_rank((1, 4), {"alpha/r": [2.0, 1.0], "alpha/sqrt(r)": [2.0, 2.0]}), Figure)
    fig = plot.plot_latency({"plain": 1.0, "merged": 1.01, "unmerged": 1.2}, flop_bound=0.03)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 2


def test_rank_alpha_widget_follows_its_controls():
    w = widgets.lora_rank_alpha(d=96, k=64, r=4, alpha=8, max_rank=32)
    assert w.result["params"] == lora_param_count(96, 64, 4) and w.result["scaling"] == 2.0
    first = w.result["update_norm"]
    w.rank.value = 16
    assert w.result["r"] == 16 and w.result["params"] == 16 * (96 + 64)
    assert w.result["share"] == pytest.approx(16 * 160 / (96 * 64))
    assert w.result["update_norm"] < first  # alpha/r: entries fixed, the update shrinks like 1/sqrt(r)
    w.rslora.value = True
    assert w.result["scaling"] == pytest.approx(lora_scaling(8, 16, use_rslora=True))
    assert w.result["update_norm"] > first * 0.7
    w.alpha.value = 16.0
    assert w.result["scaling"] == pytest.approx(4.0)
    assert "16" in w.info.value and w.rank.max == 32
