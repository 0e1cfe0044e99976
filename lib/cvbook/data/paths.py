"""Where downloaded datasets go by default.

:func:`default_data_root` is ``<repository>/data`` when ``cvbook`` runs from a checkout
of its repository (that folder is git-ignored, so a download never ends up in a
commit), else ``~/.cache/cvbook`` (an installed package: Colab, ``pip install``). The
environment variable ``CVBOOK_DATA_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data_root"]


def default_data_root() -> Path:
    """The default download folder (see the module docstring); not created here.

    >>> default_data_root().name in ("data", "cvbook") or "CVBOOK_DATA_DIR" in os.environ
    True
    """
    env = os.environ.get("CVBOOK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[3]  # lib/cvbook/data/paths.py -> repository
    if (repo / "pyproject.toml").is_file() and (repo / ".git").exists():
        return repo / "data"
    return Path.home() / ".cache" / "cvbook"
