"""Trusted checks of Day 13 (ResNet): one per autograded test cell of resnet.ipynb, mirroring its asserts.

Each check is a *probe*, which runs in the sandbox on the student's classes and returns plain
data, and a *judge*, which runs in the grader and compares that data with what the reference
gives on the same inputs (see session07_residual_cnn.py, the first example). Only the probes'
source goes to the sandbox. The random inputs are drawn by the grader for each submission; the
layer sizes, strides and expected shapes are the test cells' own. The probes read the sizes of
each case from the arrays they are given (`*_cases`), so they are written down once, here.

The two learning checks (`resnet18_learns`, `deep_resnet_learns`) repeat
deepnets.checks.overfit_loss in the sandbox: the grader's fixed batch (deepnets.checks.fixed_batch,
computed here because MNIST cannot be read in the sandbox), its seed, its number of Adam steps
and learning rate, all read from the lesson's test cells and from overfit_loss itself. The probe
returns the network's scores on the batch after training; the judge computes the loss from them
with the labels it kept and compares it with the lesson's threshold.
"""

from __future__ import annotations

import functools
import inspect
import re

import numpy as np

from autograder.trusted import Check, as_array, lesson_path

ASSIGNMENT = "day13_vgg_resnet"
NOTEBOOK = "resnet"
# bottleneck_block is one option of the open part: its check passes when it is left unwritten
# (see the test cell's comment). my_resnet is read by a person, not run by the grader.
ANSWER_CELLS = ("residual_block", "resnet18", "deep_resnet", "bottleneck_block")
# What the answer cells may use from the notebook's locked setup cell (the plotting helpers aside).
PREAMBLE = """\
import torch
import torch.nn.functional as F
from torch import nn

from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.shapes import print_shape_table
"""

PROBE_HELPERS = ("shape_of", "trainable", "zeroed_branch", "recorded_run", "output_shapes",
                 "block_shapes", "shortcut_layers", "stages", "without_conv_biases", "overfit_scores")

# ------------------------------------------------ the test cells' cases (sizes, not values)
# block_keeps_shape: input shapes; the first 3 visible (fresh block, train mode, no stride
# argument), the rest hidden (eval mode, stride=1 by name).
KEEPS_SHAPE = [(2, 8, 32, 32), (2, 64, 16, 16), (2, 3, 7, 7), (1, 5, 9, 6), (4, 16, 28, 28)]
KEEPS_SHAPE_VISIBLE = 3
# block_changes_channels: (input shape, out_channels); the first visible.
CHANGES_CHANNELS = [((2, 8, 12, 12), 16), ((3, 16, 10, 10), 8), ((3, 1, 32, 32), 64), ((3, 5, 9, 4), 7)]
# block_stride_halves_size: (input shape, out_channels, expected height and width); the first visible.
STRIDE_HALVES = [((2, 16, 32, 32), 32, (16, 16)), ((2, 16, 7, 7), 32, (4, 4)), ((2, 8, 9, 5), 8, (5, 3)),
                 ((2, 64, 32, 32), 64, (16, 16))]
# block_identity_shortcut: ResidualBlock(16, 16) (visible), ResidualBlock(64, 64, stride=1) (hidden).
IDENTITY = [(2, 16, 8, 8), (2, 64, 4, 4)]
# block_projection_shortcut: (in, out, stride); the first visible, stride given by name.
PROJECTION = [(16, 32, 2), (8, 16, 1), (16, 16, 2)]
PROJECTION_X = (2, 16, 9, 9)
# block_skip_connection: (in, out, stride, train mode); visible in eval mode on (2, in, 10, 10),
# hidden in train mode on (3, in, 8, 8), with the tolerances of each.
SKIP = [(8, 8, 1, 0), (8, 16, 2, 0), (6, 6, 1, 1), (4, 12, 1, 1), (6, 6, 2, 1)]
SKIP_ATOL = {0: 1e-6, 1: 1e-5}
GRADIENT_X = (3, 6, 9, 9)
# block_downsamples_in_first_conv: (in, out, input shape, expected size of both 3x3 outputs).
DOWNSAMPLES = [(8, 16, (2, 8, 16, 16), (8, 8)), (4, 4, (2, 4, 9, 9), (5, 5))]
RELU_X = (5, 4, 8, 8)
BLOCK_PARAMETERS = [(4, 4, 1), (32, 32, 1), (16, 32, 2), (8, 24, 1), (12, 12, 2)]
# make_layer_builds_a_stage: (_make_layer's arguments, input shape, expected output shapes).
MAKE_LAYER = [((64, 128, 3, 2), (2, 64, 16, 16), [(2, 128, 8, 8)] * 3),
              ((32, 32, 1, 1), (2, 32, 8, 8), [(2, 32, 8, 8)]),
              ((16, 48, 4, 2), (2, 16, 9, 9), [(2, 48, 5, 5)] * 4)]
LAYOUTS = {"ResNet18": [2, 2, 2, 2], "DeepResNet": [3, 4, 6, 3]}
STAGE_SHAPES = [(64, 32), (128, 16), (256, 8), (512, 4)]  # channels and size of each stage's output
NETWORKS = tuple(LAYOUTS)
# bottleneck_block_if_attempted: (in, out, stride, input size), on (2, in, size, size) in eval mode.
BOTTLENECK = [(16, 16, 1, 8), (16, 32, 2, 8), (8, 32, 1, 5)]


# ---------------------------------------------------------------- probes (run in the sandbox)
# Each takes the student's namespace and the sandbox's Tools (captured, unpatched helpers) and
# returns tensors, numbers, lists and dicts only.

def shape_of(t, value):
    """The shape of a real tensor as a list, else None."""
    return t.shape(value) if t.is_tensor(value) else None


def trainable(t, module):
    """count_parameters(module)."""
    return sum(t.numel(p) for _, p in t.parameters(module) if t.requires_grad(p))


def zeroed_branch(t, block):
    """deepnets.checks.zero_residual_branch: the residual branch's last BatchNorm scaled to zero."""
    last = getattr(block, "bn2", None)
    if not t.isinstance(last, t.BatchNorm2d):
        in_shortcut = {id(m) for name, child in t.named_children(block)
                       if name in ("shortcut", "downsample", "skip", "projection") for m in t.modules(child)}
        found = [m for m in t.modules(block) if t.isinstance(m, t.BatchNorm2d) and id(m) not in in_shortcut]
        if not found:
            raise AssertionError("the block has no BatchNorm2d layer outside its shortcut")
        last = found[-1]
    with t.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return block


def recorded_run(t, module, x, kind, record):
    """Run module(x) without gradients, calling record(layer, output) for each `kind` layer as it runs."""
    records, handles = [], []
    for layer in t.modules(module):
        if t.isinstance(layer, kind):
            handles.append(t.forward_hook(
                layer, lambda layer, inputs, output: records.append(record(layer, output))))
    try:
        with t.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return records


def output_shapes(t, module, x, kind):
    """deepnets.checks.output_shapes: the output shape of each `kind` layer as module(x) runs it
    (in eval mode)."""
    was_training = bool(module.training)
    t.set_train(module, False)
    try:
        return recorded_run(t, module, x, kind, lambda layer, output: shape_of(t, output))
    finally:
        t.set_train(module, was_training)


def block_shapes(ns, t, prefix):
    """Output shapes of ResidualBlock on inputs prefix_0, prefix_1, ...; each row of prefix_cases is
    (out_channels, stride (0: not passed), train mode (1: a fresh block as built, 0: eval mode))."""
    shapes = []
    for i, (out_channels, stride, train) in enumerate(t.array(f"{prefix}_cases").tolist()):
        x = t.tensor(f"{prefix}_{i}")
        in_channels = t.shape(x)[1]
        if stride:
            block = ns["ResidualBlock"](in_channels, out_channels, stride=stride)
        else:
            block = ns["ResidualBlock"](in_channels, out_channels)
        if not train:
            t.set_train(block, False)
        shapes.append(shape_of(t, block(x)))
    return shapes


def shortcut_layers(t, block):
    """The convolutions and BatchNorms in block.shortcut, described."""
    convs, norms = [], []
    for m in t.modules(block.shortcut):
        if t.isinstance(m, t.Conv2d):
            convs.append({"kernel": [int(k) for k in m.kernel_size], "in": int(m.in_channels),
                          "out": int(m.out_channels), "stride": [int(s) for s in m.stride]})
        elif t.isinstance(m, t.BatchNorm2d):
            norms.append(int(m.num_features))
    return {"convs": convs, "norms": norms}


def stages(ns, t, network):
    """ResidualBlocks in each child of a fresh `network` (empty children left out), and the
    output shape of every ResidualBlock as the network runs a (2, 1, 32, 32) batch."""
    model = ns[network]()
    block = ns["ResidualBlock"]
    counts = [sum(1 for m in t.modules(child) if t.isinstance(m, block)) for child in t.children(model)]
    return {"per_stage": [n for n in counts if n],
            "shapes": output_shapes(t, model, t.tensor("stage_images"), block)}


def without_conv_biases(t, module):
    """deepnets.checks.parameters_without_conv_biases(module)."""
    conv_biases = {id(m.bias) for m in t.modules(module) if t.isinstance(m, t.Conv2d) and m.bias is not None}
    return sum(t.numel(p) for _, p in t.parameters(module) if t.requires_grad(p) and id(p) not in conv_biases)


def overfit_scores(ns, t, network):
    """deepnets.checks.overfit_loss, up to the last loss: the scores after training on the batch."""
    import random

    import numpy

    images, labels = t.tensor(f"{network}_images"), t.tensor(f"{network}_labels")
    seed, steps = (int(v) for v in t.array(f"{network}_seed_steps").tolist())
    random.seed(seed)
    numpy.random.seed(seed)
    t.manual_seed(seed)
    model = t.set_train(ns[network](), True)
    optimizer = t.Adam([p for _, p in t.parameters(model)], lr=float(t.array(f"{network}_lr")))
    for _ in range(steps):
        loss = t.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        t.backward(loss)
        optimizer.step()
    with t.no_grad():
        return model(images)


def probe_block_keeps_shape(ns, t):
    return block_shapes(ns, t, "keeps")


def probe_block_changes_channels(ns, t):
    return block_shapes(ns, t, "channels")


def probe_block_stride_halves_size(ns, t):
    return block_shapes(ns, t, "halves")


def probe_block_identity_shortcut(ns, t):
    found = []
    for i in range(2):
        x = t.tensor(f"identity_{i}")
        channels = t.shape(x)[1]
        block = ns["ResidualBlock"](channels, channels) if i == 0 else \
            ns["ResidualBlock"](channels, channels, stride=1)
        if not hasattr(block, "shortcut"):
            found.append({"named": False})
            continue
        found.append({"named": True, "out": block.shortcut(x), "parameters": trainable(t, block.shortcut),
                      "convs": sum(1 for m in t.modules(block) if t.isinstance(m, t.Conv2d))})
    return found


def probe_block_projection_shortcut(ns, t):
    found = []
    for i, (in_channels, out_channels, stride) in enumerate(t.array("projection_cases").tolist()):
        if i == 0:
            block = ns["ResidualBlock"](in_channels, out_channels, stride=stride)
        else:
            block = ns["ResidualBlock"](in_channels, out_channels, stride)
        described = shortcut_layers(t, block)
        if i == 0:
            x = t.tensor("projection_x")
            described["shortcut_shape"] = shape_of(t, block.shortcut(x))
            described["block_shape"] = shape_of(t, block(x))
        found.append(described)
    return found


def probe_block_skip_connection(ns, t):
    found = []
    for i, (in_channels, out_channels, stride, train) in enumerate(t.array("skip_cases").tolist()):
        block = zeroed_branch(t, ns["ResidualBlock"](in_channels, out_channels, stride))
        t.set_train(block, bool(train))
        x = t.tensor(f"skip_{i}")
        with t.no_grad():
            out = block(x)
            found.append({"out": out, "shortcut": block.shortcut(x)})
    return found


def probe_block_gradient_through_skip(ns, t):
    x = t.tensor("gradient_x", requires_grad=True)
    channels = t.shape(x)[1]
    block = t.set_train(zeroed_branch(t, ns["ResidualBlock"](channels, channels)), True)
    return t.input_gradient(block(x), x)


def probe_block_downsamples_in_first_conv(ns, t):
    runs = []
    for i, (in_channels, out_channels) in enumerate(t.array("downsamples_cases").tolist()):
        block = ns["ResidualBlock"](in_channels, out_channels, stride=2)
        runs.append(recorded_run(t, block, t.tensor(f"downsamples_{i}"), t.Conv2d, lambda layer, output: {
            "kernel": [int(k) for k in layer.kernel_size], "shape": shape_of(t, output)}))
    return runs


def probe_block_relu_after_addition(ns, t):
    t.manual_seed(1)
    x = t.tensor("relu_x")
    with t.no_grad():
        same = ns["ResidualBlock"](4, 4)(x)
        halved = ns["ResidualBlock"](4, 8, stride=2)(x)
        zeroed = t.set_train(zeroed_branch(t, ns["ResidualBlock"](4, 4)), False)
        negative = t.tensor("relu_negative")
        return {"same": same, "halved": halved, "zeroed": zeroed(negative),
                "shortcut": zeroed.shortcut(negative)}


def probe_block_parameter_count(ns, t):
    return [without_conv_biases(t, ns["ResidualBlock"](in_channels, out_channels, stride))
            for in_channels, out_channels, stride in t.array("parameter_cases").tolist()]


def probe_resnet18_output_shape(ns, t):
    model = t.set_train(ns["ResNet18"](), False)
    found = {}
    with t.no_grad():
        for batch in (1, 3):
            found[f"eval_{batch}"] = shape_of(t, model(t.tensor(f"resnet_images_{batch}")))
        found["classes_7"] = shape_of(t, t.set_train(ns["ResNet18"](num_classes=7), False)(
            t.tensor("resnet_images_2")))
    found["train_4"] = t.set_train(model, True)(t.tensor("resnet_images_4"))
    with t.no_grad():
        found["eval_28"] = shape_of(t, t.set_train(model, False)(t.tensor("resnet_images_28")))
    return found


def probe_make_layer_builds_a_stage(ns, t):
    runs = []
    for i, arguments in enumerate(t.array("make_layer_cases").tolist()):
        stage = ns["ResNet18"]()._make_layer(*arguments)
        runs.append(output_shapes(t, stage, t.tensor(f"make_layer_{i}"), ns["ResidualBlock"]))
    return runs


def probe_resnet18_blocks_per_stage(ns, t):
    return stages(ns, t, "ResNet18")


def probe_resnet18_parameter_count(ns, t):
    return without_conv_biases(t, ns["ResNet18"]())


def probe_resnet18_learns(ns, t):
    return overfit_scores(ns, t, "ResNet18")


def probe_deep_resnet_output_shape(ns, t):
    model = t.set_train(ns["DeepResNet"](), False)
    found = {}
    with t.no_grad():
        found["eval_3"] = shape_of(t, model(t.tensor("resnet_images_3")))
        found["classes_4"] = shape_of(t, t.set_train(ns["DeepResNet"](num_classes=4), False)(
            t.tensor("resnet_images_2")))
    found["train_4"] = t.set_train(model, True)(t.tensor("resnet_images_4"))
    return found


def probe_deep_resnet_blocks_per_stage(ns, t):
    return stages(ns, t, "DeepResNet")


def probe_deep_resnet_parameter_count(ns, t):
    return without_conv_biases(t, ns["DeepResNet"]())


def probe_deep_resnet_learns(ns, t):
    return overfit_scores(ns, t, "DeepResNet")


def probe_bottleneck_block_if_attempted(ns, t):
    if "BottleneckBlock" not in ns:
        return {"attempted": False}
    try:
        ns["BottleneckBlock"](16, 16)
    except NotImplementedError:  # the release's stub: the option was not chosen
        return {"attempted": False}
    found = []
    for i, (in_channels, out_channels, stride) in enumerate(t.array("bottleneck_cases").tolist()):
        block = t.set_train(ns["BottleneckBlock"](in_channels, out_channels, stride), False)
        with t.no_grad():
            out = block(t.tensor(f"bottleneck_{i}"))
        found.append({"out": out, "parameters": without_conv_biases(t, block)})
    return {"attempted": True, "blocks": found}


# ---------------------------------------------------------------- inputs and judges (grader)

LEARNING_TEST = re.compile(
    r"loss = overfit_loss\((\w+), seed=(\d+), steps=(\d+), batch_size=(\d+), image_size=(\d+)\)\n"
    r".*?\nassert loss < (\d+(?:\.\d+)?)", re.DOTALL)


@functools.lru_cache(maxsize=None)
def learning_tests(lesson_text: str) -> dict[str, dict]:
    """network -> the seed, steps, batch, image size and threshold of its hidden learning test."""
    from deepnets.checks import overfit_loss

    lr = inspect.signature(overfit_loss).parameters["lr"].default
    found = {network: {"seed": int(seed), "steps": int(steps), "batch_size": int(batch_size),
                       "image_size": int(image_size), "lr": float(lr), "threshold": float(limit)}
             for network, seed, steps, batch_size, image_size, limit in LEARNING_TEST.findall(lesson_text)}
    if set(found) != set(NETWORKS):
        raise LookupError(f"the lesson's learning tests were found for {sorted(found)}, not {list(NETWORKS)}")
    return found


def lesson_learning_tests() -> dict[str, dict]:
    return learning_tests(lesson_path(ASSIGNMENT).read_text())


def make_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every array the probes read: random values drawn afresh for each submission, the test
    cells' sizes, and the learning checks' fixed batch and settings."""
    from deepnets.checks import fixed_batch

    normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    uniform = lambda *shape: rng.random(shape, dtype=np.float32)  # noqa: E731
    cases = lambda rows: np.array(rows, dtype=np.int64)  # noqa: E731
    inputs = {}
    for i, shape in enumerate(KEEPS_SHAPE):
        inputs[f"keeps_{i}"] = normal(*shape)
    visible = [i < KEEPS_SHAPE_VISIBLE for i in range(len(KEEPS_SHAPE))]
    inputs["keeps_cases"] = cases([(shape[1], 0 if seen else 1, int(seen))
                                   for shape, seen in zip(KEEPS_SHAPE, visible)])
    for i, (shape, _) in enumerate(CHANGES_CHANNELS):
        inputs[f"channels_{i}"] = normal(*shape)
    inputs["channels_cases"] = cases([(out, 0, int(i == 0)) for i, (_, out) in enumerate(CHANGES_CHANNELS)])
    for i, (shape, _, _) in enumerate(STRIDE_HALVES):
        inputs[f"halves_{i}"] = normal(*shape)
    inputs["halves_cases"] = cases([(out, 2, int(i == 0)) for i, (_, out, _) in enumerate(STRIDE_HALVES)])
    for i, shape in enumerate(IDENTITY):
        inputs[f"identity_{i}"] = normal(*shape)
    inputs["projection_cases"] = cases(PROJECTION)
    inputs["projection_x"] = normal(*PROJECTION_X)
    inputs["skip_cases"] = cases(SKIP)
    for i, (in_channels, _, _, train) in enumerate(SKIP):
        inputs[f"skip_{i}"] = normal(3, in_channels, 8, 8) if train else normal(2, in_channels, 10, 10)
    inputs["gradient_x"] = normal(*GRADIENT_X)
    inputs["downsamples_cases"] = cases([(c_in, c_out) for c_in, c_out, _, _ in DOWNSAMPLES])
    for i, (_, _, shape, _) in enumerate(DOWNSAMPLES):
        inputs[f"downsamples_{i}"] = normal(*shape)
    inputs["relu_x"] = normal(*RELU_X) * 3
    inputs["relu_negative"] = -np.abs(inputs["relu_x"]) - np.float32(0.1)
    inputs["parameter_cases"] = cases(BLOCK_PARAMETERS)
    for batch in (1, 2, 3, 4):
        inputs[f"resnet_images_{batch}"] = uniform(batch, 1, 32, 32)
    inputs["resnet_images_28"] = uniform(2, 1, 28, 28)
    inputs["make_layer_cases"] = cases([arguments for arguments, _, _ in MAKE_LAYER])
    for i, (_, shape, _) in enumerate(MAKE_LAYER):
        inputs[f"make_layer_{i}"] = normal(*shape)
    inputs["stage_images"] = normal(2, 1, 32, 32)
    inputs["bottleneck_cases"] = cases([(c_in, c_out, stride) for c_in, c_out, stride, _ in BOTTLENECK])
    for i, (c_in, _, _, size) in enumerate(BOTTLENECK):
        inputs[f"bottleneck_{i}"] = normal(2, c_in, size, size)
    for network, test in lesson_learning_tests().items():
        images, labels = fixed_batch(test["batch_size"], test["image_size"])
        inputs[f"{network}_images"] = images.numpy().astype(np.float32)
        inputs[f"{network}_labels"] = labels.numpy().astype(np.int64)
        inputs[f"{network}_seed_steps"] = cases([test["seed"], test["steps"]])
        inputs[f"{network}_lr"] = np.array(test["lr"], dtype=np.float64)
    return inputs


def relu(x):
    return np.maximum(x, 0)


def shapes_differ(got, want) -> bool:
    return got is None or [int(n) for n in got] != [int(n) for n in want]


def shown(shape) -> str:
    return "no tensor" if shape is None else str(tuple(shape))


def judge_block_keeps_shape(value, inputs, context):
    if len(value) != len(KEEPS_SHAPE):
        return "the block was not run on every input"
    for got, want in zip(value, KEEPS_SHAPE):
        if shapes_differ(got, want):
            return f"shape changed for input {want}: got {shown(got)}"
    return None


def judge_block_changes_channels(value, inputs, context):
    if len(value) != len(CHANGES_CHANNELS):
        return "the block was not run on every input"
    for got, ((batch, c_in, height, width), c_out) in zip(value, CHANGES_CHANNELS):
        want = (batch, c_out, height, width)
        if shapes_differ(got, want):
            return f"ResidualBlock({c_in}, {c_out}) should map {(batch, c_in, height, width)} to {want}, " \
                   f"got {shown(got)}"
    return None


def judge_block_stride_halves_size(value, inputs, context):
    if len(value) != len(STRIDE_HALVES):
        return "the block was not run on every input"
    for got, ((batch, c_in, height, width), c_out, size) in zip(value, STRIDE_HALVES):
        want = (batch, c_out, *size)
        if shapes_differ(got, want):
            return f"ResidualBlock({c_in}, {c_out}, stride=2) should map {(batch, c_in, height, width)} " \
                   f"to {want}, got {shown(got)}"
    return None


def judge_block_identity_shortcut(value, inputs, context):
    if len(value) != len(IDENTITY):
        return "the shortcut was not checked on every block"
    for i, found in enumerate(value):
        channels = IDENTITY[i][1]
        if not found["named"]:
            return "name the skip path self.shortcut"
        x = inputs[f"identity_{i}"]
        out = found["out"]
        if not isinstance(out, dict) or shapes_differ(out.get("shape"), x.shape) \
                or not np.array_equal(as_array(out), x):
            return f"with stride 1 and in_channels == out_channels ({channels}), shortcut(x) must be x"
        if found["parameters"] != 0:
            return f"an identity shortcut has no parameters; ResidualBlock({channels}, {channels})'s has " \
                   f"{found['parameters']:,}"
        if i > 0 and found["convs"] != 2:
            return f"a block whose shapes match has two convolutions, not {found['convs']}"
    return None


def judge_block_projection_shortcut(value, inputs, context):
    if len(value) != len(PROJECTION):
        return "the shortcut was not checked on every block"
    for i, (found, (c_in, c_out, stride)) in enumerate(zip(value, PROJECTION)):
        name = f"ResidualBlock({c_in}, {c_out}, stride={stride})"
        convs, norms = found["convs"], found["norms"]
        one_by_one = len(convs) == 1 and convs[0]["kernel"] == [1, 1]
        if i == 0:  # the visible test
            if not one_by_one:
                return "the projection is one 1x1 convolution"
            if [convs[0]["in"], convs[0]["out"], convs[0]["stride"]] != [c_in, c_out, [stride, stride]]:
                return f"{name}: the projection should map {c_in} to {c_out} channels with stride {stride}"
            if len(norms) != 1 or norms[0] != c_out:
                return f"the projection ends with a BatchNorm2d({c_out})"
            if found["shortcut_shape"] is None or found["shortcut_shape"] != found["block_shape"]:
                return "the shortcut's output must have the block's output shape"
        else:       # the hidden test asks less
            if not one_by_one or len(norms) != 1:
                return f"{name} needs a projection shortcut"
            if convs[0]["stride"] != [stride, stride] or convs[0]["out"] != c_out:
                return f"{name}: wrong projection"
    return None


def judge_block_skip_connection(value, inputs, context):
    if len(value) != len(SKIP):
        return "the block was not checked in every configuration"
    for i, (found, (c_in, c_out, stride, train)) in enumerate(zip(value, SKIP)):
        out, shortcut = as_array(found["out"]), as_array(found["shortcut"])
        atol = SKIP_ATOL[train]
        if out.shape != shortcut.shape or not np.allclose(out, relu(shortcut), rtol=1e-5, atol=atol):
            where = "in train mode, " if train else ""
            return f"{where}ResidualBlock({c_in}, {c_out}, stride={stride}) does not add shortcut(x)"
    return None


def judge_block_gradient_through_skip(value, inputs, context):
    if value is None:
        return "no gradient reached the input"
    x = inputs["gradient_x"]
    if not np.allclose(as_array(value, x.shape), (x > 0).astype(np.float64), rtol=1e-5, atol=1e-8):
        return "the gradient does not reach the input through the skip path (1 where x > 0, 0 elsewhere)"
    return None


def judge_block_downsamples_in_first_conv(value, inputs, context):
    if len(value) != len(DOWNSAMPLES):
        return "the block was not run on every input"
    for i, (runs, (c_in, c_out, shape, size)) in enumerate(zip(value, DOWNSAMPLES)):
        sizes = [None if run["shape"] is None else tuple(run["shape"][-2:]) for run in runs
                 if run["kernel"] == [3, 3]]
        if i == 0:
            if len(sizes) != 2:
                return f"expected two 3x3 convolutions to run, found {len(sizes)}"
            if sizes[0] != size:
                return f"the first 3x3 convolution outputs {sizes[0]}: it should apply the stride {size}"
            if sizes[1] != size:
                return f"the second 3x3 convolution outputs {sizes[1]}: it should keep the size {size}"
        elif sizes != [size, size]:
            return f"ResidualBlock({c_in}, {c_out}, stride=2) on {shape[-2]}x{shape[-1]}: 3x3 convolutions " \
                   f"output {sizes}"
    return None


def judge_block_relu_after_addition(value, inputs, context):
    for key in ("same", "halved"):
        out = as_array(value[key])
        if out.size == 0 or not out.min() >= 0:
            return "the block's output has negative values: ReLU must come last"
    zeroed, shortcut = as_array(value["zeroed"]), as_array(value["shortcut"])
    if zeroed.shape != shortcut.shape or not np.array_equal(zeroed, relu(shortcut)):
        return "with the branch off, negative inputs must be cut by the final ReLU"
    return None


def judge_block_parameter_count(value, inputs, context):
    if len(value) != len(BLOCK_PARAMETERS):
        return "not every block was counted"
    for found, (c_in, c_out, stride) in zip(value, BLOCK_PARAMETERS):
        expected = 9 * c_in * c_out + 9 * c_out ** 2 + 2 * (2 * c_out)
        if stride != 1 or c_in != c_out:
            expected += c_in * c_out + 2 * c_out  # 1x1 projection and its BatchNorm
        if found != expected:
            return (f"ResidualBlock({c_in}, {c_out}, stride={stride}) has {found:,} parameters "
                    f"(conv biases aside); its design has {expected:,}")
    return None


def judge_output_shape(value, eval_batches, classes):
    for batch in eval_batches:
        got = value[f"eval_{batch}"]
        if shapes_differ(got, (batch, 10)):
            return f"batch of {batch}: expected {(batch, 10)}, got {shown(got)}"
    if shapes_differ(value[f"classes_{classes}"], (2, classes)):
        return "num_classes is ignored"
    scores = value["train_4"]
    if not isinstance(scores, dict) or shapes_differ(scores.get("shape"), (4, 10)) \
            or not np.isfinite(as_array(scores)).all():
        return "train mode: wrong shape or non-finite scores"
    return None


def judge_resnet18_output_shape(value, inputs, context):
    message = judge_output_shape(value, (1, 3), 7)
    if message is None and shapes_differ(value["eval_28"], (2, 10)):
        return "28x28 input should work (adaptive pooling)"
    return message


def judge_deep_resnet_output_shape(value, inputs, context):
    return judge_output_shape(value, (3,), 4)


def judge_make_layer_builds_a_stage(value, inputs, context):
    if len(value) != len(MAKE_LAYER):
        return "not every stage was run"
    for i, (found, (arguments, _, expected)) in enumerate(zip(value, MAKE_LAYER)):
        shapes = [None if s is None else tuple(s) for s in found]
        if i == 0 and len(shapes) != len(expected):
            return f"_make_layer{arguments} should run {len(expected)} ResidualBlocks, ran {len(shapes)}"
        if shapes != expected:
            if i == 0:
                return f"the blocks output {shapes}; expected {expected[0]} from the first on"
            return f"_make_layer{arguments}: blocks output {shapes}, expected {expected}"
    return None


def judge_blocks_per_stage(value, network):
    layout = LAYOUTS[network]
    if value["per_stage"] != layout:
        return f"ResidualBlocks per stage: {value['per_stage']}, expected {layout}"
    expected = [(2, channels, size, size) for blocks, (channels, size) in zip(layout, STAGE_SHAPES)
                for _ in range(blocks)]
    shapes = [None if s is None else tuple(s) for s in value["shapes"]]
    if shapes != expected:
        return f"the blocks output {shapes}"
    return None


def judge_resnet18_blocks_per_stage(value, inputs, context):
    return judge_blocks_per_stage(value, "ResNet18")


def judge_deep_resnet_blocks_per_stage(value, inputs, context):
    return judge_blocks_per_stage(value, "DeepResNet")


def judge_parameter_count(value, network, layout_name):
    from deepnets.checks import resnet_parameter_count

    expected = resnet_parameter_count(LAYOUTS[network])
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{network}'s parameters could not be counted"
    if value != expected:
        return (f"{network} has {value:,} parameters (conv biases aside); {layout_name}'s layout has "
                f"{expected:,}")
    return None


def judge_resnet18_parameter_count(value, inputs, context):
    return judge_parameter_count(value, "ResNet18", "ResNet-18")


def judge_deep_resnet_parameter_count(value, inputs, context):
    return judge_parameter_count(value, "DeepResNet", "ResNet-34")


def cross_entropy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of class scores (N, C) against labels (N,), as F.cross_entropy computes it."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), labels].mean())


def judge_learns(value, inputs, context, network):
    test = context["learning"][network]
    labels = inputs[f"{network}_labels"]
    scores = as_array(value, (len(labels), 10))
    loss = cross_entropy(scores, labels)
    if not np.isfinite(loss) or not loss < test["threshold"]:
        return (f"loss {loss:.3f} after {test['steps']} steps on the grader's batch: a correct {network} "
                f"gets below {test['threshold']:g} (a network that learns nothing: 2.30)")
    return None


def judge_resnet18_learns(value, inputs, context):
    return judge_learns(value, inputs, context, "ResNet18")


def judge_deep_resnet_learns(value, inputs, context):
    return judge_learns(value, inputs, context, "DeepResNet")


def bottleneck_parameters(c_in: int, c_out: int, stride: int) -> int:
    """1x1 down to c_out / 4, 3x3, 1x1 up, three BatchNorms; a projection where the shapes differ."""
    width = c_out // 4
    count = c_in * width + 9 * width * width + width * c_out + 2 * (2 * width + c_out)
    if stride != 1 or c_in != c_out:
        count += c_in * c_out + 2 * c_out
    return count


def judge_bottleneck_block_if_attempted(value, inputs, context):
    if not value["attempted"]:
        return None  # an option not chosen costs nothing
    blocks = value["blocks"]
    if len(blocks) != len(BOTTLENECK):
        return "the block was not run on every input"
    for found, (c_in, c_out, stride, size) in zip(blocks, BOTTLENECK):
        name = f"BottleneckBlock({c_in}, {c_out}, stride={stride})"
        out = found["out"]
        side = (size + stride - 1) // stride
        if not isinstance(out, dict) or shapes_differ(out.get("shape"), (2, c_out, side, side)):
            return f"{name} gave {shown(out.get('shape') if isinstance(out, dict) else None)}"
        array = as_array(out)
        if array.size == 0 or not array.min() >= 0:
            return "ReLU comes after the addition"
        expected = bottleneck_parameters(c_in, c_out, stride)
        if found["parameters"] != expected:
            return (f"{name} has {found['parameters']:,} parameters (conv biases aside); its design has "
                    f"{expected:,}")
    return None


def make_context() -> dict:
    """What only the grader knows: the lesson's learning tests, their thresholds included."""
    return {"learning": lesson_learning_tests()}


LEARNING_HINT = ("If the shape checks pass, look for a layer created but not used in forward, a "
                 "missing BatchNorm or ReLU, a detached tensor, or a missing skip connection "
                 "(a 34-layer network without skips does not fit the batch in time).")

CHECKS = [
    Check("block_keeps_shape", probe_block_keeps_shape, judge_block_keeps_shape,
          "Both 3x3 convolutions need padding=1: with stride 1 and equal channels, nothing may change "
          "the shape."),
    Check("block_changes_channels", probe_block_changes_channels, judge_block_changes_channels,
          "conv1 goes from in_channels to out_channels, conv2 from out_channels to out_channels, and the "
          "shortcut must bring x to out_channels too (a 1x1 projection)."),
    Check("block_stride_halves_size", probe_block_stride_halves_size, judge_block_stride_halves_size,
          "Give conv1 stride=stride (with padding=1), and the projection shortcut the same stride."),
    Check("block_identity_shortcut", probe_block_identity_shortcut, judge_block_identity_shortcut,
          "When stride == 1 and in_channels == out_channels, set self.shortcut = nn.Identity() (or an "
          "empty nn.Sequential()); use a projection only when the shapes differ."),
    Check("block_projection_shortcut", probe_block_projection_shortcut, judge_block_projection_shortcut,
          "When the shapes differ, self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, "
          "stride=stride, bias=False), nn.BatchNorm2d(out_channels))."),
    Check("block_skip_connection", probe_block_skip_connection, judge_block_skip_connection,
          "forward must return ReLU(bn2(conv2(...)) + self.shortcut(x)): add the shortcut of the block's "
          "own input before the last ReLU."),
    Check("block_gradient_through_skip", probe_block_gradient_through_skip, judge_block_gradient_through_skip,
          "Add the shortcut of x itself (not a copy made under no_grad or .detach()), and keep the "
          "identity shortcut free of layers."),
    Check("block_downsamples_in_first_conv", probe_block_downsamples_in_first_conv,
          judge_block_downsamples_in_first_conv,
          "Put stride=stride on conv1; conv2 always has stride 1."),
    Check("block_relu_after_addition", probe_block_relu_after_addition, judge_block_relu_after_addition,
          "Apply ReLU once more after the addition, as the last step of forward."),
    Check("block_parameter_count", probe_block_parameter_count, judge_block_parameter_count,
          "Two 3x3 convolutions and two BatchNorms, plus a 1x1 projection with its BatchNorm only where "
          "the shapes differ; no other layers."),
    Check("resnet18_output_shape", probe_resnet18_output_shape, judge_resnet18_output_shape,
          "Follow the table: stem, four stages, nn.AdaptiveAvgPool2d(1), flatten, nn.Linear(512, "
          "num_classes).", timeout=20),
    Check("make_layer_builds_a_stage", probe_make_layer_builds_a_stage, judge_make_layer_builds_a_stage,
          "_make_layer returns nn.Sequential of num_blocks ResidualBlocks: the first from in_channels to "
          "out_channels with stride, the others out_channels to out_channels with stride 1.", timeout=20),
    Check("resnet18_blocks_per_stage", probe_resnet18_blocks_per_stage, judge_resnet18_blocks_per_stage,
          "Build layer1 to layer4 with self._make_layer(64, 64, 2, 1), (64, 128, 2, 2), (128, 256, 2, 2) "
          "and (256, 512, 2, 2).", timeout=20),
    Check("resnet18_parameter_count", probe_resnet18_parameter_count, judge_resnet18_parameter_count,
          "Check the stem (3x3, 1 to 64 channels), the stages' channels, the shortcuts and the linear layer "
          "(512 to num_classes).", timeout=20),
    Check("resnet18_learns", probe_resnet18_learns, judge_resnet18_learns, LEARNING_HINT, timeout=90),
    Check("deep_resnet_output_shape", probe_deep_resnet_output_shape, judge_deep_resnet_output_shape,
          "The same stem and head as ResNet18; only the number of blocks per stage changes.", timeout=30),
    Check("deep_resnet_blocks_per_stage", probe_deep_resnet_blocks_per_stage,
          judge_deep_resnet_blocks_per_stage,
          "Stages of [3, 4, 6, 3] ResidualBlocks, named layer1 to layer4, the first block of stages 2 to 4 "
          "with stride 2.", timeout=30),
    Check("deep_resnet_parameter_count", probe_deep_resnet_parameter_count, judge_deep_resnet_parameter_count,
          "ResNet-34's layout: the stem and head of ResNet18, [3, 4, 6, 3] blocks at 64, 128, 256, 512 "
          "channels.", timeout=30),
    Check("deep_resnet_learns", probe_deep_resnet_learns, judge_deep_resnet_learns, LEARNING_HINT,
          timeout=90),
    Check("bottleneck_block_if_attempted", probe_bottleneck_block_if_attempted,
          judge_bottleneck_block_if_attempted,
          "conv1: 1x1 from in_channels to out_channels // 4; conv2: 3x3 at that width with the stride and "
          "padding 1; conv3: 1x1 up to out_channels; a BatchNorm after each (ReLU after the first two), no "
          "convolution biases; the shortcut rule of ResidualBlock; ReLU after the addition. Or leave the "
          "cell as it was released."),
]
