"""Shared fixtures: the real data in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os

# Idle OpenMP threads must sleep, not spin: on a shared 2-core machine spinning threads make small
# convolutions 50-100x slower. Only effective before torch starts OpenMP, hence first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACTIONREC_SHARED_DATA", ROOT.parent / "shared" / "data"))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real test data not found at {SHARED} (set ACTIONREC_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def videos_dir(shared_data: Path) -> Path:
    return shared_data / "videos"


@pytest.fixture
def one_thread():
    """One torch thread inside the test (exact comparisons of small models), the old count after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
