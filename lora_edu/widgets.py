"""Interactive controls for the notebooks (ipywidgets), each built by a function that returns it.

A builder returns the widget (a ``VBox`` holding the controls and an output area); the controls
are reachable as attributes, so a test can move a slider and read what the widget computed without
a browser. Only this module (and ``plot.py``) imports ipywidgets or matplotlib.
"""

from __future__ import annotations


# ---- notebook 01: rank and SVD --------------------------------------------------------------------


def rank_slider(image=None, r: int = 10, max_rank: int | None = None):
    """A slider over r showing an image's best rank-r approximation, its error and its storage.

    ``image`` is a 2-D tensor in [0, 1] (default: :func:`lora_edu.plot.sample_image`). The SVD is
    computed once; each move of the slider only multiplies the first r singular triplets.
    Returns a ``VBox`` with ``.slider`` (IntSlider), ``.picture`` (Image, PNG bytes), ``.info`` (HTML)
    and ``.result`` (dict: r, relative_error, stored, stored_share) for the current r.
    """
    import io

    import ipywidgets as widgets
    import torch

    from lora_edu import plot
    from lora_edu.rank import _as_matrix, factored_size

    image = plot.sample_image() if image is None else _as_matrix(image, "image").float()
    m, n = image.shape
    U, S, Vh = torch.linalg.svd(image, full_matrices=False)  # (m, k), (k,), (k, n)
    top = min(m, n) if max_rank is None else max(1, min(int(max_rank), min(m, n)))
    slider = widgets.IntSlider(value=max(1, min(r, top)), min=1, max=top, description="rank r",
                               continuous_update=False, layout=widgets.Layout(width="60%"))
    picture = widgets.Image(format="png")
    info = widgets.HTML()
    box = widgets.VBox([slider, info, picture])

    def update(_change: object = None) -> None:
        k = slider.value
        approx = (U[:, :k] * S[:k]) @ Vh[:k]                     # (m, k) @ (k, n) -> (m, n)
        error = float(torch.linalg.matrix_norm(image - approx) / torch.linalg.matrix_norm(image))
        stored = factored_size(m, n, k)
        box.result = {"r": k, "relative_error": error, "stored": stored, "stored_share": stored / (m * n)}
        fig = plot.plot_rank_approximation(image, approx.clamp(0, 1), f"rank {k}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        picture.value = buffer.getvalue()
        info.value = (f"rank <b>{k}</b>: stores r(m+n) = {stored:,} of {m * n:,} numbers "
                      f"(<b>{stored / (m * n):.1%}</b>), relative error <b>{error:.1%}</b>")

    slider.observe(update, names="value")
    update()
    box.slider, box.picture, box.info = slider, picture, info
    return box


# ---- notebook 03: LoRA from scratch ---------------------------------------------------------------


def lora_rank_alpha(d: int = 576, k: int = 576, r: int = 8, alpha: float = 16.0, max_rank: int = 64, seed: int = 0):
    """Sliders for LoRA's rank and alpha (and an rsLoRA switch) on one (d x k) layer.

    Shows the trainable count r(d+k) and its share of d k, the scaling, and the size of the update
    ``||scaling B A||_F`` for a fixed pair of "trained-looking" factors (entries of a size that does not
    depend on r; rank r uses their first r columns/rows). Returns a ``VBox`` with ``.rank`` (IntSlider),
    ``.alpha`` (FloatSlider), ``.rslora`` (Checkbox), ``.info`` (HTML) and ``.result`` (dict: r, alpha,
    use_rslora, scaling, params, share, update_norm) for the current settings.
    """
    import ipywidgets as widgets
    import torch

    from lora_edu.lora import lora_param_count, lora_scaling

    top = max(1, min(int(max_rank), d, k))
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(d, top, generator=gen) * 0.02  # (d, top): as after training
    A = (torch.rand(top, k, generator=gen) * 2 - 1) / k**0.5  # (top, k): kaiming-uniform
    rank = widgets.IntSlider(value=max(1, min(r, top)), min=1, max=top, description="rank r", continuous_update=False)
    alpha_slider = widgets.FloatSlider(value=alpha, min=0.5, max=128.0, step=0.5, description="alpha",
                                       continuous_update=False)
    rslora = widgets.Checkbox(value=False, description="rsLoRA (alpha / sqrt r)")
    info = widgets.HTML()
    box = widgets.VBox([widgets.HBox([rank, alpha_slider, rslora]), info])

    def update(_change: object = None) -> None:
        n, a, rs = rank.value, float(alpha_slider.value), bool(rslora.value)
        scaling = lora_scaling(a, n, rs)
        params = lora_param_count(d, k, n)
        norm = float(torch.linalg.matrix_norm(scaling * B[:, :n] @ A[:n]))  # (d, n) @ (n, k)
        box.result = {"r": n, "alpha": a, "use_rslora": rs, "scaling": scaling, "params": params,
                      "share": params / (d * k), "update_norm": norm}
        rule = "alpha / sqrt(r)" if rs else "alpha / r"
        info.value = (f"W0 is {d} x {k} = {d * k:,} frozen weights. Rank <b>{n}</b> trains r(d+k) = "
                      f"<b>{params:,}</b> numbers (<b>{params / (d * k):.2%}</b> of the layer).<br>"
                      f"scaling = {rule} = <b>{scaling:.3g}</b>; update size ||scaling B A||_F = <b>{norm:.3g}</b>")

    for control in (rank, alpha_slider, rslora):
        control.observe(update, names="value")
    update()
    box.rank, box.alpha, box.rslora, box.info = rank, alpha_slider, rslora, info
    return box


# ---- notebook 04: memory accounting ---------------------------------------------------------------


def memory_calculator(model: str = "mistral-7b", method: str = "lora", precision: str = "mixed", r: int = 8,
                      batch_size: int = 1, seq_len: int = 512, gpu_memory_gb: float = 24.0):
    """A training-memory calculator: pick a model (preset or size), method, precision, rank, batch, length.

    Draws full fine-tune, LoRA and QLoRA side by side as stacked bars for the current settings and
    shows the chosen method's breakdown as a table, with whether it fits on the chosen GPU.
    Returns a ``VBox`` with the controls ``.model`` (Dropdown: presets and "custom size"),
    ``.size`` (FloatLogSlider, billions of parameters, used for "custom size"), ``.method``,
    ``.precision``, ``.optimizer``, ``.targets`` (Dropdowns / ToggleButtons), ``.rank``,
    ``.seq_len`` (SelectionSliders), ``.batch_size`` (IntSlider), ``.checkpointing`` (Checkbox),
    ``.gpu_memory`` (Dropdown, GB), the outputs ``.table`` (HTML) and ``.picture`` (Image, PNG), and
    ``.result`` (the chosen method's :class:`~lora_edu.memory.MemoryBreakdown`, None after an
    invalid choice) and ``.results`` ({method: breakdown}).
    """
    import io

    import ipywidgets as widgets

    from lora_edu import plot
    from lora_edu.memory import METHODS, OPTIMIZERS, PRECISIONS, PRESETS, estimate_training_memory, format_bytes

    custom = "custom size"
    target_sets = {"q_proj, v_proj (LoRA paper)": ("q_proj", "v_proj"),
                   "attention: q, k, v, o": ("q_proj", "k_proj", "v_proj", "o_proj"),
                   "all linear layers (QLoRA paper)": "all-linear"}
    style = {"description_width": "110px"}
    model_box = widgets.Dropdown(options=[*PRESETS, custom], value=model, description="model", style=style)
    size = widgets.FloatLogSlider(value=7.0, base=10, min=-1, max=2.7, step=0.05, description="size (B params)",
                                  readout_format=".3g", continuous_update=False, style=style)
    method_box = widgets.ToggleButtons(options=list(METHODS), value=method, description="method", style=style)
    precision_box = widgets.Dropdown(options=list(PRECISIONS), value=precision, description="precision", style=style)
    optimizer = widgets.Dropdown(options=list(OPTIMIZERS), value="adamw", description="optimizer", style=style)
    targets = widgets.Dropdown(options=list(target_sets), description="LoRA targets", style=style)
    rank = widgets.SelectionSlider(options=[2**k for k in range(10)], value=r, description="rank r",
                                   continuous_update=False, style=style)
    batch = widgets.IntSlider(value=batch_size, min=1, max=64, description="batch size", continuous_update=False,
                              style=style)
    seq = widgets.SelectionSlider(options=[2**k for k in range(6, 15)], value=seq_len, description="tokens / seq.",
                                  continuous_update=False, style=style)
    checkpointing = widgets.Checkbox(value=False, description="gradient checkpointing")
    gpu_sizes = sorted({8.0, 12.0, 16.0, 24.0, 40.0, 48.0, 80.0, 141.0, float(gpu_memory_gb)})
    gpu = widgets.Dropdown(options=gpu_sizes, value=float(gpu_memory_gb), description="GPU (GB)", style=style)
    table, picture = widgets.HTML(), widgets.Image(format="png")
    controls = widgets.VBox([widgets.HBox([model_box, size]), method_box, widgets.HBox([precision_box, optimizer]),
                             widgets.HBox([targets, rank]), widgets.HBox([batch, seq]), widgets.HBox([checkpointing, gpu])])
    box = widgets.VBox([controls, widgets.HBox([picture, table])])

    def update(_change: object = None) -> None:
        size.disabled = model_box.value != custom
        chosen = size.value * 1e9 if model_box.value == custom else model_box.value
        try:
            box.results = {m: estimate_training_memory(
                chosen, m, precision_box.value, optimizer.value, rank.value, target_sets[targets.value],
                batch.value, seq.value, checkpointing.value) for m in METHODS}
        except ValueError as err:
            box.result, box.results = None, {}
            table.value = f"<b>Not possible:</b> {err}"
            return
        box.result = box.results[method_box.value]
        fits = box.result.total <= gpu.value * 1e9
        verdict = "fits" if fits else "does <b>not</b> fit"
        table.value = (box.result._repr_html_()
                       + f"<p>{method_box.value}: {format_bytes(box.result.total)} {verdict} on a {gpu.value:g} GB GPU"
                       + f"<br>trainable: {box.result.trainable_params:,} of {box.result.num_params:,} parameters</p>")
        fig = plot.plot_memory_breakdown({m: b.parts for m, b in box.results.items()}, gpu.value,
                                         title=f"{box.result.label.split(',')[0]}: batch {batch.value} x {seq.value}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        picture.value = buffer.getvalue()

    for control in (model_box, size, method_box, precision_box, optimizer, targets, rank, batch, seq,
                    checkpointing, gpu):
        control.observe(update, names="value")
    update()
    box.model, box.size, box.method, box.precision, box.optimizer = model_box, size, method_box, precision_box, optimizer
    box.targets, box.rank, box.batch_size, box.seq_len, box.checkpointing = targets, rank, batch, seq, checkpointing
    box.gpu_memory, box.table, box.picture = gpu, table, picture
    return box


# ---- notebook 06: QLoRA ------------------------------------------------------------------------------


def quant_explorer(weight=None, code: str = "nf4", block_size: int = 64, double_quant: bool = True):
    """Pick a 4-bit code book, a block size and double quantisation; see the error and the bits they cost.

    ``weight`` is a 2-D float tensor (default: a Gaussian 576 x 576 matrix). Returns a ``VBox`` with
    ``.code`` (Dropdown), ``.block_size`` (SelectionSlider), ``.double_quant`` (Checkbox), ``.info``
    (HTML), ``.picture`` (Image, PNG bytes) and ``.result`` (dict: code, block_size, double_quant,
    relative_error, bits_per_parameter, gb_7b) for the current choice.
    """
    import io

    import ipywidgets as widgets
    import torch

    from lora_edu import plot
    from lora_edu.quant import CODES, bits_per_parameter, dequantize_4bit, get_code, quantize_4bit

    if weight is None:
        weight = torch.randn(576, 576, generator=torch.Generator().manual_seed(0))
    weight = weight.detach().float()
    style = {"description_width": "110px"}
    code_box = widgets.Dropdown(options=list(CODES), value=code, description="code book", style=style)
    block = widgets.SelectionSlider(options=[2**k for k in range(4, 13)], value=block_size, description="block size",
                                    continuous_update=False, style=style)
    dq = widgets.Checkbox(value=double_quant, description="double quantisation")
    info, picture = widgets.HTML(), widgets.Image(format="png")
    box = widgets.VBox([widgets.HBox([code_box, block, dq]), info, picture])

    def update(_change: object = None) -> None:
        q = quantize_4bit(weight, code_box.value, block.value, dq.value)
        error = float((dequantize_4bit(q, torch.float32) - weight).norm() / weight.norm())
        bits = bits_per_parameter(block.value, dq.value)
        box.result = {"code": code_box.value, "block_size": block.value, "double_quant": dq.value,
                      "relative_error": error, "bits_per_parameter": bits, "gb_7b": 7e9 * bits / 8 / 1e9}
        info.value = (f"{code_box.value.upper()}, blocks of {block.value}: relative error <b>{error:.2%}</b>, "
                      f"<b>{bits:.3f}</b> bits per weight (a 7B base: {box.result['gb_7b']:.2f} GB)")
        flat = weight.reshape(-1)
        blocks = torch.nn.functional.pad(flat, (0, -flat.numel() % block.value)).view(-1, block.value)
        normalised = blocks / blocks.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)
        fig = plot.plot_quant_levels(normalised.flatten()[: flat.numel()], {code_box.value: get_code(code_box.value)},
                                     f"blocks of {block.value}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        picture.value = buffer.getvalue()

    for control in (code_box, block, dq):
        control.observe(update, names="value")
    update()
    box.code, box.block_size, box.double_quant, box.info, box.picture = code_box, block, dq, info, picture
    return box
