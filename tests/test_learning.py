"""Learning test: `gansynth fit digits` with no other option learns every class, without copying the training set."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from gansynth.cli import main
from gansynth.data.builtin import digits_raw
from gansynth.sampler import load_sampler

SAMPLES_PER_CLASS = 100


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """`gansynth fit digits` run once per test session, in a scratch working directory (runs/digits)."""
    cwd = tmp_path_factory.mktemp("fit-digits")
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with pytest.raises(SystemExit) as info:
            main(["fit", "digits"])
        assert info.value.code == 0
    finally:
        os.chdir(previous)
    return cwd / "runs" / "digits"


def to_8x8(images: torch.Tensor) -> np.ndarray:
    """uint8 [N, 1, 16, 16] → [N, 64] in [0, 1], the digits' native 8×8 grid."""
    return F.adaptive_avg_pool2d(images.float(), 8).reshape(len(images), -1).numpy() / 255.0


def test_a_real_trained_classifier_recognizes_every_generated_class(digits_run):
    raw, labels = digits_raw()
    classifier = LogisticRegression(max_iter=3000).fit(raw.reshape(len(raw), -1) / 255.0, labels)
    sampler = load_sampler(digits_run)
    accuracy = {}
    for c in range(10):
        images = sampler.generate(c, SAMPLES_PER_CLASS, seed=10_000)
        accuracy[c] = float((classifier.predict(to_8x8(images)) == c).mean())
    assert min(accuracy.values()) >= 0.9, accuracy


def test_samples_are_diverse_and_not_copies(digits_run):
    raw, labels = digits_raw()
    real = torch.from_numpy(raw.reshape(len(raw), -1)).float()
    sampler = load_sampler(digits_run)
    for c in range(10):
        fake = torch.from_numpy(to_8x8(sampler.generate(c, SAMPLES_PER_CLASS, seed=20_000)) * 255.0)
        real_c = real[torch.from_numpy(labels == c)]
        # diversity: spread across seeds is a real fraction of the real class's spread (a collapsed class is ~0)
        assert fake.std(0).mean() > 0.25 * real_c.std(0).mean(), c
        # not copies: nearest training image is, for most samples, farther than a near-duplicate would be
        fake_to_real = torch.cdist(fake, real).min(dim=1).values
        real_to_real = torch.cdist(real_c, real_c).fill_diagonal_(float("inf")).min(dim=1).values
        assert (fake_to_real < 0.25 * real_to_real.median()).float().mean() < 0.05, c
