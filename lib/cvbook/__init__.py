"""cvbook: the library behind the book *Ten 2019 papers in computer vision, re-implemented*.

The package is organised as a thin shared core (:mod:`cvbook.core`), synthetic
worlds with exact ground truth (:mod:`cvbook.data`), small networks
(:mod:`cvbook.nn`), metrics (:mod:`cvbook.metrics`) and one module per paper,
named after its method (for example :mod:`cvbook.fixres`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
