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


def _devices() -> list[str]:
    """CPU always; CUDA too when present (``CVBOOK_TEST_DEVICES=cpu,cuda`` overrides), so a
    run of the suite on a GPU machine exercises the device paths."""
    env = os.environ.get("CVBOOK_TEST_DEVICES")
    if env:
        return [d.strip() for d in env.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    """The device a shared-code test runs on (kornia style): CPU by default, CUDA when
    present. Use with ``dtype=torch.float64`` for gradcheck."""
    return torch.device(request.param)
