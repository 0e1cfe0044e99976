import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("CVBOOK_RESULTS_DIR", os.path.join(os.path.dirname(__file__), "..", "_build",
                                                         "test-results"))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield
