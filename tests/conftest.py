"""Shared fixtures: tiny random models (milliseconds) and the real course model (loaded once)."""

from __future__ import annotations

import pytest
import torch

import lora_edu


@pytest.fixture
def tiny():
    """A fresh tiny Llama model with the course model's module names."""
    return lora_edu.tiny_model()


@pytest.fixture(scope="session")
def real_model():
    """SmolLM2-135M-Instruct on the CPU, loaded once per test session (from the cache after the first run)."""
    return lora_edu.load_model(device="cpu")


@pytest.fixture(scope="session")
def tok(real_model):
    """The real course model's tokenizer."""
    return real_model[1]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

