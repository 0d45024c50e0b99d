"""Registered architectures: importing this package registers biggan, dcgan and mlp."""

from gansynth.nn.archs import biggan, dcgan, mlp  # noqa: F401
