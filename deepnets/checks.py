"""Helpers the notebooks' visible tests use to look inside a model (the grader's policy is in autograder/policy.py)."""

from __future__ import annotations

import torch
from torch import nn


# Child modules that hold a residual block's skip path, under the names people give them.
SHORTCUT_NAMES = ("shortcut", "downsample", "skip", "projection")


def batchnorms(module: nn.Module) -> list[nn.BatchNorm2d]:
    """Every BatchNorm2d inside `module`, in registration order."""
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def zero_residual_branch(block: nn.Module) -> nn.Module:
    """Make the residual branch output exactly zero by zeroing its last BatchNorm's scale and shift.

    The branch's last BatchNorm is `bn2` when the block has one (the lessons' names), else the
    last BatchNorm registered in the block outside its shortcut. Train and eval mode alike,
    BN(z) = 0 * z_hat + 0.
    """
    last = getattr(block, "bn2", None)
    if not isinstance(last, nn.BatchNorm2d):
        in_shortcut = {id(m) for name, child in block.named_children() if name in SHORTCUT_NAMES
                       for m in child.modules()}
        found = [m for m in batchnorms(block) if id(m) not in in_shortcut]
        if not found:
            raise AssertionError("the block has no BatchNorm2d layer outside its shortcut")
        last = found[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return block


def convolutions_run(module: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Conv2d, tuple]]:
    """(name, layer, output shape) of every Conv2d that `module(x)` runs, in the order it runs them."""
    record, hooks = [], []
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d):
            hooks.append(layer.register_forward_hook(
                lambda layer, inputs, output, name=name: record.append((name, layer, tuple(output.shape)))))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return record


def output_shapes(module: nn.Module, x: torch.Tensor, module_type: type) -> list[tuple]:
    """Output shape of every `module_type` inside `module`, in the order `module(x)` runs them (eval mode)."""
    shapes, hooks = [], []
    for layer in module.modules():
        if isinstance(layer, module_type):
            hooks.append(layer.register_forward_hook(
                lambda layer, inputs, output: shapes.append(tuple(output.shape))))
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    return shapes


def parameters_without_conv_biases(model: nn.Module) -> int:
    """Trainable parameters, not counting convolution biases (BatchNorm's shift makes them redundant)."""
    conv_biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is not None}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in conv_biases)


def resnet_parameter_count(blocks_per_stage, channels=(64, 128, 256, 512), in_channels: int = 1,
                           num_classes: int = 10) -> int:
    """Parameters of the lessons' ResNet layout, by arithmetic (no conv biases).

    A 3x3 stem convolution to channels[0] with BatchNorm; stages of basic blocks (two 3x3 convs
    with BatchNorm, and a 1x1 conv + BatchNorm projection where the shape changes), the first
    block of every stage after the first halving the size; a linear classifier.
    """
    conv = lambda k, c_in, c_out: k * k * c_in * c_out  # noqa: E731
    batchnorm = lambda c: 2 * c  # noqa: E731  (scale and shift)
    total = conv(3, in_channels, channels[0]) + batchnorm(channels[0])
    previous = channels[0]
    for stage, (num_blocks, width) in enumerate(zip(blocks_per_stage, channels)):
        for index in range(num_blocks):
            c_in = previous if index == 0 else width
            stride = 2 if (index == 0 and stage > 0) else 1
            total += conv(3, c_in, width) + conv(3, width, width) + 2 * batchnorm(width)
            if stride != 1 or c_in != width:
                total += conv(1, c_in, width) + batchnorm(width)
        previous = width
    return total + channels[-1] * num_classes + num_classes
