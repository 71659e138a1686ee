"""Trusted checks of Day 13, Exercise 1 (VGG): one per autograded test cell of vgg.ipynb, mirroring its asserts.

Probes run in the sandbox on the student's `vgg_block` and `VGG16_MNIST` and return plain data;
judges run in the grader and compare it with the layouts written here (see
session07_residual_cnn.py, the first example). Random inputs are drawn by the grader for each
submission; the sizes are the test cells' own.
"""

from __future__ import annotations

import numpy as np

from autograder.trusted import Check, as_array

ASSIGNMENT = "day13_vgg"
NOTEBOOK = "vgg"
ANSWER_CELLS = ("vgg_block", "vgg16")
PREAMBLE = """\
import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.shapes import print_shape_table
"""

PROBE_HELPERS = ("shape_of", "trainable", "recorded_run")

# ------------------------------------------------ the test cells' cases (sizes, not values)
# vgg_block_output_shape: (num_convs, in, out, input size); the first visible.
BLOCK_SHAPES = [(2, 1, 64, 32), (1, 3, 8, 8), (3, 16, 32, 6), (4, 8, 8, 10)]
# vgg_block_layers: vgg_block(3, 4, 8) on (2, 4, 8, 8).
LAYERS_BLOCK = (3, 4, 8)
LAYERS_X = (2, 4, 8, 8)
# vgg_block_parameter_count: (num_convs, in, out); the first visible.
BLOCK_PARAMETERS = [(2, 1, 64), (3, 128, 256), (1, 5, 7)]
# VGG-16: the convolutions' (in, out) channels, block by block, and each pooling's output.
VGG16_BLOCKS = [[(1, 64), (64, 64)], [(64, 128), (128, 128)], [(128, 256), (256, 256), (256, 256)],
                [(256, 512), (512, 512), (512, 512)], [(512, 512), (512, 512), (512, 512)]]
POOL_SHAPES = [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2), (2, 512, 1, 1)]
LINEAR = [(512, 4096), (4096, 4096), (4096, 10)]


# ---------------------------------------------------------------- probes (run in the sandbox)

def shape_of(t, value):
    """The shape of a real tensor as a list, else None."""
    return t.shape(value) if t.is_tensor(value) else None


def trainable(t, module):
    """count_parameters(module)."""
    return sum(t.numel(p) for _, p in t.parameters(module) if t.requires_grad(p))


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


def probe_vgg_block_output_shape(ns, t):
    shapes = []
    for i, (num_convs, in_channels, out_channels) in enumerate(t.array("block_shape_cases").tolist()):
        with t.no_grad():
            shapes.append(shape_of(t, ns["vgg_block"](num_convs, in_channels, out_channels)(
                t.tensor(f"block_shape_{i}"))))
    return shapes


def probe_vgg_block_layers(ns, t):
    num_convs, in_channels, out_channels = (int(n) for n in t.array("layers_block").tolist())
    block = ns["vgg_block"](num_convs, in_channels, out_channels)
    convs = [{"kernel": [int(k) for k in m.kernel_size], "padding": [int(p) for p in m.padding],
              "in": int(m.in_channels), "out": int(m.out_channels)}
             for m in t.modules(block) if t.isinstance(m, t.Conv2d)]
    pools = sum(1 for m in t.modules(block) if t.isinstance(m, t.MaxPool2d))
    with t.no_grad():
        out = block(t.tensor("layers_x"))
    return {"convs": convs, "pools": pools, "out": out}


def probe_vgg_block_parameter_count(ns, t):
    return [trainable(t, ns["vgg_block"](num_convs, in_channels, out_channels))
            for num_convs, in_channels, out_channels in t.array("parameter_cases").tolist()]


def probe_vgg16_output_shape(ns, t):
    found = {}
    with t.no_grad():
        found["eval_3"] = shape_of(t, t.set_train(ns["VGG16_MNIST"](), False)(t.tensor("images_3")))
        found["classes_4"] = shape_of(t, t.set_train(ns["VGG16_MNIST"](num_classes=4), False)(
            t.tensor("images_2")))
    return found


def probe_vgg16_blocks(ns, t):
    model = t.set_train(ns["VGG16_MNIST"](), False)
    kernels = [[int(k) for k in m.kernel_size] for m in t.modules(model) if t.isinstance(m, t.Conv2d)]
    pools = recorded_run(t, model, t.tensor("images_2"), t.MaxPool2d, lambda layer, output: shape_of(t, output))
    return {"kernels": kernels, "pools": pools}


def probe_vgg16_parameter_count(ns, t):
    return trainable(t, ns["VGG16_MNIST"]())


# ---------------------------------------------------------------- inputs and judges (grader)

def make_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    cases = lambda rows: np.array(rows, dtype=np.int64)  # noqa: E731
    inputs = {"block_shape_cases": cases([case[:3] for case in BLOCK_SHAPES])}
    for i, (_, in_channels, _, size) in enumerate(BLOCK_SHAPES):
        inputs[f"block_shape_{i}"] = normal(2, in_channels, size, size)
    inputs["layers_block"] = cases(LAYERS_BLOCK)
    inputs["layers_x"] = normal(*LAYERS_X)
    inputs["parameter_cases"] = cases(BLOCK_PARAMETERS)
    for batch in (2, 3):
        inputs[f"images_{batch}"] = rng.random((batch, 1, 32, 32), dtype=np.float32)
    return inputs


def make_context() -> dict:
    return {}


def shapes_differ(got, want) -> bool:
    return got is None or [int(n) for n in got] != [int(n) for n in want]


def shown(shape) -> str:
    return "no tensor" if shape is None else str(tuple(shape))


def block_parameters(num_convs: int, c_in: int, c_out: int) -> int:
    """3x3 weights and a bias per convolution; ReLU and pooling have none."""
    return (9 * c_in + 1) * c_out + (num_convs - 1) * (9 * c_out + 1) * c_out


def judge_vgg_block_output_shape(value, inputs, context):
    if len(value) != len(BLOCK_SHAPES):
        return "the block was not run on every input"
    for got, (num_convs, c_in, c_out, size) in zip(value, BLOCK_SHAPES):
        want = (2, c_out, size // 2, size // 2)
        if shapes_differ(got, want):
            return f"vgg_block({num_convs}, {c_in}, {c_out}) on {size}x{size}: expected {want}, got {shown(got)}"
    return None


def judge_vgg_block_layers(value, inputs, context):
    num_convs, c_in, c_out = LAYERS_BLOCK
    convs = value["convs"]
    if len(convs) != num_convs:
        return f"vgg_block({num_convs}, {c_in}, {c_out}) has {len(convs)} convolutions, expected {num_convs}"
    if any(conv["kernel"] != [3, 3] or conv["padding"] != [1, 1] for conv in convs):
        return "use 3x3 kernels with padding=1"
    if [(conv["in"], conv["out"]) for conv in convs] != [(c_in, c_out)] + [(c_out, c_out)] * (num_convs - 1):
        return "the first convolution changes the channels"
    if value["pools"] != 1:
        return "one max pooling per block"
    out = as_array(value["out"])
    if out.size == 0 or not out.min() >= 0:
        return "the block's output has negative values: ReLU after each convolution"
    return None


def judge_vgg_block_parameter_count(value, inputs, context):
    if len(value) != len(BLOCK_PARAMETERS):
        return "not every block was counted"
    for found, case in zip(value, BLOCK_PARAMETERS):
        expected = block_parameters(*case)
        if found != expected:
            return f"vgg_block{case} has {found:,} parameters, expected {expected:,}"
    return None


def judge_vgg16_output_shape(value, inputs, context):
    if shapes_differ(value["eval_3"], (3, 10)):
        return f"expected (3, 10) scores for 3 images, got {shown(value['eval_3'])}"
    if shapes_differ(value["classes_4"], (2, 4)):
        return "num_classes is ignored"
    return None


def judge_vgg16_blocks(value, inputs, context):
    kernels = value["kernels"]
    if len(kernels) != 13 or any(kernel != [3, 3] for kernel in kernels):
        return "VGG-16 has 13 3x3 convolutions"
    pools = [None if s is None else tuple(s) for s in value["pools"]]
    if pools != POOL_SHAPES:
        return f"the poolings output {pools}"
    return None


def vgg16_parameters() -> int:
    convs = sum((9 * c_in + 1) * c_out for block in VGG16_BLOCKS for c_in, c_out in block)
    return convs + sum((n_in + 1) * n_out for n_in, n_out in LINEAR)


def judge_vgg16_parameter_count(value, inputs, context):
    expected = vgg16_parameters()
    if not isinstance(value, int) or isinstance(value, bool):
        return "VGG16_MNIST's parameters could not be counted"
    if value != expected:
        return f"VGG16_MNIST has {value:,} parameters; VGG-16's layout has {expected:,}"
    return None


CHECKS = [
    Check("vgg_block_output_shape", probe_vgg_block_output_shape, judge_vgg_block_output_shape,
          "Every convolution needs padding=1 (the size stays), and the block ends with "
          "nn.MaxPool2d(kernel_size=2, stride=2) (the size halves)."),
    Check("vgg_block_layers", probe_vgg_block_layers, judge_vgg_block_layers,
          "A loop of num_convs times nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1) and "
          "nn.ReLU(); after the first, in_channels = out_channels; then one nn.MaxPool2d(2, 2)."),
    Check("vgg_block_parameter_count", probe_vgg_block_parameter_count, judge_vgg_block_parameter_count,
          "Only the convolutions have parameters: 3x3 weights and a bias each; no other layers."),
    Check("vgg16_output_shape", probe_vgg16_output_shape, judge_vgg16_output_shape,
          "features (five blocks), flatten, then classifier ending in nn.Linear(4096, num_classes).",
          timeout=30),
    Check("vgg16_blocks", probe_vgg16_blocks, judge_vgg16_blocks,
          "Five blocks of 2, 2, 3, 3 and 3 convolutions at 64, 128, 256, 512 and 512 channels.", timeout=30),
    Check("vgg16_parameter_count", probe_vgg16_parameter_count, judge_vgg16_parameter_count,
          "The table's layers exactly: the five blocks, then linear 512 to 4096, 4096 to 4096 and 4096 to "
          "num_classes.", timeout=30),
]
