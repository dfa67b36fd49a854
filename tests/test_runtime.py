"""Run profiles and device selection (lora_edu.runtime)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lora_edu import runtime


def test_profile_comes_from_the_environment(monkeypatch):
    for name in ("smoke", "cpu", "gpu"):
        monkeypatch.setenv(runtime.PROFILE_ENV, name)
        if name == "gpu" and runtime.get_device().type == "cpu":
            with pytest.warns(UserWarning, match="no GPU"):
                assert runtime.get_profile().name == name
        else:
            assert runtime.get_profile().name == name


def test_profile_name_is_forgiving_about_case_and_spaces(monkeypatch):
    monkeypatch.setenv(runtime.PROFILE_ENV, " Smoke ")
    assert runtime.get_profile().name == "smoke"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(runtime.PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match=r"Unknown run profile 'fast'.*smoke, cpu, gpu.*LORA_EDU_PROFILE"):
        runtime.get_profile()
    with pytest.raises(ValueError, match="from the argument"):
        runtime.get_profile("turbo")


@pytest.mark.parametrize("device, expected", [("cpu", "cpu"), ("cuda", "gpu"), ("mps", "gpu")])
def test_default_profile_follows_the_device(monkeypatch, device, expected):
    monkeypatch.delenv(runtime.PROFILE_ENV, raising=False)
    monkeypatch.setattr(runtime, "get_device", lambda: torch.device(device))
    assert runtime.get_profile().name == expected


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device().type == "cpu"


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (runtime.PROFILES[n] for n in ("smoke", "cpu", "gpu"))
    for field in ("train_steps", "n_train", "n_eval", "sweep_steps"):
        assert getattr(smoke, field) <= getattr(cpu, field) <= getattr(gpu, field), field
    assert set(smoke.ranks) <= set(gpu.ranks)


def test_profiles_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        runtime.PROFILES["smoke"].train_steps = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="train_steps"):
        dataclasses.replace(runtime.PROFILES["smoke"], train_steps=-1)
    with pytest.raises(ValueError, match="ranks"):
        dataclasses.replace(runtime.PROFILES["smoke"], ranks=(0,))
    with pytest.raises(ValueError, match="name"):
        dataclasses.replace(runtime.PROFILES["smoke"], name="tiny")


def test_set_seed_repeats_random_draws():
    runtime.set_seed(3)
    a = torch.randn(5)
    runtime.set_seed(3)
    assert torch.equal(a, torch.randn(5))


def test_environment_report_names_versions_device_and_profile(monkeypatch, capsys):
    monkeypatch.setenv(runtime.PROFILE_ENV, "smoke")
    report = runtime.environment_report()
    assert report["torch"] == torch.__version__
    assert report["run profile"].startswith("smoke")
    assert report["device"].startswith(runtime.get_device().type)
    runtime.print_environment()
    assert "run profile" in capsys.readouterr().out
