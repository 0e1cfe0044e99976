"""Safe checkpoints: atomic writes, sha256 provenance, ``weights_only`` loading."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so that an
    interrupted write never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, Any],
                    meta: dict[str, Any] | None = None) -> str:
    """Save ``state_dict`` (tensors, numbers, strings, nested dicts/lists) to ``path``.

    A JSON sidecar ``<path>.json`` records ``meta`` (config, seed, metrics) and the
    sha256 of the weights file. Both are written atomically.

    Returns:
        The sha256 of the saved file.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
    import io

    buf = io.BytesIO()
    torch.save(state_dict, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    side = dict(meta or {})
    side["sha256"] = digest
    atomic_write_bytes(str(path) + ".json", json.dumps(side, indent=2, sort_keys=True,
                                                       default=str).encode())
    return digest


def load_checkpoint(path: str | os.PathLike, *, sha256: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` with ``weights_only=True``
    (no arbitrary code runs), after checking its sha256.

    Args:
        sha256: expected hash; when ``None`` the hash recorded in ``<path>.json`` is
            used if that file exists.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the hash does not match (corrupt or tampered file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if sha256 is None and Path(str(path) + ".json").is_file():
        sha256 = json.loads(Path(str(path) + ".json").read_text()).get("sha256")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ValueError(f"checkpoint {path} has sha256 {actual}, expected {sha256}; "
                             "the file is corrupt or was changed; re-create it")
    return torch.load(path, map_location=map_location, weights_only=True)
