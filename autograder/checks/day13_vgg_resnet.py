"""The checks of Day 13 (ResNet): one per autograded test cell of resnet.ipynb.

Each is the hidden test of its cell, written once (autograder/assignment.py): the notebook's
hidden part calls `lesson.verify(grade_id, globals())`, and grading runs the same function on
the student's exported models. Every model a check touches is rebuilt from the student's export
with weights drawn here, and every input is drawn here, per submission. The sizes of every case
are the constants below; the learning checks' threshold is the calibrated one
(autograder/calibration/day13_vgg_resnet.json, written by autograder/calibrate_day13.py).

What a block computes is read from its operations as they run (autograder/graphs.py): its
shortcut is the BatchNorm that follows its 1x1 convolution (or x itself when no 1x1
convolution runs), its residual branch ends at its last other BatchNorm, and the skip checks
require the output to be ReLU(branch + shortcut), recorded in the same forward pass with random
weights everywhere. The checks of the block's layers read its declared parameters where the
visible tests do (a projection that is defined but never added still counts as defined: not
adding it costs the skip checks, and only those).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from autograder.assignment import Assignment, Build, NotBuilt, course_secret_seed, normal, skips_in, uniform
from autograder.graphs import Input, Ref, Value

lesson = Assignment(
    "day13_vgg_resnet", notebook="resnet",
    # bottleneck_block is one option of the open part: its check passes when it is left unwritten
    # (see the test cell's comment). my_resnet is read by a person, not run by the grader.
    answer_cells=("residual_block", "resnet18", "deep_resnet", "bottleneck_block"),
    # What the answer cells may use from the notebook's locked setup cell (the plotting helpers aside).
    preamble="import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
             "from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed\n"
             "from deepnets.shapes import print_shape_table\n")
NOTEBOOK = lesson.notebook

# ------------------------------------------------------------ settings of this assignment, said once
CALIBRATION = Path(__file__).resolve().parent.parent / "calibration" / "day13_vgg_resnet.json"
# The learning checks (resnet18_learns, deep_resnet_learns): autograder/policy.py's overfit_loss
# on the rebuilt network, with this recipe; its threshold is calibrated (autograder/calibrate_day13.py).
OVERFIT = {"seed": 0, "steps": 8, "batch_size": 16, "image_size": 8}
NETWORKS = {"ResNet18": [2, 2, 2, 2], "DeepResNet": [3, 4, 6, 3]}     # ResidualBlocks per stage
THRESHOLDS = {network: check["threshold"]
              for network, check in json.loads(CALIBRATION.read_text())["checks"].items()}
STAGE_SHAPES = [(64, 32), (128, 16), (256, 8), (512, 4)]  # channels and size of each stage's output
# The networks' example input, and the batch on which the parameter-count and blocks-per-stage
# checks measure what the output depends on (which layers and skip connections carry influence,
# autograder/graphs.py): one forward pass per layer or skip, so the batch sets the cost. With 4
# images, as before 5 December 2026, the two DeepResNet checks took 1.6-1.8 s each on the solution
# (one thread); with 2, 0.9-1.0 s, and the same layers and skips counted.
STAGE_INPUT = (2, 1, 32, 32)

# Cases: ResidualBlock(in, out, stride) is exported once per configuration and shared between
# checks; the input sizes vary freely (the export keeps batch, height and width free).
# block_keeps_shape: (input shape, train mode); the visible test's fresh blocks run in train mode.
KEEPS_SHAPE = [((2, 8, 32, 32), True), ((2, 64, 16, 16), True), ((2, 4, 7, 7), True),
               ((1, 6, 9, 6), False), ((4, 16, 28, 28), False)]
# block_changes_channels: (input shape, out_channels); the first is the visible test's.
CHANGES_CHANNELS = [((2, 8, 12, 12), 16), ((3, 16, 10, 10), 8), ((3, 1, 32, 32), 64), ((3, 4, 9, 4), 12)]
# block_stride_halves_size: (input shape, out_channels, expected height and width).
STRIDE_HALVES = [((2, 16, 32, 32), 32, (16, 16)), ((2, 16, 7, 7), 32, (4, 4)), ((2, 8, 9, 5), 8, (5, 3)),
                 ((2, 16, 32, 32), 16, (16, 16))]
# block_identity_shortcut: (channels, input shape).
IDENTITY = [(16, (2, 16, 8, 8)), (64, (2, 64, 4, 4))]
# block_projection_shortcut: (in, out, stride); the first is the visible test's, run on PROJECTION_X.
PROJECTION = [(16, 32, 2), (8, 16, 1), (16, 16, 2)]
PROJECTION_X = (2, 16, 9, 9)
# block_skip_connection: (in, out, stride, train mode); eval mode on (2, in, 10, 10) (the visible
# test's), train mode on (3, in, 8, 8).
SKIP = [(8, 8, 1, False), (8, 16, 2, False), (6, 6, 1, True), (4, 12, 1, True), (8, 8, 2, True)]
GRADIENT = (6, (3, 6, 9, 9))                     # channels, input shape
# block_downsamples_in_first_conv: (in, out, input shape, expected size of both 3x3 outputs).
DOWNSAMPLES = [(8, 16, (2, 8, 16, 16), (8, 8)), (8, 8, (2, 8, 9, 9), (5, 5))]
RELU = [(4, 4, 1), (4, 8, 2)]                   # blocks whose outputs must not be negative
RELU_X = (5, 4, 8, 8)
BLOCK_PARAMETERS = [(4, 4, 1), (16, 16, 1), (16, 32, 2), (4, 12, 1), (16, 16, 2)]
# make_layer_builds_a_stage: (_make_layer's arguments, input shape, expected output shapes).
MAKE_LAYER = [((64, 128, 3, 2), (2, 64, 16, 16), [(2, 128, 8, 8)] * 3),
              ((32, 32, 1, 1), (2, 32, 8, 8), [(2, 32, 8, 8)]),
              ((16, 48, 4, 2), (2, 16, 9, 9), [(2, 48, 5, 5)] * 4)]
# resnet18_output_shape / deep_resnet_output_shape: eval batches, the other num_classes.
OUTPUT_SHAPE = {"ResNet18": ((1, 3), 7), "DeepResNet": ((3,), 4)}
# bottleneck_block_if_attempted: (in, out, stride, input size), on (2, in, size, size) in eval mode.
BOTTLENECK = [(16, 16, 1, 8), (16, 32, 2, 8), (8, 32, 1, 5)]


def block(in_channels: int, out_channels: int, stride: int = 1) -> Build:
    return Build("ResidualBlock", (in_channels, out_channels, stride), (2, in_channels, 8, 8))


def network(name: str, *args) -> Build:
    return Build(name, args, STAGE_INPUT)


def stage(arguments) -> Build:
    """ResNet18()._make_layer(*arguments): a fresh network's method (autograder/sandbox_runtime/exporting.py)."""
    return Build("ResNet18._make_layer", tuple(arguments), (2, arguments[0], 8, 8))


def bottleneck(in_channels: int, out_channels: int, stride: int) -> Build:
    return Build("BottleneckBlock", (in_channels, out_channels, stride), (2, in_channels, 8, 8))


# ---------------------------------------------------------------------- reading a rebuilt model

def run_recorded(model, x, train: bool):
    """(output, the graph's operations, operation index -> the value it gave) for model(x)."""
    model.train(train)
    record = []
    out = model(x, record=record)
    nodes = model.graphs["train" if train else "eval"][0]
    position = {id(node): i for i, node in enumerate(nodes)}
    return out, nodes, {position[id(node)]: value for node, value in record}


def is_conv(node) -> bool:
    return node.op.startswith("aten.conv2d.")


def is_norm(node) -> bool:
    return node.op == "aten.batch_norm.default"


def kernel(model, node):
    weight = node.args[1]
    return tuple(model.tensor(weight.index).shape[2:]) if isinstance(weight, Ref) else None


def anatomy(model, nodes) -> tuple[int, int | None]:
    """(where the residual branch ends, where the shortcut ends, None for the identity), as
    operation indices: the shortcut is the first 1x1 convolution of the block's own input x, with
    the BatchNorm that reads its output; the branch ends at the last other BatchNorm. A 1x1
    convolution of anything else (x * 0, say) is no shortcut: the skip checks then compare the
    output with ReLU(branch + x)."""
    shortcut = next((i for i, node in enumerate(nodes) if is_conv(node) and kernel(model, node) == (1, 1)
                     and node.args and node.args[0] == Input()), None)
    if shortcut is not None:
        shortcut = next((i for i, node in enumerate(nodes)
                         if is_norm(node) and node.args and node.args[0] == Value(shortcut)), shortcut)
    norms = [i for i, node in enumerate(nodes) if is_norm(node) and i != shortcut]
    assert norms, "the block has no BatchNorm2d layer on its residual branch"
    return norms[-1], shortcut


def randomize_batchnorms(model, rng) -> None:
    """BatchNorm scales and shifts away from 1 and 0, so no part of the block is an identity by accident."""
    with torch.no_grad():
        for layer in model.layers("train"):
            if layer["kind"] == "bn" and layer["weight"] is not None and layer["bias"] is not None:
                model.tensor(layer["weight"]).copy_(uniform(rng, model.tensor(layer["weight"]).numel()) + 0.5)
                model.tensor(layer["bias"]).copy_(normal(rng, model.tensor(layer["bias"]).numel()) * 0.5)


def zero_norm(model, node) -> None:
    """Scale and shift of one BatchNorm set to zero: it outputs 0."""
    assert isinstance(node.args[1], Ref) and isinstance(node.args[2], Ref), \
        "the block's last BatchNorm2d has no scale and shift"
    with torch.no_grad():
        model.tensor(node.args[1].index).zero_()
        model.tensor(node.args[2].index).zero_()


def parameter_shapes(model) -> list[tuple]:
    """The shape of every parameter the model declares, used or not."""
    return [tuple(p.shape) for p in model.parameters()]


def parameters_without_conv_biases(model) -> int:
    """deepnets.checks.parameters_without_conv_biases: every parameter but the convolutions' biases."""
    biases = {node.args[2].index for nodes, _ in model.graphs.values() for node in nodes
              if is_conv(node) and len(node.args) > 2 and isinstance(node.args[2], Ref)}
    return sum(p.numel() for name, p in model.named_parameters() if int(name[1:]) not in biases)


def block_design(in_channels: int, out_channels: int, stride: int) -> int:
    count = 9 * in_channels * out_channels + 9 * out_channels ** 2 + 2 * (2 * out_channels)
    if stride != 1 or in_channels != out_channels:
        count += in_channels * out_channels + 2 * out_channels  # 1x1 projection and its BatchNorm
    return count


def shape_of(model, x, train: bool) -> tuple:
    model.train(train)
    with torch.no_grad():
        return tuple(model(x).shape)


# The blocks the skip checks build: whether the student's block has its skip is read from these.
SKIP_BUILDS = [block(*case[:3]) for case in SKIP] + [block(GRADIENT[0], GRADIENT[0])]


def block_outputs(model, x, skip_stem: bool) -> list[tuple]:
    """The output shape of each ResidualBlock as the model runs x (eval mode): that of every second
    3x3 convolution (a basic block's last one; the network's stem, its first 3x3, left out)."""
    with torch.no_grad():
        _, nodes, values = run_recorded(model, x, False)
    convs = [i for i, node in enumerate(nodes) if is_conv(node) and kernel(model, node) == (3, 3)]
    if skip_stem:
        convs = convs[1:]
    return [tuple(values[i].shape) for i in convs[1::2]]


def per_stage(shapes: list[tuple]) -> list[int]:
    """Blocks in each run of equal output shapes."""
    counts = []
    for i, shape in enumerate(shapes):
        if i and shape == shapes[i - 1]:
            counts[-1] += 1
        else:
            counts.append(1)
    return counts


# --------------------------------------------------------------------- Part A: the block

@lesson.check("block_keeps_shape", builds=sorted({block(s[1], s[1]) for s, _ in KEEPS_SHAPE}, key=str),
              hint="Both 3x3 convolutions need padding=1: with stride 1 and equal channels, nothing may "
                   "change the shape.")
def block_keeps_shape(models, rng):
    for shape, train in KEEPS_SHAPE:
        got = shape_of(models[block(shape[1], shape[1]).key], normal(rng, *shape), train)
        assert got == shape, f"shape changed for input {shape}: got {got}"


@lesson.check("block_changes_channels", builds=[block(s[1], out) for s, out in CHANGES_CHANNELS],
              hint="conv1 goes from in_channels to out_channels, conv2 from out_channels to out_channels, and "
                   "the shortcut must bring x to out_channels too (a 1x1 projection).")
def block_changes_channels(models, rng):
    for i, (shape, c_out) in enumerate(CHANGES_CHANNELS):
        batch, c_in, height, width = shape
        got = shape_of(models[block(c_in, c_out).key], normal(rng, *shape), i == 0)
        want = (batch, c_out, height, width)
        assert got == want, f"ResidualBlock({c_in}, {c_out}) should map {shape} to {want}, got {got}"


@lesson.check("block_stride_halves_size", builds=[block(s[1], out, 2) for s, out, _ in STRIDE_HALVES],
              hint="Give conv1 stride=stride (with padding=1), and the projection shortcut the same stride.")
def block_stride_halves_size(models, rng):
    for i, (shape, c_out, size) in enumerate(STRIDE_HALVES):
        got = shape_of(models[block(shape[1], c_out, 2).key], normal(rng, *shape), i == 0)
        want = (shape[0], c_out, *size)
        assert got == want, f"ResidualBlock({shape[1]}, {c_out}, stride=2) should map {shape} to {want}, got {got}"


@lesson.check("block_identity_shortcut", builds=[block(c, c) for c, _ in IDENTITY],
              hint="When stride == 1 and in_channels == out_channels, set self.shortcut = nn.Identity() (or an "
                   "empty nn.Sequential()); use a projection only when the shapes differ.")
def block_identity_shortcut(models, rng):
    for channels, shape in IDENTITY:
        model = models[block(channels, channels).key]
        convs = [layer for layer in model.layers() if layer["kind"] == "conv"]
        assert not any(tuple(conv["kernel"]) == (1, 1) for conv in convs), \
            f"with stride 1 and in_channels == out_channels ({channels}), shortcut(x) must be x, not a projection"
        assert len(convs) == 2, f"a block whose shapes match has two convolutions, not {len(convs)}"
        found, expected = parameters_without_conv_biases(model), block_design(channels, channels, 1)
        assert found == expected, (f"an identity shortcut has no parameters: ResidualBlock({channels}, {channels}) "
                                   f"has {found:,} (conv biases aside), two 3x3 convolutions and two BatchNorms "
                                   f"{expected:,}")
        assert shape_of(model, normal(rng, *shape), False) == shape, \
            f"ResidualBlock({channels}, {channels}) changed the shape of its input {shape}"


@lesson.check("block_projection_shortcut", builds=[block(*case) for case in PROJECTION],
              hint="When the shapes differ, self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, "
                   "stride=stride, bias=False), nn.BatchNorm2d(out_channels)).")
def block_projection_shortcut(models, rng):
    for i, (c_in, c_out, stride) in enumerate(PROJECTION):
        name = f"ResidualBlock({c_in}, {c_out}, stride={stride})"
        model = models[block(c_in, c_out, stride).key]
        runs = [layer for layer in model.layers() if layer["kind"] == "conv" and tuple(layer["kernel"]) == (1, 1)]
        if not runs:
            # Defined but not added: forward's business, which the skip checks decide.
            declared = [s for s in parameter_shapes(model) if s == (c_out, c_in, 1, 1)]
            found, expected = parameters_without_conv_biases(model), block_design(c_in, c_out, stride)
            assert len(declared) == 1, f"{name} needs a projection shortcut: one 1x1 convolution"
            assert found in (expected, expected + c_out), f"{name}: the projection ends with a BatchNorm2d({c_out})"
            continue
        assert len(runs) == 1, "the projection is one 1x1 convolution"
        conv = runs[0]
        assert (conv["in"], conv["out"], tuple(conv["stride"])) == (c_in, c_out, (stride, stride)), \
            f"{name}: the projection should map {c_in} to {c_out} channels with stride {stride}"
        nodes = model.graphs["eval"][0]
        _, shortcut = anatomy(model, nodes)
        assert shortcut is not None, f"{name}: the projection must be a 1x1 convolution of the block's input x"
        norm = nodes[shortcut]
        assert is_norm(norm) and isinstance(norm.args[1], Ref) and model.tensor(norm.args[1].index).numel() == c_out, \
            f"the projection ends with a BatchNorm2d({c_out})"
        if i == 0:
            with torch.no_grad():
                out, _, values = run_recorded(model, normal(rng, *PROJECTION_X), False)
            assert values[shortcut].shape == out.shape, "the shortcut's output must have the block's output shape"


@lesson.check("block_skip_connection", builds=[block(*case[:3]) for case in SKIP],
              hint="forward must return ReLU(bn2(conv2(...)) + self.shortcut(x)): add the shortcut of the block's "
                   "own input before the last ReLU.")
def block_skip_connection(models, rng):
    # Random weights everywhere, so the branch is not zero: the output must be ReLU(branch +
    # shortcut), both recorded in the same forward pass. A block that looks at its weights to
    # decide what to return cannot pass this.
    for c_in, c_out, stride, train in SKIP:
        model = models[block(c_in, c_out, stride).key]
        randomize_batchnorms(model, rng)
        x = normal(rng, 3, c_in, 8, 8) if train else normal(rng, 2, c_in, 10, 10)
        with torch.no_grad():
            out, nodes, values = run_recorded(model, x, train)
        end, shortcut = anatomy(model, nodes)
        branch, carried = values[end], x if shortcut is None else values[shortcut]
        where = "in train mode, " if train else ""
        assert out.shape == branch.shape == carried.shape and \
            torch.allclose(out, F.relu(branch + carried), rtol=1e-4, atol=1e-5), \
            f"{where}ResidualBlock({c_in}, {c_out}, stride={stride}) does not add shortcut(x)"


@lesson.check("block_gradient_through_skip", builds=[block(GRADIENT[0], GRADIENT[0])],
              hint="Add the shortcut of x itself (not a copy made under no_grad or .detach()), and keep the "
                   "identity shortcut free of layers.")
def block_gradient_through_skip(models, rng):
    channels, shape = GRADIENT
    model = models[block(channels, channels).key]
    randomize_batchnorms(model, rng)
    x = normal(rng, *shape, requires_grad=True)
    out, nodes, values = run_recorded(model, x, True)
    end, _ = anatomy(model, nodes)
    gradient, = torch.autograd.grad(out.sum(), x, allow_unused=True, retain_graph=True)
    assert gradient is not None, "no gradient reached the input"
    # What ReLU(branch + x) passes back to x: through the branch, and 1 per open ReLU through the skip.
    expected, = torch.autograd.grad(F.relu(values[end] + x).sum(), x)
    assert torch.allclose(gradient, expected, rtol=1e-4, atol=1e-5), \
        "the gradient does not reach the input through the skip path"


@lesson.check("block_downsamples_in_first_conv", builds=[block(c_in, c_out, 2) for c_in, c_out, _, _ in DOWNSAMPLES],
              hint="Put stride=stride on conv1; conv2 always has stride 1.")
def block_downsamples_in_first_conv(models, rng):
    for i, (c_in, c_out, shape, size) in enumerate(DOWNSAMPLES):
        model = models[block(c_in, c_out, 2).key]
        with torch.no_grad():
            _, nodes, values = run_recorded(model, normal(rng, *shape), True)
        sizes = [tuple(values[j].shape[-2:]) for j, node in enumerate(nodes)
                 if is_conv(node) and kernel(model, node) == (3, 3)]
        if i == 0:
            assert len(sizes) == 2, f"expected two 3x3 convolutions to run, found {len(sizes)}"
            assert sizes[0] == size, f"the first 3x3 convolution outputs {sizes[0]}: it should apply the stride {size}"
            assert sizes[1] == size, f"the second 3x3 convolution outputs {sizes[1]}: it should keep the size {size}"
        assert sizes == [size, size], \
            f"ResidualBlock({c_in}, {c_out}, stride=2) on {shape[-2]}x{shape[-1]}: 3x3 convolutions output {sizes}"


@lesson.check("block_relu_after_addition", builds=[block(*case) for case in RELU],
              hint="Apply ReLU once more after the addition, as the last step of forward.")
def block_relu_after_addition(models, rng):
    x = normal(rng, *RELU_X) * 3
    for case in RELU:
        model = models[block(*case).key]
        randomize_batchnorms(model, rng)
        with torch.no_grad():
            assert model.train()(x).min() >= 0, "the block's output has negative values: ReLU must come last"
    # With the branch off (its last BatchNorm zeroed), negative inputs are cut by the final ReLU.
    model = models[block(*RELU[0]).key].eval()
    randomize_batchnorms(model, rng)
    end, _ = anatomy(model, model.graphs["eval"][0])
    zero_norm(model, model.graphs["eval"][0][end])
    negative = -x.abs() - 0.1
    with torch.no_grad():
        out, nodes, values = run_recorded(model, negative, False)
    _, shortcut = anatomy(model, nodes)
    carried = negative if shortcut is None else values[shortcut]
    assert out.shape == carried.shape and torch.equal(out, F.relu(carried)), \
        "with the branch off, negative inputs must be cut by the final ReLU"


# Of a block's or network's declared parameters, the share its output must depend on. Declared
# is what the lesson counts (count_parameters), so the counts stay declared; but parameters
# declared only to reach a count (layers forward never uses, or uses multiplied by 0) are then
# most of the model. A block without its skip leaves only its projection unused (4% to 6% of
# the checked blocks), a network built from it 1.5% (ResNet-18) and 0.8% (ResNet-34): they
# keep these points, as only the skip checks may go.
MATERIAL_SHARE = 0.9


def assert_mostly_material(model, declared: int, inputs, name: str) -> None:
    # Measured until the share is reached: the largest layers first, the rest only when it is not.
    material = model.parameter_count("train", inputs, enough=math.ceil(MATERIAL_SHARE * declared))
    assert material >= MATERIAL_SHARE * declared, \
        (f"{name}'s output depends on only {material:,} of its {declared:,} parameters: count the "
         f"layers forward uses, not parameters that are declared and never used")


@lesson.check("block_parameter_count", builds=[block(*case) for case in BLOCK_PARAMETERS],
              hint="Two 3x3 convolutions and two BatchNorms, plus a 1x1 projection with its BatchNorm only where "
                   "the shapes differ; no other layers.")
def block_parameter_count(models, rng):
    for c_in, c_out, stride in BLOCK_PARAMETERS:
        model = models[block(c_in, c_out, stride).key]
        found, expected = parameters_without_conv_biases(model), block_design(c_in, c_out, stride)
        assert found == expected, (f"ResidualBlock({c_in}, {c_out}, stride={stride}) has {found:,} parameters "
                                   f"(conv biases aside); its design has {expected:,}")
        assert_mostly_material(model, found, normal(rng, 2, c_in, 8, 8),
                               f"ResidualBlock({c_in}, {c_out}, stride={stride})")


# ------------------------------------------------------------------ Parts B and C: the networks

def check_output_shape(models, rng, name: str) -> None:
    eval_batches, classes = OUTPUT_SHAPE[name]
    model = models[network(name).key]
    for batch in eval_batches:
        got = shape_of(model, uniform(rng, batch, 1, 32, 32), False)
        assert got == (batch, 10), f"batch of {batch}: expected {(batch, 10)}, got {got}"
    assert shape_of(models[network(name, classes).key], uniform(rng, 2, 1, 32, 32), False) == (2, classes), \
        "num_classes is ignored"
    scores = model.train()(uniform(rng, 4, 1, 32, 32))
    assert tuple(scores.shape) == (4, 10) and torch.isfinite(scores).all(), \
        "train mode: wrong shape or non-finite scores"


def check_blocks_per_stage(models, rng, name: str) -> None:
    layout = NETWORKS[name]
    shapes = block_outputs(models[network(name).key], normal(rng, *STAGE_INPUT), skip_stem=True)
    assert per_stage(shapes) == layout, f"ResidualBlocks per stage: {per_stage(shapes)}, expected {layout}"
    expected = [(2, channels, size, size) for blocks, (channels, size) in zip(layout, STAGE_SHAPES)
                for _ in range(blocks)]
    assert shapes == expected, f"the blocks output {shapes}"
    # Built from the student's own blocks: where ResidualBlock has its skip at the sizes the skip
    # checks build, every block of the network runs one too. A block without any skip loses the
    # skip checks only, not this one too.
    if skips_in(models, SKIP_BUILDS):
        # Counted only where the output depends on what the skip carries: conv1x1(x) * 0 is none.
        skips = models[network(name).key].skip_connections("train", normal(rng, *STAGE_INPUT))
        assert skips >= sum(layout), (f"ResidualBlock adds its input back, but {name} runs {skips} skip "
                                      f"connections for its {sum(layout)} blocks: build it from your ResidualBlocks")


def check_parameter_count(models, rng, name: str, layout_name: str) -> None:
    from deepnets.checks import resnet_parameter_count

    expected = resnet_parameter_count(NETWORKS[name])
    model = models[network(name).key]
    found = parameters_without_conv_biases(model)
    assert found == expected, \
        f"{name} has {found:,} parameters (conv biases aside); {layout_name}'s layout has {expected:,}"
    assert_mostly_material(model, found, normal(rng, *STAGE_INPUT), name)


def check_learns(models, name: str) -> None:
    from autograder.policy import overfit_loss

    threshold = THRESHOLDS[name]
    # The batch is drawn with the course's secret: a network cannot carry its answers (the 16
    # first digits are public). Calibrated on the first 16; any 16 fit alike.
    loss = overfit_loss(lambda: models[network(name).key], **OVERFIT,
                        batch_seed=course_secret_seed(f"{lesson.name}:overfit-batch"))
    assert loss < threshold, (f"loss {loss:.3f} after {OVERFIT['steps']} steps on the grader's batch: a correct "
                              f"{name} gets below {threshold:g} (a network that learns nothing: 2.30)")


LEARNING_HINT = ("If the shape checks pass, look for a layer created but not used in forward, a "
                 "missing BatchNorm or ReLU, a detached tensor, or a missing skip connection "
                 "(a 34-layer network without skips does not fit the batch in time).")


@lesson.check("resnet18_output_shape", builds=[network("ResNet18"), network("ResNet18", OUTPUT_SHAPE["ResNet18"][1])],
              hint="Follow the table: stem, four stages, nn.AdaptiveAvgPool2d(1), flatten, nn.Linear(512, "
                   "num_classes).", timeout=30)
def resnet18_output_shape(models, rng):
    check_output_shape(models, rng, "ResNet18")
    got = shape_of(models[network("ResNet18").key], uniform(rng, 2, 1, 28, 28), False)
    assert got == (2, 10), "28x28 input should work (adaptive pooling)"


@lesson.check("make_layer_builds_a_stage", builds=[stage(arguments) for arguments, _, _ in MAKE_LAYER],
              hint="_make_layer returns nn.Sequential of num_blocks ResidualBlocks: the first from in_channels to "
                   "out_channels with stride, the others out_channels to out_channels with stride 1.", timeout=30)
def make_layer_builds_a_stage(models, rng):
    for i, (arguments, shape, expected) in enumerate(MAKE_LAYER):
        shapes = block_outputs(models[stage(arguments).key], normal(rng, *shape), skip_stem=False)
        if i == 0:
            assert len(shapes) == len(expected), \
                f"_make_layer{arguments} should run {len(expected)} ResidualBlocks, ran {len(shapes)}"
            assert shapes == expected, f"the blocks output {shapes}; expected {expected[0]} from the first on"
        assert shapes == expected, f"_make_layer{arguments}: blocks output {shapes}, expected {expected}"


@lesson.check("resnet18_blocks_per_stage", builds=[network("ResNet18"), *SKIP_BUILDS],
              hint="Build layer1 to layer4 with self._make_layer(64, 64, 2, 1), (64, 128, 2, 2), (128, 256, 2, 2) "
                   "and (256, 512, 2, 2).", timeout=30)
def resnet18_blocks_per_stage(models, rng):
    check_blocks_per_stage(models, rng, "ResNet18")


@lesson.check("resnet18_parameter_count", builds=[network("ResNet18")],
              hint="Check the stem (3x3, 1 to 64 channels), the stages' channels, the shortcuts and the linear layer "
                   "(512 to num_classes).", timeout=30)
def resnet18_parameter_count(models, rng):
    check_parameter_count(models, rng, "ResNet18", "ResNet-18")


@lesson.check("resnet18_learns", builds=[network("ResNet18")], hint=LEARNING_HINT, timeout=90, by_model=True)
def resnet18_learns(models, rng):
    check_learns(models, "ResNet18")


@lesson.check("deep_resnet_output_shape",
              builds=[network("DeepResNet"), network("DeepResNet", OUTPUT_SHAPE["DeepResNet"][1])],
              hint="The same stem and head as ResNet18; only the number of blocks per stage changes.", timeout=30)
def deep_resnet_output_shape(models, rng):
    check_output_shape(models, rng, "DeepResNet")


@lesson.check("deep_resnet_blocks_per_stage", builds=[network("DeepResNet"), *SKIP_BUILDS],
              hint="Stages of [3, 4, 6, 3] ResidualBlocks, named layer1 to layer4, the first block of stages 2 to 4 "
                   "with stride 2.", timeout=30)
def deep_resnet_blocks_per_stage(models, rng):
    check_blocks_per_stage(models, rng, "DeepResNet")


@lesson.check("deep_resnet_parameter_count", builds=[network("DeepResNet")],
              hint="ResNet-34's layout: the stem and head of ResNet18, [3, 4, 6, 3] blocks at 64, 128, 256, 512 "
                   "channels.", timeout=30)
def deep_resnet_parameter_count(models, rng):
    check_parameter_count(models, rng, "DeepResNet", "ResNet-34")


@lesson.check("deep_resnet_learns", builds=[network("DeepResNet")], hint=LEARNING_HINT, timeout=90, by_model=True)
def deep_resnet_learns(models, rng):
    check_learns(models, "DeepResNet")


# --------------------------------------------------------------------- the open part's option

def bottleneck_design(c_in: int, c_out: int, stride: int) -> int:
    """1x1 down to c_out / 4, 3x3, 1x1 up, three BatchNorms; a projection where the shapes differ."""
    width = c_out // 4
    count = c_in * width + 9 * width * width + width * c_out + 2 * (2 * width + c_out)
    if stride != 1 or c_in != c_out:
        count += c_in * c_out + 2 * c_out
    return count


def not_attempted(error: NotBuilt) -> bool:
    """The build failed as the untouched option fails: the release's stub raises NotImplementedError,
    and a notebook without the class raises NameError before any line of the student's cell runs."""
    text = str(error)
    return "NotImplementedError" in text or ("NameError" in text and " in your cell " not in text)


@lesson.check("bottleneck_block_if_attempted", builds=[bottleneck(*case[:3]) for case in BOTTLENECK],
              hint="conv1: 1x1 from in_channels to out_channels // 4; conv2: 3x3 at that width with the stride and "
                   "padding 1; conv3: 1x1 up to out_channels; a BatchNorm after each (ReLU after the first two), no "
                   "convolution biases; the shortcut rule of ResidualBlock; ReLU after the addition. Or leave the "
                   "cell as it was released.")
def bottleneck_block_if_attempted(models, rng):
    try:
        models[bottleneck(*BOTTLENECK[0][:3]).key]
    except NotBuilt as error:
        if not_attempted(error):
            return  # an option not chosen costs nothing
        raise
    for c_in, c_out, stride, size in BOTTLENECK:
        name = f"BottleneckBlock({c_in}, {c_out}, stride={stride})"
        model = models[bottleneck(c_in, c_out, stride).key]
        randomize_batchnorms(model, rng)
        side = (size + stride - 1) // stride
        model.eval()
        with torch.no_grad():
            out = model(normal(rng, 2, c_in, size, size))
        assert tuple(out.shape) == (2, c_out, side, side), f"{name} gave {tuple(out.shape)}"
        assert out.min() >= 0, "ReLU comes after the addition"
        found, expected = parameters_without_conv_biases(model), bottleneck_design(c_in, c_out, stride)
        assert found == expected, \
            f"{name} has {found:,} parameters (conv biases aside); its design has {expected:,}"
