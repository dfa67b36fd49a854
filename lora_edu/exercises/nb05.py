"""Checkers for notebook 05 (fine-tuning a small transformer): adapter sizes and picking a rank."""

from __future__ import annotations

from collections.abc import Mapping

from lora_edu.exercises._feedback import NOT_ANSWERED, Feedback, as_number, not_a_number, numeric_answer, right, wrong
from lora_edu.models import SMOLLM2_135M

_C = SMOLLM2_135M
_D = _C["hidden_size"]  # 576
_KV = _C["num_key_value_heads"] * _C["head_dim"]  # 192
_F = _C["intermediate_size"]  # 1536
_L = _C["num_hidden_layers"]  # 30
_SHAPES = {  # (d_out, k_in) of each projection
    "q_proj": (_D, _D), "k_proj": (_KV, _D), "v_proj": (_KV, _D), "o_proj": (_D, _D),
    "gate_proj": (_F, _D), "up_proj": (_F, _D), "down_proj": (_D, _F),
}
_TOTAL = (_C["vocab_size"] * _D + _L * sum(d * k for d, k in _SHAPES.values())
          + (2 * _L + 1) * _D)  # embedding (tied) + linear layers + RMSNorms = 134,515,008


def _lora_params(r: int, targets: tuple[str, ...]) -> int:
    return _L * sum(r * (_SHAPES[t][0] + _SHAPES[t][1]) for t in targets)


@numeric_answer
def check_adapter_bytes(value: float) -> Feedback:
    """Exercise 05.1: bytes of the tensors in an r=4 adapter on q_proj and v_proj of SmolLM2-135M, in float32."""
    params = _lora_params(4, ("q_proj", "v_proj"))
    expected = 4 * params
    if abs(value - expected) <= 0.01 * expected:
        return right(
            f"{_L} blocks x 4 x [(576 + 576) + (192 + 576)] = {params:,} numbers x 4 bytes = {expected:,} bytes "
            f"(~{expected / 1e6:.2f} MB), against ~{4 * _TOTAL / 1e6:.0f} MB for the float32 base model."
        )
    if abs(value - params) <= 0.01 * params:
        return wrong("that is the number of parameters; each float32 number takes 4 bytes.")
    if abs(value - 2 * params) <= 0.01 * params:
        return wrong("that is the size in 16-bit; the adapters here are float32 (4 bytes per number).")
    if abs(value - expected / _L) <= 0.01 * expected / _L:
        return wrong(f"that is one block; the adapter covers q_proj and v_proj in all {_L} blocks.")
    if abs(value - 4 * _lora_params(4, ("q_proj", "q_proj"))) <= 0.01 * expected:
        return wrong("v_proj is narrower than q_proj: grouped-query attention makes it 576 -> 192, so B is 192 x r.")
    if abs(value - 4 * _L * (_D * _D + _KV * _D)) <= 0.01 * expected:
        return wrong("that is the size of the full q and v weights (d x k); LoRA stores r (d + k) per layer.")
    return wrong("per adapted layer LoRA stores A (r x k) and B (d x r): r (d + k) numbers. Add q and v, "
                 f"multiply by the {_L} blocks, then by 4 bytes.")


@numeric_answer
def check_all_linear_params(value: float) -> Feedback:
    """Exercise 05.2: trainable parameters of LoRA r=8 on all seven linear layers of every block of SmolLM2-135M."""
    expected = _lora_params(8, tuple(_SHAPES))
    if value == expected:
        return right(f"{expected:,} = {_L} x 8 x (1152 + 768 + 768 + 1152 + 2112 + 2112 + 2112): "
                     f"{expected / _TOTAL:.1%} of the model, with the MLP holding most of it.")
    attention = _lora_params(8, ("q_proj", "k_proj", "v_proj", "o_proj"))
    if value == attention:
        return wrong("that is the four attention projections; 'all linear' adds gate_proj, up_proj and down_proj.")
    if value == expected // _L:
        return wrong(f"that is one block; multiply by the {_L} blocks.")
    if value == _lora_params(8, ("q_proj",) * 7):
        return wrong("the seven layers have different shapes: k and v are 576 -> 192, the MLP's are 576 <-> 1536.")
    return wrong("sum r (d + k) over q, k, v, o (576->576, 576->192, 576->192, 576->576) and gate, up, down "
                 "(576->1536, 576->1536, 1536->576), then multiply by the 30 blocks.")


def smallest_good_rank(accuracies: Mapping[int, float], tolerance: float = 0.05) -> int:
    """The smallest rank whose accuracy is within ``tolerance`` of the best one."""
    best = max(accuracies.values())
    return min(r for r, acc in accuracies.items() if acc >= best - tolerance)


def check_smallest_good_rank(answer: object, accuracies: Mapping[int, float]) -> Feedback:
    """Exercise 05.3: from your sweep ({rank: accuracy}), the smallest rank within 5 points of the best."""
    if answer is None:
        return NOT_ANSWERED
    if not accuracies:
        return wrong("pass the sweep's results as the second argument, e.g. {1: 0.8, 4: 0.9}.")
    value = as_number(answer)
    if value is None:
        return not_a_number(answer)
    expected = smallest_good_rank(accuracies)
    best_rank = max(accuracies, key=accuracies.get)
    if value == expected:
        return right(f"r = {expected} gets {accuracies[expected]:.0%}, within 5 points of the best "
                     f"({accuracies[best_rank]:.0%}); a smaller adapter, as good. This is the LoRA paper's "
                     "observation (§7.2): very small ranks often suffice.")
    if value not in accuracies:
        return wrong(f"pick one of the ranks the sweep tried: {sorted(accuracies)}.")
    if value == best_rank:
        return wrong("that is the best rank; the question asks for the smallest rank that comes within 5 points of it.")
    if accuracies[int(value)] < max(accuracies.values()) - 0.05:
        return wrong(f"r = {int(value)} is more than 5 points below the best ({accuracies[int(value)]:.0%} vs "
                     f"{max(accuracies.values()):.0%}).")
    return wrong(f"r = {int(value)} is good enough, but a smaller rank is too: look further left on the plot.")
