"""Memory accounting: the estimator's properties, the published figures, prediction vs measurement."""

from __future__ import annotations

import itertools

import pytest
import torch

import lora_edu
from lora_edu.inject import inject_lora
from lora_edu.lora import LoRAConfig
from lora_edu.measure import measure_training_memory
from lora_edu.memory import (
    PARTS,
    PRESETS,
    MemoryBreakdown,
    ModelShape,
    checkpoint_bytes,
    estimate_training_memory,
    format_bytes,
    lora_param_count_of,
    model_shape,
)

GB, TB, MB = 1e9, 1e12, 1e6
est = estimate_training_memory


# ----------------------------------------------------------------------------- shapes and presets


def test_smollm2_preset_counts_the_real_architecture():
    skeleton = lora_edu.model_skeleton()
    assert PRESETS["smollm2-135m"].num_params == sum(p.numel() for p in skeleton.parameters())
    linear = sum(m.weight.numel() for n, m in skeleton.named_modules() if n.rsplit(".", 1)[-1] in lora_edu.LINEAR_NAMES)
    assert PRESETS["smollm2-135m"].linear_params == linear


@pytest.mark.parametrize("kwargs", [{}, {"hidden_size": 48, "intermediate_size": 80, "num_layers": 3},
                                    {"num_heads": 8, "num_kv_heads": 8}])
def test_shape_from_a_model_matches_its_parameters(kwargs):
    model = lora_edu.tiny_model(**kwargs)
    assert model_shape(model).num_params == sum(p.numel() for p in model.parameters())
    assert model_shape(model.config) == model_shape(model)


@pytest.mark.parametrize("name, published", [
    ("mistral-7b", 7.24e9),  # Mistral 7B: 7,241,732,096 parameters
    ("llama-65b", 65.2e9),  # LLaMA paper, Table 2
    ("gpt3-175b", 175.0e9),  # GPT-3 paper, Table 2.1
])
def test_presets_have_their_published_size(name, published):
    assert PRESETS[name].num_params == pytest.approx(published, rel=0.005)
    assert PRESETS[name].source  # every preset cites where its shape comes from


def test_a_parameter_count_gives_a_llama_like_shape():
    for n in (1e8, 7e9, 70e9):
        shape = model_shape(n)
        assert shape.num_params == pytest.approx(n, rel=0.03)
        assert shape.hidden_size % 128 == 0


# ----------------------------------------------------------------------------- formula properties


def test_parts_add_up_to_the_total():
    b = est("mistral-7b", "qlora")
    assert b.total == sum(b.parts.values()) and list(b.parts) == list(PARTS)
    assert b.model_states == b.total - b.activations


def test_mixed_precision_adam_costs_16_bytes_per_parameter():
    b = est("mistral-7b", "full", "mixed", "adamw")
    n = PRESETS["mistral-7b"].num_params
    assert (b.weights, b.gradients, b.master_weights, b.optimizer_states) == (2 * n, 2 * n, 4 * n, 8 * n)
    assert b.model_states == 16 * n
    assert est("mistral-7b", "full", "fp32").model_states == 16 * n  # 4 + 4 + 4 + 4, no master copy
    assert est("mistral-7b", "full", "bf16").model_states == 8 * n  # states in bf16, as torch.optim keeps them


@pytest.mark.parametrize("optimizer, states", [("adamw", 2), ("sgd-momentum", 1), ("sgd", 0)])
def test_optimizer_state_scales_with_the_number_of_states(optimizer, states):
    n = PRESETS["smollm2-135m"].num_params
    assert est("smollm2-135m", "full", "fp32", optimizer).optimizer_states == 4 * states * n
    assert est("smollm2-135m", "full", "fp32", optimizer, optimizer_bits=8).optimizer_states == states * n


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_lora_memory_grows_linearly_in_r(method):
    totals = [est("mistral-7b", method, r=r).model_states for r in (1, 2, 3, 4, 8)]
    steps = [b - a for a, b in itertools.pairwise(totals)]
    assert steps[0] > 0 and steps[0] == steps[1] == steps[2] and steps[3] == 4 * steps[0]
    acts = [est("mistral-7b", method, r=r).activations for r in (1, 2, 3)]
    assert acts[2] - acts[1] == acts[1] - acts[0] > 0  # each adapted layer keeps A x: r values per token


def test_lora_trains_only_the_adapters():
    shape = PRESETS["mistral-7b"]
    b = est(shape, "lora", "mixed", r=16, targets=("q_proj", "v_proj"))
    n_adapters = 32 * 16 * ((4096 + 4096) + (4096 + 1024))  # r (d + k) for q (4096 -> 4096) and v (4096 -> 1024)
    assert b.trainable_params == n_adapters == lora_param_count_of(shape, 16, ("q_proj", "v_proj"))
    assert b.weights == 2 * shape.num_params  # the frozen base: weights only
    assert (b.adapters, b.gradients, b.master_weights, b.optimizer_states) == tuple(
        k * n_adapters for k in (2, 2, 4, 8))


def test_qlora_weights_are_a_quarter_of_bf16_plus_constants():
    shape = PRESETS["mistral-7b"]
    lora, qlora = est(shape, "lora", "bf16"), est(shape, "qlora", "bf16")
    dense = 2 * (shape.num_params - shape.linear_params)  # embeddings and norms stay 16-bit
    assert qlora.weights - dense == pytest.approx((lora.weights - dense) / 4, abs=shape.num_layers * 7)
    no_dq = est(shape, "qlora", "bf16", double_quant=False)
    assert 8 * no_dq.quant_constants / shape.linear_params == pytest.approx(32 / 64, rel=1e-3)  # 0.5 bits
    assert 8 * qlora.quant_constants / shape.linear_params == pytest.approx(8 / 64 + 32 / (64 * 256), rel=1e-3)
    assert (qlora.adapters, qlora.gradients, qlora.optimizer_states) == (lora.adapters, lora.gradients,
                                                                          lora.optimizer_states)


def test_qlora_matches_the_quant_modules_bit_count():
    from lora_edu.quant import bits_per_parameter

    shape = PRESETS["llama-65b"]
    for dq in (False, True):
        b = est(shape, "qlora", "bf16", double_quant=dq)
        bits = 8 * (b.weights - 2 * (shape.num_params - shape.linear_params) + b.quant_constants) / shape.linear_params
        assert bits == pytest.approx(bits_per_parameter(64, dq), rel=1e-4)


def test_activations_scale_with_batch_and_sequence():
    a = lambda b, s, **kw: est("mistral-7b", batch_size=b, seq_len=s, **kw).activations  # noqa: E731
    assert a(4, 512) - a(2, 512) == 2 * (a(2, 512) - a(1, 512)) > 0  # linear in the batch
    assert a(8, 512) == pytest.approx(8 * a(1, 512), rel=1e-4)
    assert a(1, 2048) == pytest.approx(4 * a(1, 512), rel=1e-3)  # SDPA keeps no s x s matrix: linear in s
    eager = [a(1, s, attention="eager") for s in (512, 1024, 2048)]
    assert eager[2] - eager[1] > 2 * (eager[1] - eager[0])  # eager attention keeps a x s probabilities
    with_ckpt = a(1, 2048, gradient_checkpointing=True)
    assert with_ckpt < a(1, 2048) / 5


def test_gpt3_activations_are_close_to_korthikanti():
    """Korthikanti et al. 2022, eq. (1): s b h (34 + 5 a s / h) bytes per layer (GPT, 16-bit, with dropout)."""
    shape, s = PRESETS["gpt3-175b"], 2048
    h, a = shape.hidden_size, shape.num_heads
    theirs = shape.num_layers * s * h * (34 + 5 * a * s / h)
    ours = est(shape, "full", "mixed", batch_size=1, seq_len=s, attention="eager").activations
    assert ours == pytest.approx(theirs, rel=0.2)


# ----------------------------------------------------------------------------- published figures


def test_7b_full_finetune_needs_about_112_gb_before_activations():
    """16 bytes x 7B = 112 GB (Stanford Alpaca README: "7 x 4 x 4 = 112 GB"; ZeRO's 16 Psi)."""
    assert est("mistral-7b", "full", "mixed").model_states == pytest.approx(112 * GB, rel=0.05)
    assert est("mistral-7b", "full", "fp32").model_states == pytest.approx(112 * GB, rel=0.05)


def test_lora_on_a_16_bit_7b_base_holds_about_14_gb_of_weights():
    b = est("mistral-7b", "lora", "mixed")
    assert b.weights == pytest.approx(14 * GB, rel=0.05)
    assert b.model_states - b.weights < 0.01 * b.weights  # the adapters' share is tiny


def test_lora_paper_gpt3_numbers():
    """Hu et al. 2021, §4.2: training VRAM 1.2 TB -> 350 GB, checkpoint 350 GB -> 35 MB (r=4 on Wq, Wv)."""
    full = est("gpt3-175b", "full", "bf16")  # 16-bit weights, gradients and Adam states: 8 bytes each
    lora = est("gpt3-175b", "lora", "bf16", r=4, targets=("q_proj", "v_proj"))
    assert full.model_states == pytest.approx(1.2 * TB, rel=0.2)  # their setup is not published in full
    assert lora.model_states == pytest.approx(350 * GB, rel=0.05)
    assert checkpoint_bytes("gpt3-175b") == pytest.approx(350 * GB, rel=0.05)
    assert checkpoint_bytes("gpt3-175b", "lora", r=4) == pytest.approx(35 * MB, rel=0.1)


def test_qlora_paper_65b_numbers():
    """Dettmers et al. 2023, abstract and §1: >780 GB (16-bit full fine-tune) -> <48 GB (QLoRA)."""
    full = est("llama-65b", "full", "bf16", optimizer_bits=32)  # 2 + 2 + 8 bytes per parameter
    assert 780 * GB <= full.model_states <= 1.05 * 780 * GB
    qlora = est("llama-65b", "qlora", "bf16", r=64, targets="all-linear", optimizer_bits=32, batch_size=1,
                seq_len=512, gradient_checkpointing=True)
    assert qlora.total < 48 * GB


# ----------------------------------------------------------------------------- prediction vs measurement


def _fresh(attention: str = "sdpa", dtype: torch.dtype = torch.float32):
    model = lora_edu.tiny_model(hidden_size=48, intermediate_size=80, num_layers=3, vocab_size=200).to(dtype)
    model.config._attn_implementation = attention
    return model


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("dtype, precision", [(torch.float32, "fp32"), (torch.bfloat16, "bf16")])
def test_full_finetune_prediction_matches_measurement(attention, dtype, precision):
    model = _fresh(attention, dtype)
    measured = measure_training_memory(model, batch_size=3, seq_len=11)
    predicted = est(model, "full", precision, batch_size=3, seq_len=11, attention=attention)
    for part in ("weights", "gradients"):
        assert getattr(measured, part) == getattr(predicted, part)
    assert measured.model_states == pytest.approx(predicted.model_states, rel=0.05)
    assert measured.activations == pytest.approx(predicted.activations, rel=0.05)


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("o_proj",), ("down_proj",), ("gate_proj", "k_proj"),
                                     tuple(lora_edu.LINEAR_NAMES)])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_lora_prediction_matches_measurement(targets, attention):
    model = inject_lora(_fresh(attention), LoRAConfig(r=4, target_modules=targets))
    measured = measure_training_memory(model, batch_size=2, seq_len=9)
    predicted = est(model, "lora", "fp32", r=4, targets=targets, batch_size=2, seq_len=9, attention=attention)
    for part in ("weights", "adapters", "gradients"):
        assert getattr(measured, part) == getattr(predicted, part)
    assert measured.model_states == pytest.approx(predicted.model_states, rel=0.05)
    assert measured.activations == pytest.approx(predicted.activations, rel=0.05)


def test_qlora_prediction_matches_measurement():
    from lora_edu.qlinear import quantize_model

    model = quantize_model(lora_edu.tiny_model(hidden_size=64, intermediate_size=128), double_quant=True)
    inject_lora(model, LoRAConfig(r=4, target_modules=("q_proj", "v_proj")))
    measured = measure_training_memory(model, batch_size=2, seq_len=8)
    predicted = est(model, "qlora", "fp32", r=4, batch_size=2, seq_len=8)
    for part in ("weights", "quant_constants", "adapters", "gradients"):
        assert getattr(measured, part) == pytest.approx(getattr(predicted, part), rel=0.05), part
    assert measured.model_states == pytest.approx(predicted.model_states, rel=0.05)


def test_measuring_leaves_the_model_as_it_was():
    model = _fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    measure_training_memory(model, optimizer="sgd-momentum")
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_measurement_reports_optimizer_states_by_optimizer():
    states = {opt: measure_training_memory(_fresh(), optimizer=opt).optimizer_states for opt in ("adamw", "sgd")}
    n = sum(p.numel() for p in _fresh().parameters())
    assert states["sgd"] == 0 and states["adamw"] == pytest.approx(8 * n, rel=0.01)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA peak memory needs a CUDA GPU")
def test_cuda_peak_is_at_least_the_counted_tensors():
    model = _fresh().cuda()
    measured = measure_training_memory(model, batch_size=2, seq_len=16)
    assert measured.peak_allocated is not None
    assert measured.peak_allocated >= measured.weights + measured.gradients


# ----------------------------------------------------------------------------- rendering and bad inputs


def test_breakdown_renders_as_a_table():
    b = est("mistral-7b", "lora")
    text = str(b)
    assert "optimizer states" in text and "total" in text and "GB" in text
    assert "<table>" in b._repr_html_()
    assert format_bytes(112e9) == "112.0 GB" and format_bytes(35e6) == "35.0 MB" and format_bytes(12) == "12 B"
    assert isinstance(MemoryBreakdown().total, int)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": -1}, "batch_size"),
    ({"seq_len": 0}, "seq_len"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"method": "prefix"}, "method"),
    ({"precision": "fp8"}, "precision"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"method": "lora", "r": 0}, "r "),
    ({"method": "lora", "r": 2048}, "larger than"),
    ({"method": "lora", "targets": ("qproj",)}, "targets"),
    ({"method": "qlora", "block_size": 0}, "block_size"),
    ({"optimizer_bits": 4}, "optimizer_bits"),
    ({"model": "gpt-5"}, "preset"),
    ({"model": -7e9}, "size"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        est(**kwargs)


def test_unsupported_model_types_raise_type_errors():
    with pytest.raises(TypeError):
        est(object())
    with pytest.raises(TypeError, match="config"):
        est(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="trainable"):
        measure_training_memory(_fresh().requires_grad_(False))
    with pytest.raises(ValueError):
        ModelShape("bad", 10, 8, 8, 1, 3, 2, 4)  # 3 heads cannot share 2 key/value heads


# ----------------------------------------------------------------------------- widget and plots


def test_memory_calculator_widget_recomputes_when_driven():
    from lora_edu.widgets import memory_calculator

    calc = memory_calculator("mistral-7b", method="lora")
    assert calc.result == est("mistral-7b", "lora", "mixed", r=8, batch_size=1, seq_len=512)
    assert set(calc.results) == {"full", "lora", "qlora"} and bytes(calc.picture.value).startswith(b"\x89PNG")
    assert "fits" in calc.table.value
    calc.method.value = "full"
    assert calc.result.trainable_params == PRESETS["mistral-7b"].num_params and "not</b> fit" in calc.table.value
    lora_r8 = calc.results["lora"].total
    calc.rank.value = 64
    assert calc.results["lora"].total > lora_r8
    before = calc.result.activations
    calc.batch_size.value = 4
    assert calc.result.activations > before
    calc.checkpointing.value = True
    assert calc.result.activations < before * 4
    calc.model.value = "custom size"
    calc.size.value = 13.0
    assert calc.result.num_params == pytest.approx(13e9, rel=0.03)
    calc.model.value = "smollm2-135m"
    calc.rank.value = 512  # larger than k_proj's 192 outputs
    assert calc.result is None and "Not possible" in calc.table.value
    calc.rank.value = 8
    assert calc.result is not None


def test_memory_plots_return_figures():
    from matplotlib.figure import Figure

    from lora_edu.figures import FIGURES
    from lora_edu.plot import plot_memory_breakdown, plot_memory_scaling

    bars = {m: est("mistral-7b", m).parts for m in ("full", "lora", "qlora")}
    assert isinstance(plot_memory_breakdown(bars, gpu_memory_gb=(24, 80)), Figure)
    assert isinstance(plot_memory_scaling([1, 2], {"estimate": [1e6, 2e6], "measured": [1e6, 2e6]}), Figure)
    assert isinstance(FIGURES["memory_7b.png"](), Figure)
