"""The checks of Day 13, Exercise 1 (VGG): one per autograded test cell of vgg.ipynb.

Each is the hidden test of its cell, written once (autograder/assignment.py): the notebook's
hidden part calls `lesson.verify(grade_id, globals())`, and grading runs the same function on
the student's exported `vgg_block` and `VGG16_MNIST`. Every model a check touches is rebuilt
from the export with weights drawn here, and every input is drawn here, per submission; the
sizes are the test cells' own.
"""

from __future__ import annotations

import torch

from autograder.assignment import Assignment, Build, normal, uniform

lesson = Assignment(
    "day13_vgg", notebook="vgg", answer_cells=("vgg_block", "vgg16"),
    preamble="import math\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
             "from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed\n"
             "from deepnets.shapes import print_shape_table\n")

# ------------------------------------------------ the test cells' cases (sizes, not values)
# vgg_block_output_shape: (num_convs, in, out, input size); the first is the visible test's.
BLOCK_SHAPES = [(2, 1, 64, 32), (1, 3, 8, 8), (3, 16, 32, 6), (4, 8, 8, 10)]
# vgg_block_layers: vgg_block(3, 4, 8) on (2, 4, 8, 8).
LAYERS_BLOCK = (3, 4, 8)
LAYERS_X = (2, 4, 8, 8)
# vgg_block_parameter_count: (num_convs, in, out); the first is the visible test's.
BLOCK_PARAMETERS = [(2, 1, 64), (3, 128, 256), (1, 5, 7)]
# VGG-16: the convolutions' (in, out) channels, block by block, each pooling's output for a batch
# of 2, and the linear layers before the last (4096 to num_classes).
VGG16_BLOCKS = [[(1, 64), (64, 64)], [(64, 128), (128, 128)], [(128, 256), (256, 256), (256, 256)],
                [(256, 512), (512, 512), (512, 512)], [(512, 512), (512, 512), (512, 512)]]
POOL_SHAPES = [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2), (2, 512, 1, 1)]
LINEAR = [(512, 4096), (4096, 4096)]
# VGG-16 has 33.6 million parameters, so it is built once, with num_classes=4 (the test cell's
# second size): its scores show whether num_classes is used, and its parameters are counted.
NUM_CLASSES = 4
VGG16 = Build("VGG16_MNIST", (NUM_CLASSES,), (2, 1, 32, 32))


def block(num_convs: int, c_in: int, c_out: int) -> Build:
    """vgg_block(num_convs, c_in, c_out), exported at its output-shape case's size (else 8x8).

    A build is keyed by its arguments, so every check that uses the same block shares one export.
    """
    size = next((case[3] for case in BLOCK_SHAPES if case[:3] == (num_convs, c_in, c_out)), 8)
    return Build("vgg_block", (num_convs, c_in, c_out), (2, c_in, size, size))


def block_parameters(num_convs: int, c_in: int, c_out: int) -> int:
    """3x3 weights and a bias per convolution; ReLU and pooling have none."""
    return (9 * c_in + 1) * c_out + (num_convs - 1) * (9 * c_out + 1) * c_out


def vgg16_parameters(num_classes: int = 10) -> int:
    convs = sum((9 * c_in + 1) * c_out for stage in VGG16_BLOCKS for c_in, c_out in stage)
    return convs + sum((n_in + 1) * n_out for n_in, n_out in LINEAR) + (LINEAR[-1][1] + 1) * num_classes


def parameter_count(model) -> int:
    """count_parameters of a rebuilt model: the parameters its forward uses."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def shown(shape) -> str:
    return str(tuple(shape))


# --------------------------------------------------------------------------- Part A: the block

@lesson.check("vgg_block_output_shape", builds=[block(*case[:3]) for case in BLOCK_SHAPES],
              hint="Every convolution needs padding=1 (the size stays), and the block ends with "
                   "nn.MaxPool2d(kernel_size=2, stride=2) (the size halves).")
def vgg_block_output_shape(models, rng):
    for num_convs, c_in, c_out, size in BLOCK_SHAPES:
        with torch.no_grad():
            out = models[block(num_convs, c_in, c_out).key](normal(rng, 2, c_in, size, size))
        want = (2, c_out, size // 2, size // 2)
        assert tuple(out.shape) == want, \
            f"vgg_block({num_convs}, {c_in}, {c_out}) on {size}x{size}: expected {want}, got {shown(out.shape)}"


@lesson.check("vgg_block_layers", builds=[block(*LAYERS_BLOCK)],
              hint="A loop of num_convs times nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1) "
                   "and nn.ReLU(); after the first, in_channels = out_channels; then one nn.MaxPool2d(2, 2).")
def vgg_block_layers(models, rng):
    num_convs, c_in, c_out = LAYERS_BLOCK
    model = models[block(*LAYERS_BLOCK).key]
    x = normal(rng, *LAYERS_X)
    record = []
    with torch.no_grad():
        out = model(x, record=record)
    # What runs, in order (a layer defined but not used is not here).
    layers = [layer for layer in model.layers("train") if layer["kind"] in ("conv", "relu", "maxpool")]
    convs = [layer for layer in layers if layer["kind"] == "conv"]
    assert len(convs) == num_convs, \
        f"vgg_block({num_convs}, {c_in}, {c_out}) has {len(convs)} convolutions, expected {num_convs}"
    # padding=1 on a 3x3 kernel (stride 1) keeps the height and width: read from the outputs.
    sizes = [tuple(value.shape[2:]) for node, value in record if node.op.startswith("aten.conv2d")]
    assert all(tuple(conv["kernel"]) == (3, 3) for conv in convs) and \
        all(size == tuple(x.shape[2:]) for size in sizes), "use 3x3 kernels with padding=1"
    assert [(conv["in"], conv["out"]) for conv in convs] == [(c_in, c_out)] + [(c_out, c_out)] * (num_convs - 1), \
        "the first convolution changes the channels"
    assert sum(layer["kind"] == "maxpool" for layer in layers) == 1, "one max pooling per block"
    assert out.numel() > 0 and out.min() >= 0, "the block's output has negative values: ReLU after each convolution"
    follows = [layers[i + 1]["kind"] if i + 1 < len(layers) else None
               for i, layer in enumerate(layers) if layer["kind"] == "conv"]
    assert all(kind == "relu" for kind in follows), "ReLU after each convolution"


@lesson.check("vgg_block_parameter_count", builds=[block(*case) for case in BLOCK_PARAMETERS],
              hint="Only the convolutions have parameters: 3x3 weights and a bias each; no other layers.")
def vgg_block_parameter_count(models, rng):
    for case in BLOCK_PARAMETERS:
        found, expected = parameter_count(models[block(*case).key]), block_parameters(*case)
        assert found == expected, f"vgg_block{case} has {found:,} parameters, expected {expected:,}"


# ------------------------------------------------------------------------- Part B: VGG-16

@lesson.check("vgg16_output_shape", builds=[VGG16], timeout=30,
              hint="features (five blocks), flatten, then classifier ending in nn.Linear(4096, num_classes).")
def vgg16_output_shape(models, rng):
    model = models[VGG16.key].eval()
    for batch in (3, 2):
        with torch.no_grad():
            scores = model(uniform(rng, batch, 1, 32, 32))
        want = (batch, NUM_CLASSES)
        assert tuple(scores.shape[1:]) != (10,), "num_classes is ignored"
        assert tuple(scores.shape) == want, \
            f"VGG16_MNIST(num_classes={NUM_CLASSES}): expected {want} scores for {batch} images, got {shown(scores.shape)}"


@lesson.check("vgg16_blocks", builds=[VGG16], timeout=30,
              hint="Five blocks of 2, 2, 3, 3 and 3 convolutions at 64, 128, 256, 512 and 512 channels.")
def vgg16_blocks(models, rng):
    model = models[VGG16.key].eval()
    layers = [layer for layer in model.layers("eval") if layer["kind"] in ("conv", "maxpool")]
    convs = [layer for layer in layers if layer["kind"] == "conv"]
    assert len(convs) == 13 and all(tuple(conv["kernel"]) == (3, 3) for conv in convs), \
        "VGG-16 has 13 3x3 convolutions"
    record = []
    with torch.no_grad():
        model(uniform(rng, 2, 1, 32, 32), record=record)
    pools = [tuple(value.shape) for node, value in record if node.op == "aten.max_pool2d.default"]
    assert pools == POOL_SHAPES, f"the poolings output {pools}"
    per_block, count = [], 0
    for layer in layers:
        if layer["kind"] == "conv":
            count += 1
        else:
            per_block, count = per_block + [count], 0
    assert per_block == [len(stage) for stage in VGG16_BLOCKS], \
        "VGG-16's five blocks have 2, 2, 3, 3 and 3 convolutions"


@lesson.check("vgg16_parameter_count", builds=[VGG16], timeout=30,
              hint="The table's layers exactly: the five blocks, then linear 512 to 4096, 4096 to 4096 and 4096 to "
                   "num_classes.")
def vgg16_parameter_count(models, rng):
    found, expected = parameter_count(models[VGG16.key]), vgg16_parameters(NUM_CLASSES)
    assert found == expected, \
        f"VGG16_MNIST(num_classes={NUM_CLASSES}) has {found:,} parameters; VGG-16's layout has {expected:,}"
