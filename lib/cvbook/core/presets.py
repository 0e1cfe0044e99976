"""Validated presets.

Each chapter declares its settings as a frozen dataclass and a mapping from preset
name to an instance (``"cpu"``: the default, offline, <= 3 minutes on 2 CPU cores;
``"full"``: the paper's real experiment on a GPU). A notebook's ``parameters`` cell
names a preset and may override a few fields; :func:`select_preset` checks both and
stops with the list of valid choices rather than running with a typo.

Example::

    @dataclass(frozen=True)
    class Config:
        epochs: int = 10
        lr: float = 0.1

        def validate(self) -> None:          # optional range checks
            check_int(self.epochs, "epochs", min_value=1)

    PRESETS = {"cpu": Config(), "full": Config(epochs=90)}
    cfg = select_preset(PRESETS, "cpu", lr=0.05)
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def select_preset(presets: Mapping[str, T], name: str, /, **overrides: Any) -> T:
    """Return the preset called ``name`` with ``overrides`` applied and validated.

    Args:
        presets: mapping from preset name to a frozen dataclass instance.
        name: the preset to use.
        **overrides: field values to replace; ``None`` means "keep the preset's value"
            (so a notebook's parameters cell can default a knob to ``None``).

    Raises:
        ValueError: unknown preset name or unknown parameter (the message lists the
            valid ones), or a value the config's ``validate()`` rejects.
        TypeError: a value of the wrong type for its field.
    """
    if not isinstance(name, str) or name not in presets:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(presets)}")
    base = presets[name]
    if not dataclasses.is_dataclass(base):
        raise TypeError(f"preset {name!r} must be a dataclass instance, got {type(base)}")
    fields = {f.name: f for f in dataclasses.fields(base)}
    hints = typing.get_type_hints(type(base))
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown parameter {key!r} for preset {name!r}; valid "
                             f"parameters: {', '.join(sorted(fields))}")
        if value is None:
            continue
        if not _type_ok(value, hints.get(key, Any)):
            raise TypeError(f"parameter {key!r} must be of type {hints.get(key)}, got "
                            f"{type(value).__name__} ({value!r})")
        if hints.get(key) is float and isinstance(value, int):
            value = float(value)
        changes[key] = value
    cfg = dataclasses.replace(base, **changes)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg
