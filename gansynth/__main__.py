"""``python -m gansynth`` (also the entry point for ``torchrun -m gansynth``)."""

from gansynth.cli import main

if __name__ == "__main__":
    main()
