"""One generic name → object registry for architectures, losses, augmentations and feature extractors."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gansynth.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """A hint naming the closest choices to ``name`` and listing all of them."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    listing = ", ".join(sorted(choices))
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}? choices: {listing}"
    return f"choices: {listing}"


class Registry(Generic[T]):
    """Maps names to objects; duplicate names raise, unknown names raise with a did-you-mean hint.

    Args:
        kind: what the registry holds, used in messages (``"architecture"``, ``"loss"``, ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name``."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered as ``name``; raises ConfigError with close matches otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}", hint=did_you_mean(name, list(self._items))) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
