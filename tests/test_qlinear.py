"""Tests of lora_edu.qlinear: the frozen 4-bit layer (QLoRA's base), quantize_model and weight_bytes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lora_edu
from lora_edu.inject import inject_lora
from lora_edu.lora import LoRAConfig, LoRALinear
from lora_edu.qlinear import FrozenLinear4bit, quantize_model, weight_bytes


# --------------------------------------------------------------------------- the frozen 4-bit layer


@pytest.mark.parametrize("double_quant", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_layer_forward_is_dequantise_then_linear(double_quant, bias):
    linear = nn.Linear(96, 40, bias=bias)
    layer = FrozenLinear4bit.from_linear(linear, double_quant=double_quant)
    assert (layer.in_features, layer.out_features) == (96, 40)
    assert list(layer.parameters()) == []  # nothing to train: codes and constants are buffers
    x = torch.randn(2, 5, 96)
    w = layer.dequantized_weight()
    torch.testing.assert_close(layer(x), nn.functional.linear(x, w, linear.bias))
    # the 4-bit weight is close to the original
    assert float((w - linear.weight.detach()).norm() / linear.weight.detach().norm()) < 0.15


def test_layer_compute_dtype_and_storage():
    linear = nn.Linear(128, 64, bias=False)
    layer = FrozenLinear4bit.from_linear(linear, compute_dtype=torch.bfloat16)
    assert layer(torch.randn(3, 128)).dtype == torch.bfloat16
    assert layer.nbytes == layer.quantized().nbytes
    assert layer.nbytes == 128 * 64 // 2 + 128 + 4 + 4  # codes + 8-bit constants + absmax2 + offset
    assert layer.nbytes < 0.3 * 128 * 64 * 2  # under 30% of the 16-bit weight


def test_layer_backward_matches_a_plain_linear_on_the_dequantised_weight():
    layer = FrozenLinear4bit.from_linear(nn.Linear(64, 32))
    plain = nn.Linear(64, 32)
    with torch.no_grad():
        plain.weight.copy_(layer.dequantized_weight())
        plain.bias.copy_(layer.bias)
    x1 = torch.randn(4, 64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (layer(x1) ** 2).sum().backward()
    (plain(x2) ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_state_dict_round_trip():
    layer = FrozenLinear4bit.from_linear(nn.Linear(64, 32))
    again = FrozenLinear4bit.from_linear(nn.Linear(64, 32))
    again.load_state_dict(layer.state_dict())
    x = torch.randn(3, 64)
    torch.testing.assert_close(again(x), layer(x))


def test_from_linear_needs_a_linear():
    with pytest.raises(TypeError, match="nn.Linear"):
        FrozenLinear4bit.from_linear(nn.Conv1d(2, 2, 1))


def test_qlora_gradients_reach_the_adapters_not_the_base(tiny):
    quantize_model(tiny)
    inject_lora(tiny, LoRAConfig(r=4, target_modules=("q_proj", "v_proj", "down_proj")))
    layer = tiny.model.layers[0].self_attn.q_proj
    assert isinstance(layer, LoRALinear) and isinstance(layer.base, FrozenLinear4bit)
    packed_before = layer.base.packed.clone()
    for lora in [m for m in tiny.modules() if isinstance(m, LoRALinear)]:
        nn.init.normal_(lora.lora_B, std=0.02)  # so that A gets a gradient too
    ids = torch.randint(0, 256, (2, 12))
    tiny(input_ids=ids, labels=ids).loss.backward()
    trained = {n for n, p in tiny.named_parameters() if p.grad is not None}
    assert trained and all("lora_" in n for n in trained)
    assert all(p.grad.abs().sum() > 0 for n, p in tiny.named_parameters() if "lora_" in n)
    assert not any(b.requires_grad for b in tiny.buffers())
    assert torch.equal(layer.base.packed, packed_before)


def test_qlora_starts_as_the_quantised_model(tiny):
    ids = torch.randint(0, 256, (2, 12))
    quantize_model(tiny)
    before = tiny(input_ids=ids).logits
    inject_lora(tiny, LoRAConfig(r=4, target_modules=("q_proj", "v_proj")))
    torch.testing.assert_close(tiny(input_ids=ids).logits, before)  # B = 0


def test_quantize_model_replaces_only_the_targets(tiny):
    ids = torch.randint(0, 256, (2, 12))
    before = tiny(input_ids=ids).logits.detach()
    quantize_model(tiny, target_modules=("q_proj", "gate_proj"))
    kinds = {name.rsplit(".", 1)[-1]: type(m) for name, m in tiny.named_modules()}
    assert kinds["q_proj"] is FrozenLinear4bit and kinds["gate_proj"] is FrozenLinear4bit
    assert kinds["k_proj"] is nn.Linear and kinds["lm_head"] is nn.Linear
    after = tiny(input_ids=ids).logits.detach()
    assert 0 < float((after - before).abs().max()) < 0.5 * float(before.abs().max())


def test_quantize_model_without_a_match_lists_the_layers(tiny):
    with pytest.raises(ValueError, match="q_proj"):
        quantize_model(tiny, target_modules=("query",))


def test_weight_bytes(tiny):
    dense_before = weight_bytes(tiny)
    assert dense_before.codes == dense_before.constants == dense_before.adapters == 0
    linear_numel = sum(m.weight.numel() for n, m in tiny.named_modules()
                       if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in lora_edu.LINEAR_NAMES)
    quantize_model(tiny, double_quant=False)
    wb = weight_bytes(tiny)
    assert wb.codes == linear_numel // 2
    assert wb.constants == 4 * linear_numel // 64
    assert wb.dense == dense_before.dense - 4 * linear_numel  # the rest stays fp32 (tied head counted once)
    inject_lora(tiny, LoRAConfig(r=2, target_modules=("q_proj",)))
    with_lora = weight_bytes(tiny)
    assert with_lora.base == wb.base
    assert with_lora.adapters == sum(p.numel() * 4 for n, p in tiny.named_parameters() if "lora_" in n) > 0


def test_quantize_model_refuses_a_model_that_already_has_lora(tiny):
    inject_lora(tiny, LoRAConfig(r=2, target_modules=("q_proj",)))
    with pytest.raises(ValueError, match="before inject_lora"):
        quantize_model(tiny)
