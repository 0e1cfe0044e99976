"""A tiny fake PASCAL VOC 2007 folder in the real format, for the attribution chapters'
``full`` presets (``tests/fullrun.py``): ``VOCdevkit/VOC2007/{JPEGImages, Annotations,
ImageSets/Main/<split>.txt}``, read by :class:`torchvision.datasets.VOCDetection` exactly
as the real one is.

    root = write_fake_voc(tmp_path, n_images=4)
    # VOCDetection(root, year="2007", image_set="test") now works offline
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The 20 VOC classes, in the official order.
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def _object_xml(name: str, box: tuple[int, int, int, int], difficult: int) -> str:
    x0, y0, x1, y1 = box
    return (f"  <object>\n    <name>{name}</name>\n    <pose>Unspecified</pose>\n"
            f"    <truncated>0</truncated>\n    <difficult>{difficult}</difficult>\n"
            f"    <bndbox>\n      <xmin>{x0}</xmin>\n      <ymin>{y0}</ymin>\n"
            f"      <xmax>{x1}</xmax>\n      <ymax>{y1}</ymax>\n    </bndbox>\n"
            f"  </object>\n")


def write_fake_voc(root: str | Path, n_images: int = 4, *, image_set: str = "test",
                   size: tuple[int, int] = (96, 80), seed: int = 0) -> Path:
    """Write ``n_images`` random JPEGs with 1-3 boxes each (mixed classes, so that some
    images hold objects of several classes, as VOC's difficult pointing subset needs).

    Args:
        root: the folder to create ``VOCdevkit/VOC2007`` in.
        n_images: number of images (>= 1).
        image_set: the split file written (``test``, ``val``, ``trainval``...).
        size: ``(width, height)`` of every image in pixels.
        seed: NumPy seed of images and boxes.

    Returns:
        ``root`` as a :class:`~pathlib.Path` (what ``VOCDetection(root, ...)`` takes).
    """
    from PIL import Image

    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    root = Path(root)
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    W, H = size
    ids = []
    for i in range(n_images):
        stem = f"{i + 1:06d}"
        ids.append(stem)
        pixels = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(voc / "JPEGImages" / f"{stem}.jpg", quality=90)
        objects = []
        for k in range(int(rng.integers(1, 4))):
            w, h = int(rng.integers(W // 8, W // 2)), int(rng.integers(H // 8, H // 2))
            x0, y0 = int(rng.integers(1, W - w)), int(rng.integers(1, H - h))
            name = VOC_CLASSES[int(rng.integers(0, len(VOC_CLASSES)))]
            objects.append(_object_xml(name, (x0, y0, x0 + w, y0 + h), int(k == 2)))
        xml = (f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{stem}.jpg</filename>\n"
               f"  <size>\n    <width>{W}</width>\n    <height>{H}</height>\n"
               f"    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n"
               + "".join(objects) + "</annotation>\n")
        (voc / "Annotations" / f"{stem}.xml").write_text(xml)
    (voc / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(ids) + "\n")
    return root
