"""The checks of Session 7 (residual CNN): one per autograded test cell of residual_cnn.ipynb.

Each is the hidden test of its cell, written once (autograder/assignment.py): the notebook's
hidden part calls `lesson.verify(grade_id, globals())`, and grading runs the same function on
the student's exported models. Every model a check touches is rebuilt from the student's export
with weights drawn here, and every input is drawn here, per submission.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from autograder.assignment import Assignment, Build, course_secret_seed, normal, skips_in, uniform

lesson = Assignment(
    "session07_residual_cnn", notebook="residual_cnn", answer_cells=("residual_block", "residual_cnn"),
    preamble="import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
             "from deepnets import count_parameters\n")

# Settings of this assignment, said once.
CALIBRATION = Path(__file__).resolve().parent.parent / "calibration" / "session07_residual_cnn.json"
ACCURACY_THRESHOLD = json.loads(CALIBRATION.read_text())["threshold"]   # autograder/calibrate.py
# (batch, channels, height, width): the visible test's three sizes, then four more. Few distinct
# channel counts: each is one more model to export.
BLOCK_SHAPES = [(4, 8, 28, 28), (4, 32, 14, 14), (4, 1, 7, 7),
                (1, 3, 5, 9), (2, 8, 27, 28), (7, 32, 4, 4), (3, 3, 11, 6)]
PARAMETER_RANGE = (50_000, 200_000)          # the design has about 100,000


def block(channels: int) -> Build:
    return Build("ResidualBlock", (channels,), (2, channels, 8, 8))


CNN = Build("ResidualCNN", (), (2, 1, 28, 28))


def branch_end(model, x):
    """(output, branch): the block's output and the value its last BatchNorm produced on the way."""
    record = []
    out = model(x, record=record)
    norms = [value for node, value in record if node.op == "aten.batch_norm.default"]
    assert norms, "the block has no BatchNorm2d layer"
    return out, norms[-1]


def zero_last_batchnorm(model) -> None:
    """Scale and shift of the block's last BatchNorm set to zero: its residual branch gives 0."""
    norms = [layer for layer in model.layers("train") if layer["kind"] == "bn"]
    assert norms and norms[-1]["weight"] is not None, "the block has no BatchNorm2d layer"
    with torch.no_grad():
        model.tensor(norms[-1]["weight"]).zero_()
        model.tensor(norms[-1]["bias"]).zero_()


def randomize_batchnorms(model, rng) -> None:
    """BatchNorm scales and shifts away from 1 and 0, so no part of the block is an identity by accident."""
    with torch.no_grad():
        for layer in model.layers("train"):
            if layer["kind"] == "bn" and layer["weight"] is not None:
                model.tensor(layer["weight"]).copy_(uniform(rng, model.tensor(layer["weight"]).numel()) + 0.5)
                model.tensor(layer["bias"]).copy_(normal(rng, model.tensor(layer["bias"]).numel()) * 0.5)


# --------------------------------------------------------------------------- Part A: the block

@lesson.check("block_keeps_shape", builds=[block(s[1]) for s in BLOCK_SHAPES],
              hint="Both convolutions need padding=1 and channels -> channels, so that x and F(x) can be added.")
def block_keeps_shape(models, rng):
    for i, shape in enumerate(BLOCK_SHAPES):
        model = models[block(shape[1]).key].train(i < 3)    # the visible test uses fresh (train-mode) blocks
        with torch.no_grad():
            out = model(normal(rng, *shape))
        assert tuple(out.shape) == shape, f"shape changed for input {shape}: got {tuple(out.shape)}"


@lesson.check("block_has_convs_and_batchnorms", builds=[block(8)],
              hint="Use conv1, bn1, conv2, bn2 in forward: two nn.Conv2d(channels, channels, 3, padding=1) "
                   "and two nn.BatchNorm2d(channels).")
def block_has_convs_and_batchnorms(models, rng):
    layers = models[block(8).key].layers()
    convs = [layer for layer in layers if layer["kind"] == "conv"]
    norms = [layer for layer in layers if layer["kind"] == "bn"]
    assert len(convs) == 2, f"expected 2 Conv2d layers in forward, found {len(convs)}"
    assert all(tuple(c["kernel"]) == (3, 3) for c in convs), "both convolutions should be 3x3"
    assert all(c["in"] == c["out"] == 8 for c in convs), "channels must not change"
    assert len(norms) == 2 and all(n["features"] == 8 for n in norms), \
        "expected 2 BatchNorm2d(channels) (ResidualBlock(8) has 2 BatchNorm2d(8))"


@lesson.check("block_skip_connection", builds=[block(8)],
              hint="forward must return ReLU(bn2(conv2(...)) + x): add the block's own input before the last ReLU.")
def block_skip_connection(models, rng):
    # Random weights everywhere, so the branch is not zero: the output must be ReLU(branch + x),
    # where branch is what the block's last BatchNorm gave. A block that looks at its weights
    # (zeroed or not) to decide what to return cannot pass this.
    model = models[block(8).key]
    randomize_batchnorms(model, rng)
    x = normal(rng, 2, 8, 10, 10)
    for mode in ("eval", "train"):
        with torch.no_grad():
            out, branch = branch_end(model.train(mode == "train"), x)
        assert torch.allclose(out, F.relu(branch + x), rtol=1e-4, atol=1e-5), (
            "ResidualBlock does not add its input x back" if mode == "eval"
            else "in train mode the block does not return ReLU(F(x) + x)")


@lesson.check("block_gradient_through_skip", builds=[block(8)],
              hint="Add x itself (not a copy made under no_grad or .detach()) so the gradient has a direct path.")
def block_gradient_through_skip(models, rng):
    model = models[block(8).key].train()
    randomize_batchnorms(model, rng)
    x = normal(rng, 3, 8, 9, 9, requires_grad=True)
    out, branch = branch_end(model, x)
    gradient, = torch.autograd.grad(out.sum(), x, allow_unused=True, retain_graph=True)
    assert gradient is not None, "no gradient reached the input"
    # What ReLU(branch + x) passes back to x: through the branch, and 1 per open ReLU through the skip.
    expected, = torch.autograd.grad(F.relu(branch + x).sum(), x)
    assert torch.allclose(gradient, expected, rtol=1e-4, atol=1e-5), "the gradient does not flow through the skip path"


@lesson.check("block_relu_after_addition", builds=[block(4)],
              hint="Apply ReLU once more after the addition, as the last step of forward.")
def block_relu_after_addition(models, rng):
    model = models[block(4).key].eval()
    randomize_batchnorms(model, rng)
    x = normal(rng, 5, 4, 8, 8) * 3
    with torch.no_grad():
        assert model(x).min() >= 0, "the block's output has negative values: ReLU must come last"
        zero_last_batchnorm(model)
        assert (model(-x.abs() - 0.1) == 0).all(), "negative inputs pass through: ReLU must come last"


@lesson.check("block_batchnorm_train_vs_eval", builds=[block(4)],
              hint="Use nn.BatchNorm2d layers (registered in __init__) rather than normalizing by hand.")
def block_batchnorm_train_vs_eval(models, rng):
    model = models[block(4).key]
    x = normal(rng, 8, 4, 6, 6) * 5 + 3      # far from BatchNorm's initial running statistics
    with torch.no_grad():
        eval_out = model.eval()(x)
        before = [mean.clone() for mean in model.statistics()]
        train_out = model.train()(x)
        assert not torch.allclose(train_out, eval_out, atol=1e-3), "train and eval mode give the same output"
        assert any(not torch.equal(b, a) for b, a in zip(before, model.statistics())), \
            "running statistics did not update in train mode"


@lesson.check("block_skip_is_identity", builds=[block(4), block(32)],
              hint="The skip path is just x: no extra layer on it, and no layers beyond the two convs and BNs.")
def block_skip_is_identity(models, rng):
    for channels in (4, 32):
        count = sum(p.numel() for p in models[block(channels).key].parameters())
        bias_free = 2 * (9 * channels * channels) + 2 * (2 * channels)
        with_bias = bias_free + 2 * channels
        assert count in (bias_free, with_bias), (
            f"ResidualBlock({channels}) has {count} parameters; two 3x3 convs and two BatchNorms "
            f"have {bias_free} (or {with_bias} with conv biases)")


# ------------------------------------------------------------------------ Part B: the network

@lesson.check("cnn_output_shape", builds=[CNN],
              hint="Follow the shapes: 28x28 after the first block, 14x14 after pooling; the linear layer "
                   "takes 32 * 14 * 14 inputs.")
def cnn_output_shape(models, rng):
    model = models[CNN.key]
    for mode, batches in (("eval", (1, 5, 64)), ("train", (2, 17, 128))):
        for batch in batches:
            with torch.no_grad():
                scores = model.train(mode == "train")(uniform(rng, batch, 1, 28, 28))
            where = "" if mode == "eval" else "train mode, "
            assert tuple(scores.shape) == (batch, 10), \
                f"{where}batch of {batch}: expected {(batch, 10)}, got {tuple(scores.shape)}"
            assert torch.isfinite(scores).all(), "the scores contain NaN or infinity"


@lesson.check("cnn_parameter_count", builds=[CNN],
              hint="Check the channel counts (32) and the linear layer's input size.")
def cnn_parameter_count(models, rng):
    # Only weights the output depends on: decoy layers added to pad the count are not counted.
    count = models[CNN.key].parameter_count("train", uniform(rng, 8, 1, 28, 28))
    low, high = PARAMETER_RANGE
    assert low <= count <= high, f"{count:,} parameters is far from the design's ~100,000"


@lesson.check("cnn_built_from_residual_blocks", builds=[CNN, block(32)],
              hint="Use two ResidualBlock(32) modules, a BatchNorm after the first conv, and nn.MaxPool2d(2, 2).")
def cnn_built_from_residual_blocks(models, rng):
    network = models[CNN.key]
    images = uniform(rng, 8, 1, 28, 28)
    layers = network.layers("train", images)   # only layers the output depends on: no decoys
    count = {kind: sum(1 for layer in layers if layer["kind"] == kind) for kind in ("conv", "bn", "maxpool")}
    assert count["conv"] >= 5, (f"expected a first convolution and two ResidualBlocks (5 convolutions in "
                                f"forward), found {count['conv']}")
    assert count["bn"] >= 5, "expected a BatchNorm after the first convolution and two in each block"
    assert count["maxpool"] >= 1, "expected a max-pooling layer"
    # Built from the student's own blocks: the network runs the skips its ResidualBlock(32) has.
    # A block without its skip loses the block's skip checks only, not this one too; a block
    # that has its skip on its own must keep it inside the network (two blocks, two skips).
    if skips_in(models, [block(32)]):
        skips = network.skip_connections("train", images)
        assert skips >= 2, (f"ResidualBlock(32) adds its input back, but the network runs {skips} such "
                            f"skip connections: it must be built from two of your ResidualBlocks")


@lesson.check("cnn_gradient_reaches_first_layer", builds=[CNN],
              hint="Every layer you create in __init__ must be used in forward, and nothing may be detached.")
def cnn_gradient_reaches_first_layer(models, rng):
    model = models[CNN.key].train()
    images, labels = uniform(rng, 16, 1, 28, 28), torch.from_numpy(rng.integers(0, 10, 16))
    F.cross_entropy(model(images), labels).backward()
    # The first convolution the output depends on: a decoy's gradient, scaled down, does not count.
    convs = [layer for layer in model.layers("train", images) if layer["kind"] == "conv"]
    first = model.tensor(convs[0]["weight"]).grad if convs else None
    assert first is not None and first.abs().sum() > 0, "no gradient reaches the first convolution"
    silent = sum(1 for p in model.parameters() if p.grad is None)
    assert not silent, f"{silent} parameter tensors get no gradient: layers created but not used in forward"


@lesson.check("cnn_learns_mnist", builds=[CNN], timeout=300, by_model=True,
              hint="If the other checks pass, look for a missing ReLU or BatchNorm, or an input that is cut.")
def cnn_learns_mnist(models, rng):
    from autograder.policy import controlled_accuracy

    # Trained and tested on digits drawn and disguised with the course's secret, the same for
    # every student (so identical networks are trained once): none is an image students have.
    accuracy = controlled_accuracy(lambda: models[CNN.key],
                                   data_seed=course_secret_seed(f"{lesson.name}:accuracy-data"))
    # Said in whole percent: each graded submission learns at most about 7 bits about the
    # grader's 1,000 digits, not the exact count of right answers (10 bits) that 0.1% would give.
    assert accuracy >= ACCURACY_THRESHOLD, \
        f"about {int(accuracy)}% is below the {ACCURACY_THRESHOLD:.1f}% a correct ResidualCNN reaches"
