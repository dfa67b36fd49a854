"""Exercise checkers: call ``check_...(answer)`` and read the feedback it returns.

Each notebook's checkers live in their own module (``nb00``, ``nb01``, ...) and are re-exported here.
"""

from lora_edu.exercises._feedback import Feedback
from lora_edu.exercises.nb00 import check_attention_params, check_embedding_share, check_linear_layer_count

__all__ = ["Feedback", "check_attention_params", "check_embedding_share", "check_linear_layer_count"]
