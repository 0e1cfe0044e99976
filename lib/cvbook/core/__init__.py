"""The shared core used by every chapter: seeding, devices and AMP, presets, the
training loop, checkpoints, results sidecars, plotting and the Colab bootstrap."""

from cvbook.core.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from cvbook.core.device import autocast, get_device, supports_amp
from cvbook.core.presets import select_preset
from cvbook.core.results import Results, load_all_results, results_table
from cvbook.core.seed import seed_everything
from cvbook.core.train import History, fit

__all__ = [
    "History",
    "Results",
    "autocast",
    "fit",
    "get_device",
    "load_all_results",
    "load_checkpoint",
    "results_table",
    "save_checkpoint",
    "seed_everything",
    "select_preset",
    "sha256_file",
    "supports_amp",
]
