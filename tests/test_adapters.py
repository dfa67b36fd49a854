"""Adapters saved in PEFT's format: round trips (ours and PEFT's), swaps, atomic writes, clear errors."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import lora_edu
from lora_edu.adapters import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    AdapterMismatchError,
    adapter_size,
    adapter_state_dict,
    load_adapter,
    read_adapter_config,
    save_adapter,
)
from lora_edu.inject import inject_lora, lora_layers, merge_lora
from lora_edu.lora import LoRAConfig

QV = LoRAConfig(r=4, alpha=8.0, target_modules=("q_proj", "v_proj"))
IDS = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))


def _trained(config=QV, seed=0, **tiny):
    """A tiny model with LoRA whose B matrices are random (as if trained), so the adapter matters."""
    model = inject_lora(lora_edu.tiny_model(**tiny), config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=gen) * 0.3)
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.3)
    return model


def _logits(model):
    with torch.no_grad():
        return model(IDS).logits


def test_round_trip_gives_the_same_logits(tmp_path):
    model = _trained()
    folder = save_adapter(model, tmp_path / "a")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    fresh = load_adapter(lora_edu.tiny_model(), folder)  # no LoRA yet: injected from the saved config
    torch.testing.assert_close(_logits(fresh), _logits(model))
    assert read_adapter_config(folder) == LoRAConfig(r=4, alpha=8.0, target_modules=("q_proj", "v_proj"))
    assert adapter_size(folder) > sum(t.numel() * 4 for t in adapter_state_dict(model).values())


def test_file_uses_peft_key_names_and_config(tmp_path):
    from safetensors.torch import load_file

    folder = save_adapter(_trained(), tmp_path / "a", base_model_name="tiny-llama")
    keys = sorted(load_file(folder / WEIGHTS_NAME))
    assert keys[0] == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert len(keys) == 2 * 2 * 2  # 2 layers x (q, v) x (A, B)
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8.0
    assert config["target_modules"] == ["q_proj", "v_proj"] and config["base_model_name_or_path"] == "tiny-llama"


def _peft():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import peft
    return peft


@pytest.mark.parametrize("use_rslora", [False, True])
def test_peft_loads_our_adapter_with_the_same_logits(tmp_path, use_rslora):
    peft = _peft()
    config = LoRAConfig(r=4, alpha=8.0, target_modules=("q_proj", "k_proj", "down_proj"), use_rslora=use_rslora)
    model = _trained(config)
    folder = save_adapter(model, tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.PeftModel.from_pretrained(lora_edu.tiny_model(), str(folder)).eval()
    torch.testing.assert_close(_logits(theirs), _logits(model))
    assert not torch.allclose(_logits(theirs), _logits(lora_edu.tiny_model()))  # the adapter does something


def test_we_load_peft_adapters_with_the_same_logits(tmp_path):
    peft = _peft()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(
            lora_edu.tiny_model(), peft.LoraConfig(r=2, lora_alpha=6, target_modules=["o_proj", "up_proj"])
        )
        with torch.no_grad():
            for name, p in theirs.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.3)
        theirs.save_pretrained(str(tmp_path / "peft"))
    ours = load_adapter(lora_edu.tiny_model(), tmp_path / "peft")
    assert {n.rsplit(".", 1)[-1] for n in lora_layers(ours)} == {"o_proj", "up_proj"}
    torch.testing.assert_close(_logits(ours), _logits(theirs.eval()))


def test_swapping_adapters_keeps_the_base(tmp_path):
    one, two = _trained(seed=1), _trained(seed=2)
    save_adapter(one, tmp_path / "one")
    save_adapter(two, tmp_path / "two")
    model = inject_lora(lora_edu.tiny_model(), QV)
    base = {n: p.clone() for n, p in model.named_parameters() if "lora_" not in n}
    load_adapter(model, tmp_path / "one")
    torch.testing.assert_close(_logits(model), _logits(one))
    load_adapter(model, tmp_path / "two")
    torch.testing.assert_close(_logits(model), _logits(two))
    for name, p in model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, base[name]), f"{name} changed"


def test_refuses_to_overwrite_unless_asked(tmp_path):
    folder = save_adapter(_trained(seed=1), tmp_path / "a")
    before = (folder / WEIGHTS_NAME).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_adapter(_trained(seed=2), folder)
    assert (folder / WEIGHTS_NAME).read_bytes() == before
    save_adapter(_trained(seed=2), folder, overwrite=True)
    assert (folder / WEIGHTS_NAME).read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary folders left behind


def test_loading_never_unpickles(tmp_path, monkeypatch):
    folder = save_adapter(_trained(), tmp_path / "a")

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_pickles)
    load_adapter(lora_edu.tiny_model(), folder)


def test_wrong_base_model_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_adapter(_trained(), tmp_path / "a")
    plain = lora_edu.tiny_model(hidden_size=32)
    with pytest.raises(AdapterMismatchError, match="another base model"):
        load_adapter(plain, folder)
    assert not lora_layers(plain)  # a failed load leaves the model as it was
    with pytest.raises(AdapterMismatchError, match="another base model"):
        load_adapter(lora_edu.tiny_model(num_layers=1), folder)
    # Without our fingerprint (e.g. an adapter PEFT wrote) the layer names and shapes still tell.
    path = folder / WEIGHTS_NAME
    save_file(load_file(path), path)
    with pytest.raises(AdapterMismatchError, match=r"maps 64 -> 64 features in the adapter but 32 -> 32"):
        load_adapter(lora_edu.tiny_model(hidden_size=32), folder)
    with pytest.raises(AdapterMismatchError, match="model.layers.1.self_attn.q_proj, which this model does not have"):
        load_adapter(lora_edu.tiny_model(num_layers=1), folder)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (LoRAConfig(r=8, alpha=16.0, target_modules=("q_proj", "v_proj")), "rank differs: the adapter has r=4"),
        (LoRAConfig(r=4, alpha=8.0, target_modules=("q_proj", "k_proj", "v_proj")), "target modules differ"),
        (LoRAConfig(r=4, alpha=4.0, target_modules=("q_proj", "v_proj")), "scaling differs"),
    ],
)
def test_other_rank_targets_or_alpha_are_named(tmp_path, config, message):
    folder = save_adapter(_trained(), tmp_path / "a")
    with pytest.raises(AdapterMismatchError, match=message):
        load_adapter(inject_lora(lora_edu.tiny_model(), config), folder)


def test_merged_and_missing_are_errors(tmp_path):
    model = _trained()
    merge_lora(model)
    with pytest.raises(ValueError, match="unmerge"):
        save_adapter(model, tmp_path / "a")
    with pytest.raises(ValueError, match="no LoRA layers"):
        save_adapter(lora_edu.tiny_model(), tmp_path / "b")
    with pytest.raises(FileNotFoundError):
        load_adapter(lora_edu.tiny_model(), tmp_path / "nothing")


def test_base_fingerprint_sees_any_base_change_but_not_lora():
    from lora_edu.adapters import base_fingerprint

    plain = lora_edu.tiny_model()
    before = base_fingerprint(plain)
    model = _trained()  # same base (tiny_model seed 0) plus trained adapters
    assert base_fingerprint(model) == before
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] += 1e-6
    assert base_fingerprint(model) != before
