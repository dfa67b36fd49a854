"""lora_edu: the tested code behind the LoRA course's notebooks.

The names a learner uses are re-exported here; ``lora_edu.<module>`` holds the rest:

    runtime    device and run profile (LORA_EDU_PROFILE), seeds, the environment report
    lora       LoRALinear and LoRAConfig: the low-rank update, its scaling, merge/unmerge
    inject     inject_lora into a whole model, count, merge, switch adapters on and off
    models     the offline SmolLM2-135M-Instruct, tiny test models, asking the model questions
    plot       every plot (returns matplotlib Figures)
    figures    ``python -m lora_edu.figures`` writes the course's key figures to figures/
    exercises  checkers for the notebooks' exercises
"""

__version__ = "0.1.0"

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
from lora_edu.runtime import (
    PROFILES,
    Profile,
    environment_report,
    get_device,
    get_profile,
    print_environment,
    set_seed,
)

__all__ = [
    "DEFAULT_MODEL",
    "LINEAR_NAMES",
    "PROFILES",
    "ModelLoadError",
    "Profile",
    "ask",
    "ask_many",
    "chat_prompt",
    "environment_report",
    "get_device",
    "get_profile",
    "load_model",
    "model_skeleton",
    "parameter_breakdown",
    "print_environment",
    "set_seed",
    "tiny_model",
]
