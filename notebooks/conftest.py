"""pytest settings for nbval runs of the book's notebooks (``make nbval`` runs from here)."""
from __future__ import annotations

# nbval waits 5 s for a cell's outputs after the kernel has replied; on a loaded machine
# (a shared CI runner, Colab) the output messages of a cell with a progress bar can take
# longer, and the cell then fails although it ran. The cell's own time limit is
# --nbval-cell-timeout (Makefile); this only widens the wait for its outputs.
OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's IPyNbCell
            item.output_timeout = OUTPUT_TIMEOUT_S
