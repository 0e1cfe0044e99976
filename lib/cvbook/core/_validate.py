"""Deprecated alias of :mod:`cvbook.core.validate` (kept so old imports keep working)."""

import warnings

from cvbook.core.validate import (  # noqa: F401
    Shapes,
    check_choice,
    check_float,
    check_int,
    check_range,
    check_tensor,
)

warnings.warn("cvbook.core._validate is deprecated: import cvbook.core.validate",
              DeprecationWarning, stacklevel=2)
