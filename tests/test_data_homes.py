"""cvbook.data shared homes: ImageNet constants, default data folder, class splits,
tensor/folder sources and the one mini-batch iterator."""

import numpy as np
import pytest
import torch

from cvbook.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet
from cvbook.data.loaders import TensorBatches
from cvbook.data.paths import default_data_root
from cvbook.data.sources import TensorSource
from cvbook.data.splits import dataset_to_tensors, load_digits, split_novel
from cvbook.image.crops import center_crop


def test_imagenet_constants_once():
    import cvbook.data.voc as voc
    import cvbook.fixres as fixres

    assert voc.IMAGENET_MEAN is IMAGENET_MEAN and fixres.IMAGENET_STD is IMAGENET_STD
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64)
    ref = (x - torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[:, None, None]) / \
        torch.tensor(IMAGENET_STD, dtype=torch.float64)[:, None, None]
    torch.testing.assert_close(normalize_imagenet(x), ref)
    with pytest.raises(ValueError, match="images must have shape"):
        normalize_imagenet(torch.rand(1, 4, 2, 2))


def test_default_data_root(monkeypatch, tmp_path):
    import subprocess
    from pathlib import Path

    monkeypatch.delenv("CVBOOK_DATA_DIR", raising=False)
    root = default_data_root()
    import cvbook

    repo = Path(cvbook.__file__).resolve().parents[2]  # the checkout cvbook runs from
    assert root == repo / "data"
    # the folder is git-ignored, so a download never lands in a commit
    r = subprocess.run(["git", "check-ignore", "-q", str(root / "cifar-10-batches-py")],
                       cwd=repo, check=False)
    assert r.returncode == 0
    monkeypatch.setenv("CVBOOK_DATA_DIR", str(tmp_path))
    assert default_data_root() == tmp_path


def test_digits_and_cifar_style_adapter():
    x, y = load_digits()
    assert x.shape == (1797, 1, 8, 8) and y.dtype == torch.int64 and float(x.max()) == 1.0

    class FakeCifar:
        data = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
        targets = [0, 1, 2, 0, 1, 2]

    xi, yi = dataset_to_tensors(FakeCifar())
    assert xi.shape == (6, 3, 4, 4) and yi.tolist() == FakeCifar.targets
    torch.testing.assert_close(xi[0, :, 0, 0] * 255, torch.tensor(FakeCifar.data[0, 0, 0],
                                                                   dtype=torch.float32))
    with pytest.raises(TypeError, match="targets"):
        dataset_to_tensors(object())


@pytest.mark.parametrize("n_per", [1, 3])
def test_split_novel(device, n_per):
    y = torch.arange(4, device=device).repeat(n_per)
    x = torch.rand(y.numel(), 1, 2, 2, device=device)
    s = split_novel(x, y, known=(3,), unknown=(0, 2), probes=(1,))
    assert s.x_lab.shape[0] == n_per and s.x_unlab.shape[0] == 2 * n_per
    assert s.x_probe.shape[0] == n_per and s.x_unlab.device == x.device
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) with N = "):
        split_novel(x, y[:-1], known=(3,), unknown=(0, 2))


def test_tensor_batches_transform_and_order(device):
    x = torch.arange(10.0, device=device)[:, None]
    y = torch.arange(10, device=device)
    b = TensorBatches(x, y, batch_size=4, shuffle=False, transform=lambda t: -t)
    got = list(b)
    assert len(b) == len(got) == 3
    assert torch.equal(got[0][0][:, 0], -torch.arange(4.0, device=device))
    assert torch.equal(got[2][1], torch.tensor([8, 9], device=device))
    g = torch.Generator(device).manual_seed(0)
    seen = torch.cat([yb for _, yb in TensorBatches(x, y, batch_size=3, generator=g)])
    assert sorted(seen.tolist()) == list(range(10))


@pytest.mark.parametrize("n", [1, 3])
def test_tensor_source_batches(device, n):
    x = torch.rand(n, 3, 20, 20, device=device)
    y = torch.zeros(n, dtype=torch.int64, device=device)
    src = TensorSource(x, y, x, y, num_classes=2, batch_size=2, mean=(0.5,) * 3,
                       std=(0.25,) * 3)
    xb, yb = next(iter(src.test_batches(12)))
    torch.testing.assert_close(xb, (center_crop(x[:2], 12) - 0.5) / 0.25)
    xt, _ = next(iter(src.train_batches(12)))
    assert xt.shape == (min(n, 2), 3, 12, 12)
    with pytest.raises(ValueError, match=r"test_images must have shape \(M, C, \*, \*\)"):
        TensorSource(x, y, x[:, :1], y, num_classes=2)
