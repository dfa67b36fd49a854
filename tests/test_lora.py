"""LoRALinear and LoRAConfig: properties, every bad input, and parity with PEFT's LoRA layer."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from lora_edu.lora import (
    LoRAConfig,
    LoRALinear,
    conv_lora_param_count,
    lora_flop_ratio,
    lora_param_count,
    lora_scaling,
)

SHAPES = [(16, 32), (64, 64), (48, 24)]  # (in_features k, out_features d)


def _layer(k=32, d=24, r=4, alpha=8.0, bias=True, dtype=torch.float32, **kw) -> LoRALinear:
    return LoRALinear(nn.Linear(k, d, bias=bias, dtype=dtype), r, alpha, **kw)


def _randomise_B(layer: LoRALinear) -> LoRALinear:
    with torch.no_grad():
        layer.lora_B.normal_(std=0.1)
    return layer


# ----------------------------------------------------------------------------- pure maths


def test_param_count_is_r_times_d_plus_k():
    assert lora_param_count(576, 192, 8) == 8 * (576 + 192)
    assert lora_flop_ratio(576, 576, 8) == pytest.approx(8 / 576 + 8 / 576)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None])
def test_param_count_rejects_non_positive_ints(bad):
    with pytest.raises(ValueError, match="positive int"):
        lora_param_count(bad, 4, 2)
    with pytest.raises(ValueError):
        lora_param_count(4, 4, bad)


def test_conv_count_matches_a_real_conv_and_the_unfolded_matrix():
    conv = nn.Conv2d(64, 128, kernel_size=3, bias=False)
    r = 4
    assert conv.weight.numel() == 128 * 64 * 9
    assert conv_lora_param_count(64, 128, 3, r) == r * (64 * 9 + 128)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_lora_param_count(64, 128, 0, r)


@pytest.mark.parametrize("r", [1, 4, 16, 64])
def test_scaling_standard_and_rslora(r):
    assert lora_scaling(16, r) == pytest.approx(16 / r)
    assert lora_scaling(16, r, use_rslora=True) == pytest.approx(16 / math.sqrt(r))


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), "16", None, True])
def test_scaling_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        lora_scaling(alpha, 4)


# ----------------------------------------------------------------------------- config


def test_config_defaults_and_frozen():
    c = LoRAConfig()
    assert (c.r, c.alpha, c.dropout, c.target_modules, c.init, c.use_rslora) == (
        8, 16.0, 0.0, ("q_proj", "v_proj"), "kaiming", False
    )
    assert c.scaling == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.r = 4


def test_config_normalises_targets():
    assert LoRAConfig(target_modules=["q_proj", "k_proj"]).target_modules == ("q_proj", "k_proj")
    assert LoRAConfig(target_modules="o_proj").target_modules == ("o_proj",)
    assert LoRAConfig(r=4, alpha=4, use_rslora=True).scaling == 2.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"r": 0}, ValueError, "rank"),
        ({"r": -2}, ValueError, "rank"),
        ({"r": 2.0}, ValueError, "rank"),
        ({"r": True}, ValueError, "rank"),
        ({"alpha": 0}, ValueError, "alpha"),
        ({"alpha": -8}, ValueError, "alpha"),
        ({"alpha": float("nan")}, ValueError, "alpha"),
        ({"dropout": -0.1}, ValueError, "dropout"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"dropout": "0.1"}, ValueError, "dropout"),
        ({"target_modules": ()}, ValueError, "empty"),
        ({"target_modules": []}, ValueError, "empty"),
        ({"target_modules": ("model.layers.0.q_proj",)}, ValueError, "last part"),
        ({"target_modules": ("",)}, ValueError, "last part"),
        ({"target_modules": (3,)}, ValueError, "last part"),
        ({"target_modules": 3}, TypeError, "list of module names"),
        ({"init": "xavier"}, ValueError, "init"),
        ({"use_rslora": "yes"}, TypeError, "use_rslora"),
    ],
)
def test_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        LoRAConfig(**kwargs)


# ----------------------------------------------------------------------------- the layer


@pytest.mark.parametrize("k, d", SHAPES)
@pytest.mark.parametrize("init", ["kaiming", "gaussian"])
def test_shapes_and_init(k, d, init):
    r = 4
    layer = LoRALinear(nn.Linear(k, d), r=r, alpha=8, init=init)
    assert layer.lora_A.shape == (r, k)  # A: r x k
    assert layer.lora_B.shape == (d, r)  # B: d x r
    assert torch.count_nonzero(layer.lora_B) == 0
    assert torch.count_nonzero(layer.lora_A) == layer.lora_A.numel()
    assert (layer.in_features, layer.out_features) == (k, d)
    assert layer.delta_weight().shape == layer.base.weight.shape
    if init == "kaiming":  # nn.Linear's default: uniform in +-1/sqrt(k)
        assert layer.lora_A.abs().max() <= 1 / math.sqrt(k)


def test_gaussian_init_has_std_one_over_r():
    layer = LoRALinear(nn.Linear(4096, 64), r=8, alpha=8, init="gaussian")
    assert layer.lora_A.std().item() == pytest.approx(1 / 8, rel=0.05)


def test_base_is_frozen_and_only_A_B_train():
    layer = _layer()
    assert not any(p.requires_grad for p in layer.base.parameters())
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B"}
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == lora_param_count(24, 32, 4)
    layer(torch.randn(3, 32)).sum().backward()
    assert layer.base.weight.grad is None and layer.base.bias.grad is None


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("init", ["kaiming", "gaussian"])
def test_zero_B_gives_the_base_output_exactly(bias, init):
    layer = _layer(bias=bias, init=init)
    x = torch.randn(2, 5, 32)
    assert torch.equal(layer(x), layer.base(x))


@pytest.mark.parametrize("use_rslora", [False, True])
def test_forward_is_the_formula(use_rslora):
    layer = _randomise_B(_layer(r=4, alpha=8, use_rslora=use_rslora))
    x = torch.randn(7, 32)
    W0, b = layer.base.weight, layer.base.bias
    scaling = 8 / (math.sqrt(4) if use_rslora else 4)
    assert layer.scaling == pytest.approx(scaling)
    expected = x @ W0.T + b + scaling * (x @ layer.lora_A.T @ layer.lora_B.T)  # h = W0 x + s B A x
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.delta_weight(), scaling * layer.lora_B @ layer.lora_A)


def test_update_has_rank_at_most_r():
    layer = _randomise_B(_layer(k=64, d=48, r=3))
    assert torch.linalg.matrix_rank(layer.delta_weight()).item() == 3


def test_first_step_A_gets_zero_gradient_and_B_does_not():
    layer = _layer()
    opt = torch.optim.SGD([layer.lora_A, layer.lora_B], lr=0.1)
    x, target = torch.randn(8, 32), torch.randn(8, 24)
    A0 = layer.lora_A.detach().clone()

    nn.functional.mse_loss(layer(x), target).backward()  # step 1: dL/dA = s B^T g x^T = 0 since B = 0
    assert torch.count_nonzero(layer.lora_A.grad) == 0
    assert torch.count_nonzero(layer.lora_B.grad) > 0
    opt.step()
    opt.zero_grad()
    assert torch.equal(layer.lora_A, A0)
    assert torch.count_nonzero(layer.lora_B) > 0

    nn.functional.mse_loss(layer(x), target).backward()  # step 2: B != 0, so A's gradient is not zero
    assert torch.count_nonzero(layer.lora_A.grad) > 0
    opt.step()
    assert not torch.equal(layer.lora_A, A0)


def test_both_zero_never_trains():
    layer = _layer()
    with torch.no_grad():
        layer.lora_A.zero_()
    nn.functional.mse_loss(layer(torch.randn(8, 32)), torch.randn(8, 24)).backward()
    assert torch.count_nonzero(layer.lora_A.grad) == 0 and torch.count_nonzero(layer.lora_B.grad) == 0


# ----------------------------------------------------------------------------- merging

TOLERANCES = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}


@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("bias", [True, False])
def test_merged_equals_unmerged_and_unmerge_restores(dtype, bias):
    layer = _randomise_B(_layer(bias=bias, dtype=dtype))
    tol = TOLERANCES[dtype]
    x = torch.randn(6, 32, dtype=dtype)
    W0 = layer.base.weight.detach().clone()
    y = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), y, atol=tol * 10, rtol=tol * 10)
    torch.testing.assert_close(layer.base.weight, (W0.double() + layer.delta_weight().double()).to(dtype), atol=tol, rtol=tol)
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight, W0, atol=tol, rtol=tol)


def test_merge_is_idempotent_and_unmerge_when_unmerged_is_a_no_op():
    layer = _randomise_B(_layer())
    W0 = layer.base.weight.detach().clone()
    layer.unmerge()
    assert torch.equal(layer.base.weight, W0)
    layer.merge()
    once = layer.base.weight.detach().clone()
    layer.merge()
    assert torch.equal(layer.base.weight, once)  # never a double add


def test_adapter_off_gives_the_base_exactly():
    layer = _randomise_B(_layer())
    x = torch.randn(4, 32)
    assert not torch.equal(layer(x), layer.base(x))
    layer.adapter_enabled = False
    assert torch.equal(layer(x), layer.base(x))
    layer.adapter_enabled = True
    assert not torch.equal(layer(x), layer.base(x))


def test_switching_off_while_merged_unmerges_and_merging_while_off_is_an_error():
    layer = _randomise_B(_layer())
    x = torch.randn(4, 32)
    base_out = layer.base(x)
    layer.merge()
    layer.adapter_enabled = False
    assert not layer.merged
    torch.testing.assert_close(layer(x), base_out)
    with pytest.raises(RuntimeError, match="switched off"):
        layer.merge()
    with pytest.raises(TypeError, match="True or False"):
        layer.adapter_enabled = 1


def test_dropout_touches_only_the_lora_path():
    layer = _layer(dropout=0.5)
    layer.train()
    x = torch.randn(4, 32)
    assert torch.equal(layer(x), layer.base(x))  # B = 0: dropout cannot change anything
    _randomise_B(layer)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))  # eval: deterministic
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_16_bit_base_keeps_fp32_adapters_and_its_output_dtype():
    layer = _layer(dtype=torch.bfloat16)
    assert layer.lora_A.dtype == torch.float32 and layer.lora_B.dtype == torch.float32
    assert layer(torch.randn(2, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_works_on_the_meta_device():
    with torch.device("meta"):
        layer = LoRALinear(nn.Linear(576, 576), r=8, alpha=16)
    assert layer.lora_A.is_meta and layer.lora_A.shape == (8, 576)


def test_from_config():
    config = LoRAConfig(r=2, alpha=6, dropout=0.1, init="gaussian", use_rslora=True)
    layer = LoRALinear.from_config(nn.Linear(8, 8), config)
    assert (layer.r, layer.alpha, layer.dropout, layer.init, layer.use_rslora) == (2, 6.0, 0.1, "gaussian", True)
    assert layer.scaling == pytest.approx(config.scaling)
    with pytest.raises(TypeError, match="LoRAConfig"):
        LoRALinear.from_config(nn.Linear(8, 8), {"r": 2})
    assert "r=2" in repr(layer)


class _NoWeight(nn.Module):
    """A layer with in/out features but no float weight (like a quantized base)."""

    in_features, out_features = 8, 8

    def forward(self, x):
        return 2 * x


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: LoRALinear("linear", 4, 8), TypeError, "nn.Module"),
        (lambda: LoRALinear(nn.Conv2d(8, 8, 3), 4, 8), TypeError, "in_features"),
        (lambda: LoRALinear(nn.ReLU(), 4, 8), TypeError, "in_features"),
        (lambda: LoRALinear(_layer(), 4, 8), TypeError, "already a LoRALinear"),
        (lambda: LoRALinear(nn.Linear(8, 4), 5, 8), ValueError, r"min\(in_features, out_features\)"),
        (lambda: LoRALinear(nn.Linear(8, 8), 0, 8), ValueError, "rank"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2.0, 8), ValueError, "rank"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2, 0), ValueError, "alpha"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2, -1), ValueError, "alpha"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2, 4, dropout=1), ValueError, "dropout"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2, 4, init="zeros"), ValueError, "init"),
        (lambda: LoRALinear(nn.Linear(8, 8), 2, 4, use_rslora=1), TypeError, "use_rslora"),
    ],
)
def test_bad_inputs_raise_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_unmergeable_base_runs_unmerged_and_refuses_to_merge():
    layer = _randomise_B(LoRALinear(_NoWeight(), 2, 4))
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer(x), 2 * x + layer.scaling * x @ layer.lora_A.T @ layer.lora_B.T)
    with pytest.raises(TypeError, match="no float weight"):
        layer.merge()
    assert not layer.merged


# ----------------------------------------------------------------------------- parity with PEFT


class _OneLayer(nn.Module):
    def __init__(self, k: int, d: int, bias: bool) -> None:
        super().__init__()
        self.lin0 = nn.Linear(k, d, bias=bias)

    def forward(self, x):
        return self.lin0(x)


def _peft_twin(ours: LoRALinear, bias: bool, use_rslora: bool, dropout: float = 0.0):
    """A PEFT LoRA layer on a copy of our base, with our A and B copied in."""
    peft = pytest.importorskip("peft")
    host = _OneLayer(ours.in_features, ours.out_features, bias)
    host.lin0.load_state_dict(ours.base.state_dict())
    config = peft.LoraConfig(
        r=ours.r, lora_alpha=ours.alpha, lora_dropout=dropout, target_modules=["lin0"], use_rslora=use_rslora
    )
    model = peft.get_peft_model(host, config)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.lora_A)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    return model, layer


@pytest.mark.parametrize("k, d", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("r, use_rslora", [(1, False), (4, False), (8, True)])
def test_same_outputs_and_gradients_as_peft(k, d, bias, r, use_rslora):
    ours = _randomise_B(LoRALinear(nn.Linear(k, d, bias=bias), r=r, alpha=16, use_rslora=use_rslora))
    model, theirs = _peft_twin(ours, bias, use_rslora)
    assert theirs.scaling["default"] == pytest.approx(ours.scaling)

    x = torch.randn(3, 5, k)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), model(x2)
    torch.testing.assert_close(y1, y2, atol=1e-6, rtol=1e-5)  # fp32; same ops in the same order
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(ours.lora_A.grad, theirs.lora_A["default"].weight.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours.lora_B.grad, theirs.lora_B["default"].weight.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-6, rtol=1e-5)
    assert ours.base.weight.grad is None and theirs.base_layer.weight.grad is None

    ours.merge()
    theirs.merge()
    torch.testing.assert_close(ours.base.weight, theirs.base_layer.weight, atol=1e-6, rtol=1e-5)


def test_same_dropout_as_peft_in_training_mode():
    ours = _randomise_B(LoRALinear(nn.Linear(32, 16), r=4, alpha=8, dropout=0.3))
    model, _ = _peft_twin(ours, bias=True, use_rslora=False, dropout=0.3)
    ours.train()
    model.train()
    x = torch.randn(4, 32)
    torch.manual_seed(1)
    y1 = ours(x)
    torch.manual_seed(1)
    y2 = model(x)
    torch.testing.assert_close(y1, y2)
