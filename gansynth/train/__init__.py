"""Training stage: losses, DiffAugment/adaptive augmentation, EMA, the Trainer loop and the ``fit`` API."""
