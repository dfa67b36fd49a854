"""Checkers for notebook 00 (start here): counting SmolLM2-135M's parameters by hand."""

from __future__ import annotations

from lora_edu.exercises._feedback import Feedback, numeric_answer, right, wrong
from lora_edu.models import LINEAR_NAMES, SMOLLM2_135M

_C = SMOLLM2_135M
_D = _C["hidden_size"]
_KV = _C["num_key_value_heads"] * _C["head_dim"]  # width of k_proj and v_proj outputs: 192
_ATTENTION = 2 * _D * _D + 2 * _D * _KV  # q, o: d x d;  k, v: d x kv  (no biases)
_EMBEDDING = _C["vocab_size"] * _D
_MLP = 3 * _D * _C["intermediate_size"]
_NORMS = (2 * _C["num_hidden_layers"] + 1) * _D
_TOTAL = _EMBEDDING + _C["num_hidden_layers"] * (_ATTENTION + _MLP) + _NORMS


@numeric_answer
def check_attention_params(value: float) -> Feedback:
    """Exercise 00.1: the parameters of q_proj, k_proj, v_proj and o_proj in one block of SmolLM2-135M."""
    if value == _ATTENTION:
        return right(
            f"{_ATTENTION:,} = 2·576·576 (q, o) + 2·576·192 (k, v). The narrow k and v are grouped-query "
            "attention: 9 query heads share 3 key/value heads of 64 dimensions."
        )
    if value == 4 * _D * _D:
        return wrong(
            "that is four 576 x 576 matrices. Look at k_proj and v_proj in the printed model: with "
            "grouped-query attention they map 576 -> 192 (3 key/value heads x 64), not 576 -> 576."
        )
    if value == _ATTENTION + _D:
        return wrong("close: you included the RMSNorm before attention (576 weights); count only the four projections.")
    if value == _C["num_hidden_layers"] * _ATTENTION:
        return wrong("that is the attention of all 30 blocks; the question asks for one block.")
    if value in (_D * _D, _D * _KV, _D * _D + _D * _KV):
        return wrong("you counted only some of the four projections: q, k, v and o all belong to attention.")
    return wrong(
        "count each projection as in_features x out_features (no biases in SmolLM2): q and o are "
        "576 -> 576, k and v are 576 -> 3·64."
    )


@numeric_answer
def check_embedding_share(value: float) -> Feedback:
    """Exercise 00.2: the share (0..1) of SmolLM2-135M's parameters held by the token embedding."""
    share = _EMBEDDING / _TOTAL
    if 1 < value <= 100 and abs(value / 100 - share) < 0.005:
        return wrong(f"that looks like a percentage; give the share as a fraction, e.g. {share:.3f}.")
    if abs(value - share) < 0.005:
        return right(
            f"{_EMBEDDING:,} / {_TOTAL:,} = {share:.3f}. A fifth of this small model is its vocabulary "
            "table; in a 7B model the same table is under 2%, so small models are unusually 'embedding-heavy'."
        )
    doubled = 2 * _EMBEDDING / (_TOTAL + _EMBEDDING)
    if abs(value - doubled) < 0.005:
        return wrong(
            "you counted the output head as a second matrix. SmolLM2 ties them: lm_head reuses the "
            "embedding's weights (tie_word_embeddings=True), so they are counted once."
        )
    return wrong("divide vocab_size x hidden_size (49152 x 576) by the model's total parameter count.")


@numeric_answer
def check_linear_layer_count(value: float) -> Feedback:
    """Exercise 00.3: how many nn.Linear layers LoRA would wrap when it targets all seven projection names."""
    expected = len(LINEAR_NAMES) * _C["num_hidden_layers"]
    if value == expected:
        return right(f"{len(LINEAR_NAMES)} per block x {_C['num_hidden_layers']} blocks = {expected}.")
    if value == len(LINEAR_NAMES):
        return wrong("that is the count in one block; every one of the 30 blocks has its own seven.")
    if value == expected + 1:
        return wrong("lm_head is a linear layer too, but it is not one of the seven target names (and it is tied to the embedding).")
    return wrong("count the target names in one block (q, k, v, o, gate, up, down) and multiply by the number of blocks.")
