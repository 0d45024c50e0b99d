"""The one way a stage's Python API turns ``spec=`` or keyword options into its typed, frozen spec."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from gansynth.errors import ConfigError
from gansynth.registry import did_you_mean

S = TypeVar("S")


def as_spec(cls: type[S], spec: S | None, options: dict, what: str) -> S:
    """``spec`` as given, or ``cls(**options)``; ConfigError for both at once or for an unknown option name."""
    if spec is None:
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"{what}() got an unknown option {unknown[0]!r}", hint=did_you_mean(unknown[0], known))
        return cls(**options)
    if not isinstance(spec, cls):
        raise ConfigError(
            f"{what}(spec=...) must be of type {cls.__name__}, got {type(spec).__name__}",
            hint=f"build one: gansynth.{cls.__name__}(...)",
        )
    if options:
        raise ConfigError(
            f"{what}() got both spec= and options ({', '.join(sorted(options))})",
            hint=f"put every option in the {cls.__name__}, e.g. spec.replace({sorted(options)[0]}=...)",
        )
    return spec
