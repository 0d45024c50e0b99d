"""Networks: layers, registered architectures and conditionings, and the factory that builds a G/D pair."""

from gansynth.nn.registry import ARCHITECTURES, CONDITIONINGS, build_networks

__all__ = ["ARCHITECTURES", "CONDITIONINGS", "build_networks"]
