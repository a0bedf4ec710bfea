"""Shared fixtures: seeded generators and the torch device list (CUDA only when present)."""
import numpy as np
import pytest
import torch

CUDA_SKIP = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="no CUDA device on this machine (CI has none); CPU path tested")

DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_SKIP)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
