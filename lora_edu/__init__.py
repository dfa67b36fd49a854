"""lora_edu: the tested code behind the LoRA course's notebooks.

The names a learner uses are re-exported here; ``lora_edu.<module>`` holds the rest:

    runtime    device and run profile (LORA_EDU_PROFILE), seeds, the environment report
    rank       rank, SVD, the best rank-r approximation, energy, effective rank, weight spectra
    lora       LoRALinear and LoRAConfig: the low-rank update, its scaling, merge/unmerge
    inject     inject_lora into a whole model, count, merge, switch adapters on and off
    memory     training memory by part (weights, gradients, optimizer, activations), estimated from the shape
    measure    the same parts measured: one real training step, its tensors counted byte by byte
    models     the offline SmolLM2-135M-Instruct, tiny test models, asking the model questions
    cache      the verified on-disk cache the model loads from (manifest, SHA-256, atomic rename)
    data       the synthetic tasks (dates, extract), splits, answer-only labels, exact match
    train      a short training loop (AdamW, warmup + cosine, clipping)
    evaluation exact-match accuracy: greedy generation, or one teacher-forced pass per batch
    adapters   save / load LoRA adapters in PEFT's format, check the base model is unchanged
    quant      NF4 / Int4 / FP4 blockwise quantisation, double quantisation
    qlinear    QLoRA's frozen 4-bit layer, quantize_model, the bytes a quantised model's weights take
    plot       every plot (returns matplotlib Figures)
    figures    ``python -m lora_edu.figures`` writes the course's key figures to figures/
    exercises  checkers for the notebooks' exercises
"""

__version__ = "0.1.0"

from lora_edu.adapters import adapter_size, base_fingerprint, load_adapter, save_adapter
from lora_edu.data import TASKS, Example, exact_match, make_examples
from lora_edu.evaluation import EvalResult, evaluate, greedy_match_accuracy
from lora_edu.inject import (
    ParamCount,
    adapters_disabled,
    count_parameters,
    inject_lora,
    lora_layers,
    merge_lora,
    set_adapter_enabled,
    unmerge_lora,
)
from lora_edu.lora import LoRAConfig, LoRALinear, lora_flop_ratio, lora_param_count, lora_scaling
from lora_edu.measure import measure_training_memory
from lora_edu.memory import (
    MemoryBreakdown,
    ModelShape,
    checkpoint_bytes,
    estimate_training_memory,
    format_bytes,
)
from lora_edu.models import (
    DEFAULT_MODEL,
    LINEAR_NAMES,
    ModelLoadError,
    ask,
    ask_many,
    chat_prompt,
    load_model,
    model_skeleton,
    parameter_breakdown,
    tiny_model,
)
from lora_edu.qlinear import FrozenLinear4bit, WeightBytes, quantize_model, weight_bytes
from lora_edu.quant import (
    QuantizedTensor,
    bits_per_parameter,
    dequantize_4bit,
    double_quantize,
    fp4_code,
    int4_code,
    nf4_code,
    nf4_dequantize,
    nf4_quantize,
    quantization_error,
    quantize_4bit,
)
from lora_edu.rank import collect_spectra, effective_rank, energy_kept, factorize, numerical_rank, truncated_svd
from lora_edu.runtime import (
    PROFILES,
    Profile,
    environment_report,
    get_device,
    get_profile,
    print_environment,
    set_seed,
)
from lora_edu.train import History, TrainConfig

__all__ = [
    "DEFAULT_MODEL",
    "EvalResult",
    "Example",
    "FrozenLinear4bit",
    "History",
    "LINEAR_NAMES",
    "LoRAConfig",
    "LoRALinear",
    "MemoryBreakdown",
    "ModelLoadError",
    "ModelShape",
    "PROFILES",
    "ParamCount",
    "Profile",
    "QuantizedTensor",
    "TASKS",
    "TrainConfig",
    "WeightBytes",
    "adapter_size",
    "adapters_disabled",
    "ask",
    "ask_many",
    "base_fingerprint",
    "bits_per_parameter",
    "chat_prompt",
    "checkpoint_bytes",
    "collect_spectra",
    "count_parameters",
    "dequantize_4bit",
    "double_quantize",
    "effective_rank",
    "energy_kept",
    "environment_report",
    "estimate_training_memory",
    "evaluate",
    "exact_match",
    "factorize",
    "format_bytes",
    "fp4_code",
    "get_device",
    "get_profile",
    "greedy_match_accuracy",
    "inject_lora",
    "int4_code",
    "load_adapter",
    "load_model",
    "lora_flop_ratio",
    "lora_layers",
    "lora_param_count",
    "lora_scaling",
    "make_examples",
    "measure_training_memory",
    "merge_lora",
    "model_skeleton",
    "nf4_code",
    "nf4_dequantize",
    "nf4_quantize",
    "numerical_rank",
    "parameter_breakdown",
    "print_environment",
    "quantization_error",
    "quantize_4bit",
    "quantize_model",
    "save_adapter",
    "set_adapter_enabled",
    "set_seed",
    "tiny_model",
    "truncated_svd",
    "unmerge_lora",
    "weight_bytes",
]
