"""Exercise checkers: call ``check_...(answer)`` and read the feedback it returns.

Each notebook's checkers live in their own module (``nb00``, ``nb01``, ...) and are re-exported here.
"""

from lora_edu.exercises._feedback import Feedback
from lora_edu.exercises.nb00 import check_attention_params, check_embedding_share, check_linear_layer_count
from lora_edu.exercises.nb01 import check_factored_size, check_matrix_rank, check_rank_for_energy, check_truncation_error
from lora_edu.exercises.nb02 import check_backprop_methods, check_conv_lora_share, check_soft_prompt_params
from lora_edu.exercises.nb03 import check_both_zero, check_merge, check_trainable_count
from lora_edu.exercises.nb04 import check_full_finetune_memory, check_largest_lora_model, check_qlora_bits
from lora_edu.exercises.nb05 import check_adapter_bytes, check_all_linear_params, check_smallest_good_rank
from lora_edu.exercises.nb06 import check_base_gb, check_max_error, check_nf4_codes, check_what_is_4bit

__all__ = [
    "Feedback",
    "check_adapter_bytes",
    "check_all_linear_params",
    "check_attention_params",
    "check_backprop_methods",
    "check_base_gb",
    "check_both_zero",
    "check_conv_lora_share",
    "check_embedding_share",
    "check_factored_size",
    "check_full_finetune_memory",
    "check_largest_lora_model",
    "check_linear_layer_count",
    "check_matrix_rank",
    "check_max_error",
    "check_merge",
    "check_nf4_codes",
    "check_qlora_bits",
    "check_rank_for_energy",
    "check_smallest_good_rank",
    "check_soft_prompt_params",
    "check_trainable_count",
    "check_truncation_error",
    "check_what_is_4bit",
]
