"""Notebook 01's plots and rank slider: they draw what they are given, and the slider responds."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from lora_edu import plot, rank, widgets


@pytest.fixture(scope="module")
def small_image():
    return plot.sample_image(max_side=96)


def test_sample_image_ships_offline_and_is_grayscale_in_unit_range():
    image = plot.sample_image()
    assert image.ndim == 2 and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert rank.numerical_rank(image) > 50  # a photo is far from low rank
    small = plot.sample_image(max_side=100)
    assert max(small.shape) <= 100


def test_rank_slider_responds_and_agrees_with_eckart_young(small_image):
    box = widgets.rank_slider(small_image, r=3)
    m, n = small_image.shape
    first_picture = bytes(box.picture.value)
    assert box.result["r"] == 3 and first_picture.startswith(b"\x89PNG")
    errors = []
    for r in (1, 5, 20):
        box.slider.value = r
        assert box.result["r"] == r
        assert box.result["relative_error"] == pytest.approx(rank.approximation_error(small_image, r, relative=True), rel=1e-4)
        assert box.result["stored"] == r * (m + n)
        assert f"{r * (m + n):,}" in box.info.value
        errors.append(box.result["relative_error"])
    assert errors == sorted(errors, reverse=True)
    assert bytes(box.picture.value) != first_picture
    box.slider.value = box.slider.max
    assert box.result["relative_error"] < 1e-4


def test_rank_slider_clamps_its_range(small_image):
    box = widgets.rank_slider(small_image, r=500, max_rank=10)
    assert box.slider.max == 10 and box.slider.value == 10
    with pytest.raises(ValueError, match="2-D"):
        widgets.rank_slider(torch.ones(3, 4, 5))


def test_truncation_and_error_plots(small_image):
    s = rank.singular_values(small_image)
    fig = plot.plot_truncation(s[:30], 5, log=True)
    assert isinstance(fig, Figure) and "5" in fig.axes[0].get_title()
    fig = plot.plot_error_comparison(1.0, {"random A, best B": [1.5, 2.0], "random B A": [9.0]}, r=4)
    assert isinstance(fig, Figure) and "rank-4" in fig.axes[0].get_title() and "1" in fig.axes[0].get_xlabel()


def test_rank_strip_labels_storage_and_error(small_image):
    fig = plot.plot_rank_strip(small_image, ranks=(1, 4))
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3 and titles[0].startswith("rank 1") and titles[-1].startswith("original")
    error = rank.approximation_error(small_image, 4, relative=True)
    assert f"{error:.1%}" in titles[1]


@pytest.mark.parametrize("what", ["singular", "energy"])
def test_spectra_plot_has_a_panel_per_projection(tiny, what):
    spectra = rank.collect_spectra(tiny)
    fig = plot.plot_spectra(spectra, what=what)
    titles = [ax.get_title() for ax in fig.axes]
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert any(t.startswith(name) for t in titles)
    with pytest.raises(ValueError, match="singular"):
        plot.plot_spectra(spectra, what="eigen")
