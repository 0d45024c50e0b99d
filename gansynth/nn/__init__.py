"""Networks: layers, registered architectures and conditionings, and the factory that builds a G/D pair.

Importing ``gansynth.nn`` registers every architecture (``gansynth.nn.archs``), so the registry is full whichever
module asks first.
"""

from gansynth.nn import archs  # noqa: F401 - registers the architectures
from gansynth.nn.registry import ARCHITECTURES, CONDITIONINGS, build_networks

__all__ = ["ARCHITECTURES", "CONDITIONINGS", "build_networks"]
