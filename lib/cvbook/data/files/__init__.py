"""Small data files that ship inside the package (so a pip-installed ``cvbook`` has them).

    >>> from cvbook.data.files import path
    >>> path("c3dpo_tiny.json")        # chapter 07's six-instance keypoint file
    PosixPath('.../cvbook/data/files/c3dpo_tiny.json')

``pyproject.toml`` declares every file here as package data, and ``tests/test_package.py``
checks that a built wheel holds each one.
"""

from __future__ import annotations

import pathlib
from importlib import resources

__all__ = ["names", "path"]


def names() -> list[str]:
    """The shipped data files, sorted (Python sources excluded)."""
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir()
                  if p.is_file() and not p.name.endswith((".py", ".pyc")))


def path(name: str) -> pathlib.Path:
    """The file system path of the shipped data file ``name`` (e.g. ``"c3dpo_tiny.json"``).

    Raises:
        TypeError: ``name`` is not a string.
        FileNotFoundError: no such file ships; the message lists the ones that do.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a file name (str), got {type(name).__name__}")
    shipped = names()
    if name not in shipped:
        raise FileNotFoundError(f"no data file {name!r} ships with cvbook; shipped files: "
                                f"{', '.join(shipped) or 'none'}")
    # installed packages are plain directories (wheels are unpacked), so this is a real path
    return pathlib.Path(str(resources.files(__name__).joinpath(name)))
