"""LoRA: a frozen linear layer plus a trainable low-rank update (Hu et al., 2021, arXiv:2106.09685, §4.1).

A pretrained linear layer computes ``h = W0 x`` with ``W0`` of shape (d, k): d outputs, k inputs.
LoRA keeps ``W0`` whole and frozen and learns only an update ``ΔW = B A`` of rank at most r::

             ┌────────────────────┐
    x ──┬──► │ W0 (d x k), frozen │ ──────────────────────► W0 x ───┐
        │    └────────────────────┘                                 + ──► h
        │    ┌─────────────┐    ┌─────────────┐                     │
        └──► │  A (r x k)  │ ─► │  B (d x r)  │ ─► x alpha/r ───────┘
             │   random    │    │   zeros     │
             └─────────────┘    └─────────────┘
              trainable: r (d + k) numbers instead of d k

* **Shapes.** A maps the k inputs down to r numbers, B maps them up to the d outputs, so the update
  is ``B @ A`` (d x r times r x k), never ``A @ B``. In code (PEFT's and litgpt's names):
  ``lora_A`` has shape (r, in_features) and ``lora_B`` has shape (out_features, r).
* **Initialisation (§4.1).** B starts at zero, so ``B A = 0`` and the wrapped model is exactly the
  pretrained one at step 0. A starts random: ``"kaiming"`` (uniform, as loralib and PEFT do) or
  ``"gaussian"`` (as the paper's text says; std 1/r as PEFT uses). If A were zero too, both
  gradients would be zero and nothing would ever train.
* **Scaling.** The update is multiplied by ``alpha / r``, so changing r does not force a new learning
  rate. rsLoRA (Kalajdzievski, 2023, arXiv:2312.03732) uses ``alpha / sqrt(r)`` instead, which keeps
  the update's size from shrinking as r grows.
* **Merging (§4.1, "no additional inference latency").** ``W' = W0 + (alpha/r) B A`` has W0's shape,
  so after training the update can be added into the weight and the layer costs exactly what the
  plain layer did. Unmerging subtracts it again.

``LoRALinear`` wraps any module with integer ``in_features`` / ``out_features`` and a forward
(an ``nn.Linear``, or a frozen 4-bit layer in notebook 06); ``merge()`` needs a float ``weight``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

INITS = ("kaiming", "gaussian")


# ----------------------------------------------------------------------------- pure maths


def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """The factor the update is multiplied by: ``alpha / r`` (LoRA) or ``alpha / sqrt(r)`` (rsLoRA)."""
    _check_r(r)
    _check_alpha(alpha)
    return float(alpha) / (math.sqrt(r) if use_rslora else r)


def lora_param_count(d: int, k: int, r: int) -> int:
    """Trainable numbers of one LoRA update on a (d x k) weight: ``r (d + k)`` (B is d x r, A is r x k)."""
    for name, value in (("d", d), ("k", k), ("r", r)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return r * (d + k)


def lora_flop_ratio(d: int, k: int, r: int) -> float:
    """Extra multiply-adds per token of an *unmerged* LoRA layer, relative to the plain layer.

    The plain layer does ``d k`` per token; the side path does ``r k`` (A x) plus ``d r`` (B (A x)),
    so the ratio is ``r (d + k) / (d k)`` (the same number as the share of trainable parameters).
    """
    return lora_param_count(d, k, r) / (d * k)


def conv_lora_param_count(in_channels: int, out_channels: int, kernel_size: int, r: int) -> int:
    """Trainable numbers of LoRA on a square ``Conv2d``, as PEFT builds it.

    A is a (k x k) convolution from ``in_channels`` to r channels, B a 1 x 1 convolution from r to
    ``out_channels``: ``r (in_channels k^2 + out_channels)``. The conv weight itself has
    ``out_channels x in_channels x k^2`` numbers (it is an (out) x (in k^2) matrix once unfolded).
    """
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return lora_param_count(out_channels, in_channels * kernel_size**2, r)


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class LoRAConfig:
    """How to add LoRA to a model (the fields PEFT's ``LoraConfig`` calls r, lora_alpha, ...).

    Attributes:
        r: the rank of the update (>= 1).
        alpha: the scale numerator; the update is multiplied by alpha / r (> 0).
        dropout: dropout on the LoRA path's input, 0 <= dropout < 1.
        target_modules: last parts of module names to wrap, e.g. ``("q_proj", "v_proj")``.
        init: how A starts, ``"kaiming"`` (PEFT's default) or ``"gaussian"`` (the paper's text).
        use_rslora: scale by alpha / sqrt(r) instead of alpha / r.
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    init: str = "kaiming"
    use_rslora: bool = False

    def __post_init__(self) -> None:
        _check_r(self.r)
        _check_alpha(self.alpha)
        _check_dropout(self.dropout)
        _check_init(self.init)
        if not isinstance(self.use_rslora, bool):
            raise TypeError(f"use_rslora must be True or False, got {self.use_rslora!r}")
        targets = self.target_modules
        if isinstance(targets, str):
            targets = (targets,)
        try:
            targets = tuple(targets)
        except TypeError:
            raise TypeError(
                f"target_modules must be a list of module names such as ('q_proj', 'v_proj'), got {targets!r}"
            ) from None
        if not targets:
            raise ValueError("target_modules is empty: name at least one layer to adapt, e.g. ('q_proj', 'v_proj')")
        for name in targets:
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(
                    f"each target module is the last part of a module's name, like 'q_proj' "
                    f"(no dots, not empty); got {name!r}"
                )
        object.__setattr__(self, "target_modules", targets)
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "dropout", float(self.dropout))

    @property
    def scaling(self) -> float:
        """``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA."""
        return lora_scaling(self.alpha, self.r, self.use_rslora)


# ----------------------------------------------------------------------------- the layer


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update: ``base(x) + scaling * B A dropout(x)``.

    Args:
        base: the layer to adapt; any module with int ``in_features`` (k) and ``out_features`` (d).
            Its parameters are frozen here (``requires_grad=False``).
        r: the rank, 1 <= r <= min(k, d).
        alpha: the scale numerator (> 0).
        dropout: dropout probability on the LoRA path's input.
        init: ``"kaiming"`` or ``"gaussian"`` for A; B always starts at zero.
        use_rslora: scale by ``alpha / sqrt(r)`` instead of ``alpha / r``.

    Attributes:
        lora_A: (r, in_features), random.  lora_B: (out_features, r), zeros.
        merged: True while the update is added into ``base.weight``.
        adapter_enabled: False makes the layer compute ``base(x)`` only.
    """

    def __init__(
        self,
        base: nn.Module,
        r: int,
        alpha: float,
        dropout: float = 0.0,
        init: str = "kaiming",
        use_rslora: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be an nn.Module such as nn.Linear, got {type(base).__name__}")
        in_features = getattr(base, "in_features", None)
        out_features = getattr(base, "out_features", None)
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TypeError(
                    f"LoRALinear wraps layers with an int {name} (like nn.Linear); "
                    f"{type(base).__name__} has {name}={value!r}"
                )
        if isinstance(base, LoRALinear):
            raise TypeError("base is already a LoRALinear; wrap the plain layer (its .base) instead")
        _check_r(r)
        if r > min(in_features, out_features):
            raise ValueError(
                f"r={r} is larger than min(in_features, out_features) = min({in_features}, {out_features}); "
                f"a product B A of a ({out_features} x r) and an (r x {in_features}) matrix cannot have rank "
                f"above {min(in_features, out_features)}, so use r <= {min(in_features, out_features)}"
            )
        _check_alpha(alpha)
        _check_dropout(dropout)
        _check_init(init)
        if not isinstance(use_rslora, bool):
            raise TypeError(f"use_rslora must be True or False, got {use_rslora!r}")

        self.base = base
        base.requires_grad_(False)  # freeze explicitly: no gradient is ever computed for W0
        self.in_features = in_features
        self.out_features = out_features
        self.r = r
        self.alpha = float(alpha)
        self.dropout = float(dropout)
        self.init = init
        self.use_rslora = use_rslora
        self.scaling = lora_scaling(alpha, r, use_rslora)
        self.lora_dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

        device, dtype = _adapter_place(base)
        self.lora_A = nn.Parameter(torch.empty(r, in_features, device=device, dtype=dtype))  # (r, k)
        self.lora_B = nn.Parameter(torch.zeros(out_features, r, device=device, dtype=dtype))  # (d, r)
        self.reset_lora_parameters()
        self.merged = False
        self._adapter_enabled = True

    @classmethod
    def from_config(cls, base: nn.Module, config: LoRAConfig) -> LoRALinear:
        """Wrap ``base`` with the rank, alpha, dropout, init and scaling of ``config``."""
        if not isinstance(config, LoRAConfig):
            raise TypeError(f"config must be a LoRAConfig, got {type(config).__name__}")
        return cls(base, config.r, config.alpha, config.dropout, config.init, config.use_rslora)

    def reset_lora_parameters(self) -> None:
        """A random (kaiming-uniform or gaussian), B zero: the update B A starts at exactly zero."""
        with torch.no_grad():
            if self.init == "kaiming":
                # nn.Linear's own default: uniform in +-1/sqrt(k) (loralib, PEFT)
                nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            else:
                nn.init.normal_(self.lora_A, std=1.0 / self.r)
            nn.init.zeros_(self.lora_B)

    # -- on/off --------------------------------------------------------------------------------

    @property
    def adapter_enabled(self) -> bool:
        """Whether forward adds the update. Switching it off while merged unmerges first (as PEFT does)."""
        return self._adapter_enabled

    @adapter_enabled.setter
    def adapter_enabled(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"adapter_enabled must be True or False, got {enabled!r}")
        if not enabled and self.merged:
            self.unmerge()
        self._adapter_enabled = enabled

    # -- the maths -----------------------------------------------------------------------------

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling * B @ A``, shape (out_features, in_features) like ``base.weight``."""
        return self.scaling * (self.lora_B @ self.lora_A)  # (d, r) @ (r, k) -> (d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base(x) + scaling * B A dropout(x)``; x is (..., in_features), the result (..., out_features)."""
        result = self.base(x)  # (..., d); with merged weights this already includes the update
        if not self._adapter_enabled or self.merged:
            return result
        z = self.lora_dropout(x.to(self.lora_A.dtype))
        z = F.linear(z, self.lora_A)  # (..., k) -> (..., r)
        z = F.linear(z, self.lora_B)  # (..., r) -> (..., d)
        # result + scaling * z in one fused pass (no separate (..., d) tensor for scaling * z)
        return torch.add(result, z, alpha=self.scaling).to(result.dtype)

    # -- merging -------------------------------------------------------------------------------

    def merge(self) -> None:
        """Add the update into the base weight, ``W <- W0 + scaling B A``; a no-op when already merged."""
        if self.merged:
            return
        if not self._adapter_enabled:
            raise RuntimeError("the adapter is switched off; switch it on (adapter_enabled = True) before merging")
        weight = self._base_weight("merge")
        with torch.no_grad():
            weight += self.delta_weight().to(weight.dtype)
        self.merged = True

    def unmerge(self) -> None:
        """Subtract the update again, ``W <- W - scaling B A``; a no-op when not merged."""
        if not self.merged:
            return
        weight = self._base_weight("unmerge")
        with torch.no_grad():
            weight -= self.delta_weight().to(weight.dtype)
        self.merged = False

    def _base_weight(self, action: str) -> torch.Tensor:
        weight = getattr(self.base, "weight", None)
        if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
            raise TypeError(
                f"cannot {action}: the base layer ({type(self.base).__name__}) has no float weight to add "
                "the update to (a quantized base must be dequantized first); use the layer unmerged"
            )
        if weight.shape != (self.out_features, self.in_features):
            raise ValueError(
                f"cannot {action}: base.weight has shape {tuple(weight.shape)}, expected "
                f"(out_features, in_features) = ({self.out_features}, {self.in_features})"
            )
        return weight

    def extra_repr(self) -> str:
        rs = ", rslora" if self.use_rslora else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
            f"alpha={self.alpha:g}, scaling={self.scaling:.4g}{rs}, merged={self.merged}, "
            f"adapter_enabled={self._adapter_enabled}"
        )


# ----------------------------------------------------------------------------- scaling as r grows


def update_size_after_training(
    ranks: tuple[int, ...] = (1, 4, 16, 64),
    steps: int = 20,
    lr: float = 1e-3,
    d: int = 256,
    k: int = 256,
    alpha: float = 16.0,
    seed: int = 0,
) -> dict[str, list[float]]:
    """``||ΔW||_F`` after ``steps`` Adam steps on one layer, per rank, with alpha/r and with rsLoRA.

    The same regression task (a random rank-16 target update), learning rate and seed for every run;
    only r and the scaling change. Adam moves every entry of B by about ``lr`` per step whatever r is,
    so ``B A`` grows like sqrt(r): alpha/r then shrinks the update like 1/sqrt(r), alpha/sqrt(r) keeps it
    level (Kalajdzievski, 2023, arXiv:2312.03732). Returns ``{"alpha/r": [...], "alpha/sqrt(r)": [...]}``.
    """
    sizes: dict[str, list[float]] = {"alpha/r": [], "alpha/sqrt(r)": []}
    with torch.random.fork_rng(devices=[]):
        for use_rslora, key in ((False, "alpha/r"), (True, "alpha/sqrt(r)")):
            for r in ranks:
                torch.manual_seed(seed)
                base = nn.Linear(k, d, bias=False)
                target = torch.randn(d, 16) @ torch.randn(16, k) / 16  # (d, k), rank 16
                x = torch.randn(128, k)  # (n, k)
                y = (base(x) + x @ target.T).detach()  # (n, d)
                layer = LoRALinear(base, r, alpha, use_rslora=use_rslora)
                opt = torch.optim.Adam([layer.lora_A, layer.lora_B], lr=lr)
                for _ in range(steps):
                    opt.zero_grad()
                    F.mse_loss(layer(x), y).backward()
                    opt.step()
                sizes[key].append(layer.delta_weight().norm().item())
    return sizes


# ----------------------------------------------------------------------------- validation


def _adapter_place(base: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the adapters live: the base's device; float32 at least (as PEFT keeps them for 16-bit bases)."""
    weight = getattr(base, "weight", None)
    tensors = [weight] if isinstance(weight, torch.Tensor) else []
    tensors += list(base.parameters()) + list(base.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    dtype = torch.promote_types(floats[0], torch.float32) if floats else torch.float32
    return device, dtype


def _check_r(r: object) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r (the rank) must be an int >= 1, got {r!r}")


def _check_alpha(alpha: object) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number (the update is scaled by alpha / r), got {alpha!r}")


def _check_dropout(dropout: object) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability with 0 <= dropout < 1, got {dropout!r}")


def _check_init(init: object) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} ('kaiming' as PEFT, 'gaussian' as the paper), got {init!r}")
