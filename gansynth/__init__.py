"""gansynth: labeled image folder → class-conditional GAN → measured, balanced synthetic data → downstream benchmark."""

__version__ = "0.1.0"
