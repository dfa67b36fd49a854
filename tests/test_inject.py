"""inject_lora and friends on tiny Llama models: what is wrapped, what is frozen, parity with PEFT."""

from __future__ import annotations

import copy

import pytest
import torch

import lora_edu
from lora_edu.inject import (
    ParamCount,
    adapters_disabled,
    count_parameters,
    inject_lora,
    linear_layer_names,
    lora_layers,
    merge_lora,
    set_adapter_enabled,
    unmerge_lora,
)
from lora_edu.lora import LoRAConfig, lora_param_count
from lora_edu.models import LINEAR_NAMES

IDS = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))


def _logits(model, ids=IDS):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _randomise_all_B(model, std=0.05):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * std)
    return model


def _expected_trainable(model, targets, r):
    return sum(
        lora_param_count(m.out_features, m.in_features, r)
        for name, m in model.named_modules()
        if name.rsplit(".", 1)[-1] in targets
    )


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj"), LINEAR_NAMES])
def test_wraps_exactly_the_targets_and_freezes_the_rest(tiny, targets):
    expected = _expected_trainable(tiny, targets, r=4)
    total_before = count_parameters(tiny).total
    model = inject_lora(tiny, LoRAConfig(r=4, target_modules=targets))
    assert model is tiny  # in place
    layers = lora_layers(model)
    assert len(layers) == 2 * len(targets)  # two blocks
    assert {name.rsplit(".", 1)[-1] for name in layers} == set(targets)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{name}.lora_{ab}" for name in layers for ab in "AB"}
    count = count_parameters(model)
    assert count == ParamCount(expected, total_before + expected)
    assert count.share == pytest.approx(expected / (total_before + expected))
    assert "trainable" in str(count)


def test_injected_model_is_identical_at_init(tiny):
    before = _logits(tiny)
    inject_lora(tiny, LoRAConfig(target_modules=LINEAR_NAMES))
    assert torch.equal(_logits(tiny), before)


def test_only_adapters_get_gradients(tiny):
    inject_lora(tiny, LoRAConfig(r=2))
    _randomise_all_B(tiny)
    tiny(input_ids=IDS, labels=IDS).loss.backward()
    for name, p in tiny.named_parameters():
        if "lora_" in name:
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name
        else:
            assert p.grad is None, name


def test_merge_and_unmerge_the_whole_model(tiny):
    inject_lora(tiny, LoRAConfig(target_modules=LINEAR_NAMES))
    _randomise_all_B(tiny)
    weights = {n: m.base.weight.detach().clone() for n, m in lora_layers(tiny).items()}
    unmerged = _logits(tiny)
    merge_lora(tiny)
    assert all(m.merged for m in lora_layers(tiny).values())
    torch.testing.assert_close(_logits(tiny), unmerged, atol=1e-5, rtol=1e-4)
    merge_lora(tiny)  # idempotent
    torch.testing.assert_close(_logits(tiny), unmerged, atol=1e-5, rtol=1e-4)
    unmerge_lora(tiny)
    for name, layer in lora_layers(tiny).items():
        torch.testing.assert_close(layer.base.weight, weights[name], atol=1e-6, rtol=1e-5)


def test_adapters_off_gives_the_base_logits_exactly(tiny):
    base = _logits(tiny)
    inject_lora(tiny, LoRAConfig(target_modules=LINEAR_NAMES))
    _randomise_all_B(tiny)
    adapted = _logits(tiny)
    assert not torch.allclose(adapted, base)
    with adapters_disabled(tiny):
        assert torch.equal(_logits(tiny), base)
    assert torch.equal(_logits(tiny), adapted)  # restored
    set_adapter_enabled(tiny, False)
    assert torch.equal(_logits(tiny), base)
    set_adapter_enabled(tiny, True)
    assert torch.equal(_logits(tiny), adapted)


def test_adapters_disabled_restores_each_layer_even_after_an_error(tiny):
    inject_lora(tiny, LoRAConfig())
    first = next(iter(lora_layers(tiny).values()))
    first.adapter_enabled = False
    with pytest.raises(KeyError), adapters_disabled(tiny):
        raise KeyError("boom")
    states = [m.adapter_enabled for m in lora_layers(tiny).values()]
    assert states == [False] + [True] * (len(states) - 1)


def test_no_match_lists_the_models_linear_layers(tiny):
    with pytest.raises(ValueError, match="no layer of the model matches") as err:
        inject_lora(tiny, LoRAConfig(target_modules=("query", "value")))
    for name in LINEAR_NAMES:
        assert name in str(err.value)
    assert "lm_head" in str(err.value)
    assert all(p.requires_grad for p in tiny.parameters())  # nothing was touched


def test_a_misspelt_target_is_an_error(tiny):
    with pytest.raises(ValueError, match="q_porj"):
        inject_lora(tiny, LoRAConfig(target_modules=("q_porj", "v_proj")))
    assert not lora_layers(tiny)


def test_bad_arguments(tiny):
    with pytest.raises(TypeError, match="LoRAConfig"):
        inject_lora(tiny, {"r": 8})
    with pytest.raises(TypeError, match="nn.Module"):
        inject_lora("model", LoRAConfig())
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(tiny)
    with pytest.raises(ValueError, match="no LoRA layers"):
        unmerge_lora(tiny)
    with pytest.raises(ValueError, match="no LoRA layers"):
        set_adapter_enabled(tiny, False)
    inject_lora(tiny, LoRAConfig())
    with pytest.raises(ValueError, match="already has"):
        inject_lora(tiny, LoRAConfig())
    with pytest.raises(TypeError, match="True or False"):
        set_adapter_enabled(tiny, "off")


def test_linear_layer_names_skips_wrapped_bases(tiny):
    before = linear_layer_names(tiny)
    assert before["q_proj"] == 2 and before["lm_head"] == 1
    inject_lora(tiny, LoRAConfig())
    assert linear_layer_names(tiny) == before


def test_counts_the_course_model_without_weights():
    skeleton = lora_edu.model_skeleton()  # meta device: shapes only
    total = count_parameters(skeleton).total
    inject_lora(skeleton, LoRAConfig(r=8, target_modules=("q_proj", "v_proj")))
    count = count_parameters(skeleton)
    assert count.trainable == 30 * 8 * ((576 + 576) + (576 + 192))
    assert count.total == total + count.trainable


def test_tied_weights_are_counted_once(tiny):
    assert tiny.lm_head.weight is tiny.model.embed_tokens.weight
    assert count_parameters(tiny).total == sum(p.numel() for p in tiny.parameters())


# ----------------------------------------------------------------------------- parity with PEFT


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
@pytest.mark.parametrize(
    "targets, r, use_rslora",
    [(("q_proj", "v_proj"), 4, False), (LINEAR_NAMES, 2, False), (("q_proj", "o_proj", "down_proj"), 8, True)],
)
def test_same_logits_and_gradients_as_peft(tiny, targets, r, use_rslora):
    peft = pytest.importorskip("peft")
    twin = copy.deepcopy(tiny)
    ours = _randomise_all_B(inject_lora(tiny, LoRAConfig(r=r, alpha=16, target_modules=targets, use_rslora=use_rslora)))
    theirs = peft.get_peft_model(
        twin, peft.LoraConfig(r=r, lora_alpha=16, target_modules=list(targets), use_rslora=use_rslora)
    )
    our_layers = lora_layers(ours)
    with torch.no_grad():
        for name, module in theirs.named_modules():
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                mine = our_layers[name.removeprefix("base_model.model.")]
                module.lora_A["default"].weight.copy_(mine.lora_A)
                module.lora_B["default"].weight.copy_(mine.lora_B)

    assert count_parameters(ours).trainable == theirs.get_nb_trainable_parameters()[0]
    out1 = ours(input_ids=IDS, labels=IDS)
    out2 = theirs(input_ids=IDS, labels=IDS)
    torch.testing.assert_close(out1.logits, out2.logits, atol=1e-5, rtol=1e-4)
    out1.loss.backward()
    out2.loss.backward()
    their_params = dict(theirs.named_parameters())
    n = 0
    for name, layer in our_layers.items():
        for ab in "AB":
            theirs_grad = their_params[f"base_model.model.{name}.lora_{ab}.default.weight"].grad
            torch.testing.assert_close(getattr(layer, f"lora_{ab}").grad, theirs_grad, atol=1e-6, rtol=1e-4)
            n += 1
    assert n == 2 * len(our_layers)
