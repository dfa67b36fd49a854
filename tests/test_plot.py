"""lora_edu.plot basics: figures are returned, and a notebook shows them as pictures."""

from __future__ import annotations

from matplotlib.figure import Figure

from lora_edu import plot
from lora_edu.models import model_skeleton, parameter_breakdown


def test_parameter_breakdown_plot_labels_every_part():
    fig = plot.plot_parameter_breakdown(parameter_breakdown(model_skeleton()), "SmolLM2")
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert set(labels) == {"embedding", "attention", "mlp", "norms"}
    assert "134.5 M" in fig.axes[0].get_title()


def test_a_returned_figure_displays_as_png_in_ipython():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        plot._show_figures_in_notebooks()
        data, _ = shell.display_formatter.format(plot.new_figure(2, 2))
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        InteractiveShell.clear_instance()
