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


# What `make check` (pytest -m "not slow") leaves out, by file: the edit-test loop keeps the
# reference, the checks (one simulated mistake per graded function: the others are marked
# slow in test_assignment_checks.py), the wire, the CLI on a tiny class and the book's helpers.
SLOW = {
    "test_book.py": "builds the book and reads it in Chromium",
    "test_adversarial.py": "grades every assignment's hostile class",
    "test_walls.py": "grades a hostile class against the sandbox's walls",
    "test_docs_commands.py": "runs the README's commands in a fresh copy of the repository",
    "test_grading_cluster.py": "grades on a dask cluster",
    "test_grading_postgres.py": "grades into a PostgreSQL gradebook",
    "test_grading_durability.py": "kills and resumes graders mid-class",
    "test_nbgrader_fixtures.py": "runs nbgrader autograde side by side",
    "test_course_notebooks.py": "executes every solution notebook",
    "test_sandbox.py": "starts kernels cold and warm, wall by wall",
    "test_formgrader.py": "grades a class and starts a Jupyter server with the formgrader",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        why = SLOW.get(item.path.name)
        if why is not None:
            item.add_marker(pytest.mark.slow(reason=why))
