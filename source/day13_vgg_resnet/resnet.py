# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade_id": "title", "locked": true}
# # Day 13 · ResNet: residual blocks, ResNet-18 and a deeper challenge
#
# Exercise 1 (`day13_vgg/vgg.ipynb`) built VGG-16 and trained it with and without BatchNorm;
# its printed verdicts say whether the lesson plan's VGG-16 learned in your run, and what
# BatchNorm changed. BatchNorm is not the end of the story: He et al. (*Deep Residual Learning for Image Recognition*, 2015) found that plain networks
# with BatchNorm still got *worse* as they got deeper, on the training set too, so this was not
# overfitting. Their fix is the **residual connection**: a block computes
# `ReLU(F(x) + shortcut(x))`, so it only has to learn a correction `F(x)` to its input, and
# the gradient has a path back through the addition that no weight multiplies.
#
# You will build the residual block, ResNet-18 from it, compare it with a network that is
# identical except for the skip connections, look at how gradients flow through both, and
# finish with a 34-layer ResNet.
#
# **Goals.** After this notebook you can
# 1. implement a residual block whose shortcut is the identity when the shapes match and a
#    projection when they do not,
# 2. assemble ResNet-18 stage by stage and trace its shapes and parameters,
# 3. design a fair comparison (one difference between the models) and read per-layer gradient
#    norms.
#
# **Readings.** D2L [8.6 Residual Networks (ResNet)](https://d2l.ai/chapter_convolutional-modern/resnet.html);
# He et al. 2015, sections 1 and 3.
#
# **How this notebook is graded.** Parts A, B and C are autograded: the cells after each task
# are tests worth the points in the heading. Some tests are visible and you can run them now;
# more are hidden and run when your notebook is graded, among them a check that your networks
# learn when the grader trains them. Part D is read by a person. Before you submit,
# *Restart & Run All* (or press **Validate**) and check that no cell fails. Save after the run:
# whoever reads Part D sees the outputs your notebook carries when you submit.

# %% nbgrader={"grade_id": "setup", "locked": true}
# deepnets first: it tunes PyTorch's CPU threads for a shared machine before torch loads.
from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.evidence import correct_answers, paired_comparison, remember
from deepnets.gradients import gradient_norms, input_gradient, plot_gradient_norms
from deepnets.plots import plot_training_curves
from deepnets.shapes import print_shape_table

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

device = pick_device()
print(f"Device: {device}")

# How much training the notebook does. The budget is picked for you: 'quick' while nbgrader
# validates or grades, 'demo' on a CPU, 'full' (the lesson plan's settings: all of MNIST at
# 32x32, 5 epochs for ResNet-18 and the plain network, 3 for the deeper ResNets, batch 64) on a
# GPU. Set the environment variable DEEPNETS_BUDGET to choose one yourself. What the smaller
# budgets change: fewer training images (so fewer steps) and, for training and the gradient
# measurements, 16x16 digits (each 2x2 square of the 32x32 picture averaged), which cost a
# quarter of the computation. The networks, the recipe and the tests stay the same.
budget = pick_budget(
    quick=dict(train_size=128, test_size=128, epochs=1, deep_epochs=1, image_size=16),
    demo=dict(train_size=2_560, test_size=1_000, epochs=1, deep_epochs=1, image_size=16),
    full=dict(train_size=None, test_size=None, epochs=5, deep_epochs=3, image_size=32),
)
# 28x28 digits padded to 32x32, as for VGG, so the stages halve 32 -> 16 -> 8 -> 4.
mnist = load_mnist().subset(budget.train_size, budget.test_size).padded(2)
if budget.image_size != 32:
    shrink = lambda images: F.avg_pool2d(images, 32 // budget.image_size)  # noqa: E731
    mnist = dataclasses.replace(mnist, train_images=shrink(mnist.train_images),
                                test_images=shrink(mnist.test_images))
print(f"{mnist}: {budget.image_size}x{budget.image_size} digits, "
      f"{len(mnist.train_labels) // 64} training steps of 64 per epoch")

# %% [markdown] nbgrader={"grade_id": "part_a_task", "locked": true}
# ## Part A: a residual block that can change shape (10 points)
#
# Complete `ResidualBlock(in_channels, out_channels, stride=1)`:
#
# ```
# x ─► conv1 (3x3, stride) ─► bn1 ─► ReLU ─► conv2 (3x3) ─► bn2 ─► (+) ─► ReLU ─► out
# │                                                                ▲
# └──────────────────────────── shortcut ──────────────────────────┘
# ```
#
# * `conv1`: 3x3 from `in_channels` to `out_channels`, padding 1, with the block's `stride`.
#   It is the first convolution that downsamples, so the second already runs at the smaller
#   size (this is ResNet's layout, and it costs less);
# * `conv2`: 3x3 from `out_channels` to `out_channels`, padding 1, stride 1;
# * `bn1`, `bn2`: a `BatchNorm2d` after each convolution;
# * `shortcut`: what carries `x` to the addition. When the output has the input's shape
#   (`stride == 1` and `in_channels == out_channels`) it is the **identity**: `nn.Identity()`
#   or an empty `nn.Sequential()`, no parameters. Otherwise `x` cannot be added as it is, and
#   the shortcut is a **projection**: a 1x1 convolution from `in_channels` to `out_channels`
#   with the block's `stride`, followed by a `BatchNorm2d`;
# * ReLU comes **after** the addition.
#
# Use these names (`conv1`, `bn1`, `conv2`, `bn2`, `shortcut`): the tests read them.
# A convolution followed by BatchNorm needs no bias (`bias=False`); BatchNorm adds its own shift.

# %% nbgrader={"grade_id": "residual_block", "solution": true}
class ResidualBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers and a shortcut: ReLU(F(x) + shortcut(x))."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            # F(x) has another shape than x: project x with a strided 1x1 convolution.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()  # no parameters: x passes unchanged
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))   # (N, out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))         # the residual F(x), same shape
        # `out + self.shortcut(x)` or the in-place `out += self.shortcut(x)`: both are right. The
        # in-place add changes `out` (bn2's output, which no backward pass needs), never `x`.
        return F.relu(out + self.shortcut(x))
        ### END SOLUTION


# %% [markdown] nbgrader={"grade_id": "part_a_try", "locked": true}
# Try your block: one that keeps the shape, one that doubles the channels and halves the size.

# %% nbgrader={"grade_id": "residual_block_try"}
for in_channels, out_channels, stride in [(64, 64, 1), (64, 128, 2)]:
    block = ResidualBlock(in_channels, out_channels, stride)
    output = block(torch.randn(2, in_channels, 32, 32))
    print(f"ResidualBlock({in_channels}, {out_channels}, stride={stride}): output {tuple(output.shape)}, "
          f"{count_parameters(block):,} parameters, shortcut {block.shortcut}")

# %% nbgrader={"grade": true, "grade_id": "block_keeps_shape", "points": 1}
"""With in_channels == out_channels and stride 1, the block's output has the shape of its input."""
for channels, size in [(8, 32), (64, 16), (3, 7)]:
    x = torch.randn(2, channels, size, size)
    assert ResidualBlock(channels, channels)(x).shape == x.shape, f"shape changed for input {tuple(x.shape)}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_keeps_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_changes_channels", "points": 1}
"""With stride 1 and a new number of channels, the block keeps the height and width and outputs out_channels."""
x = torch.randn(2, 8, 12, 12)
assert ResidualBlock(8, 16)(x).shape == (2, 16, 12, 12), "ResidualBlock(8, 16) should map (2, 8, 12, 12) to (2, 16, 12, 12)"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_changes_channels", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_stride_halves_size", "points": 1}
"""With stride 2 the block halves the height and width (rounding up) and outputs out_channels."""
x = torch.randn(2, 16, 32, 32)
assert ResidualBlock(16, 32, stride=2)(x).shape == (2, 32, 16, 16), \
    "ResidualBlock(16, 32, stride=2) should map (2, 16, 32, 32) to (2, 32, 16, 16)"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_stride_halves_size", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_identity_shortcut", "points": 1}
"""When the shapes match, the shortcut is the identity: it returns x unchanged and has no parameters."""
block = ResidualBlock(16, 16)
assert hasattr(block, "shortcut"), "name the skip path self.shortcut"
x = torch.randn(2, 16, 8, 8)
assert torch.equal(block.shortcut(x), x), "with stride 1 and in_channels == out_channels, shortcut(x) must be x"
assert count_parameters(block.shortcut) == 0, "an identity shortcut has no parameters"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_identity_shortcut", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_projection_shortcut", "points": 1}
"""When the shapes differ, the shortcut is a 1x1 convolution with the block's stride, then BatchNorm."""
def shortcut_layers(block):
    convs = [m for m in block.shortcut.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.shortcut.modules() if isinstance(m, nn.BatchNorm2d)]
    return convs, norms


block = ResidualBlock(16, 32, stride=2)
convs, norms = shortcut_layers(block)
assert len(convs) == 1 and convs[0].kernel_size == (1, 1), "the projection is one 1x1 convolution"
assert (convs[0].in_channels, convs[0].out_channels, convs[0].stride) == (16, 32, (2, 2)), \
    "ResidualBlock(16, 32, stride=2): the projection should map 16 to 32 channels with stride 2"
assert len(norms) == 1 and norms[0].num_features == 32, "the projection ends with a BatchNorm2d(32)"
x = torch.randn(2, 16, 9, 9)
assert block.shortcut(x).shape == block(x).shape, "the shortcut's output must have the block's output shape"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_projection_shortcut", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_skip_connection", "points": 1}
"""With the residual branch switched off (bn2 scaled to zero), the block returns ReLU(shortcut(x))."""
from deepnets.checks import zero_residual_branch

for in_channels, out_channels, stride in [(8, 8, 1), (8, 16, 2)]:
    block = zero_residual_branch(ResidualBlock(in_channels, out_channels, stride)).eval()
    x = torch.randn(2, in_channels, 10, 10)
    with torch.no_grad():
        assert torch.allclose(block(x), F.relu(block.shortcut(x)), atol=1e-6), \
            f"ResidualBlock({in_channels}, {out_channels}, stride={stride}) does not add shortcut(x)"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_skip_connection", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_gradient_through_skip", "points": 1}
"""With the residual branch off, the gradient reaches the input through the identity shortcut, gated by the last ReLU."""
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_gradient_through_skip", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_downsamples_in_first_conv", "points": 1}
"""The stride is on the first 3x3 convolution: both 3x3 convolutions output the reduced size."""
from deepnets.checks import convolutions_run

block = ResidualBlock(8, 16, stride=2)
sizes = [shape[-2:] for _, conv, shape in convolutions_run(block, torch.randn(2, 8, 16, 16))
         if conv.kernel_size == (3, 3)]
assert len(sizes) == 2, f"expected two 3x3 convolutions to run, found {len(sizes)}"
assert sizes[0] == (8, 8), f"the first 3x3 convolution outputs {sizes[0]}: it should apply the stride (8x8)"
assert sizes[1] == (8, 8), f"the second 3x3 convolution outputs {sizes[1]}: it should keep the size (8x8)"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_downsamples_in_first_conv", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_relu_after_addition", "points": 1}
"""ReLU comes after the addition: outputs are never negative, whatever the shortcut carries."""
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_relu_after_addition", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_parameter_count", "points": 1}
"""The block has the parameters of its design, and the projection's only where the shapes differ."""
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("block_parameter_count", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "plain_block_intro", "locked": true}
# ## A plain block, and the gradient at the input
#
# `PlainBlock` is your residual block with the skip connection taken out: the same two
# convolutions and BatchNorms, `ReLU(F(x))` instead of `ReLU(F(x) + shortcut(x))`. (The lesson
# plan's `PlainBlock(in_channels, out_channels)` had no stride; it gets one here, so that a
# whole plain network can mirror ResNet-18 below.)

# %% nbgrader={"grade_id": "plain_block", "locked": true}
class PlainBlock(nn.Module):
    """A residual block without its skip connection: ReLU(bn2(conv2(ReLU(bn1(conv1(x))))))."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))


# %% [markdown] nbgrader={"grade_id": "input_gradient_intro", "locked": true}
# How big is the gradient that reaches a block's input? We send a fixed random gradient
# `upstream` into the block's output (a stand-in for what the layers above would send back)
# and measure the mean size of ∂loss/∂x, for one block and for stacks of 2 to 16 blocks
# (4 to 32 convolutions), plain and residual, from the same seed.
#
# Why not simply `output.sum().backward()`? Because in training mode a BatchNorm layer's
# outputs always sum to the same value (it subtracts their mean), so the gradient of that sum
# through BatchNorm is zero whatever the network. The first line below shows it; a plain
# block, which ends in BatchNorm and ReLU, would look as if its gradient vanished for that
# reason alone.

# %% nbgrader={"grade_id": "input_gradient_demo", "locked": true}
z = torch.randn(4, 8, 6, 6, requires_grad=True)
nn.BatchNorm2d(8)(z).sum().backward()
print(f"largest |d sum(BatchNorm(z)) / dz| = {z.grad.abs().max():.1e} (zero up to rounding)\n")

x = torch.randn(8, 64, 16, 16)
upstream = torch.randn(8, 64, 16, 16)
print(f"mean |upstream gradient| = {upstream.abs().mean():.3f}")
print(f"{'blocks':>6} {'plain: mean |dL/dx|':>20} {'residual: mean |dL/dx|':>23}")
input_gradients = {}
for depth in (1, 2, 4, 8, 16):
    set_seed(0)
    plain = nn.Sequential(*[PlainBlock(64, 64) for _ in range(depth)])
    set_seed(0)
    residual = nn.Sequential(*[ResidualBlock(64, 64) for _ in range(depth)])
    input_gradients[depth] = (input_gradient(plain, x, upstream).abs().mean().item(),
                              input_gradient(residual, x, upstream).abs().mean().item())
    print(f"{depth:>6} {input_gradients[depth][0]:>20.3f} {input_gradients[depth][1]:>23.3f}")
growth = {name: input_gradients[16][index] / input_gradients[1][index]
          for index, name in enumerate(["plain", "residual"])}
print(f"\nFrom 1 to 16 blocks the input gradient grows {growth['plain']:.0f}x in the plain stack "
      f"and {growth['residual']:.0f}x in the residual stack.")

# %% [markdown] nbgrader={"grade_id": "input_gradient_reading", "locked": true}
# How to read the table: compare the mean input gradient of one block with the upstream's size,
# then how each column changes from 1 to 16 blocks (the growth factors printed under it).
# Stacked plain blocks multiply their effects, so the input gradient is at the mercy of every
# layer; in the residual stack each block also passes the gradient on through its `+ x`.
#
# **How much does the skip carry?** Your block outputs `ReLU(F(x) + x)`. Its derivative is
# `ReLU'(F(x) + x) · (dF/dx + 1)`: the identity path carries the gradient back without passing
# through any weight, but the last ReLU *gates* it, passing it where `F(x) + x > 0` and
# stopping it elsewhere. So the gradient is not "multiplied by one" through the block; it is
# multiplied by one or by zero, image by image and unit by unit. That is the hidden test
# `block_gradient_through_skip`: with the branch switched off, the input's gradient is 1
# where `x > 0` and 0 elsewhere.
#
# **Post-activation and pre-activation blocks.** The block you wrote is the original one (He et
# al. 2015), *post-activation*: BatchNorm and ReLU come after the convolutions, and one more
# ReLU after the addition. A year later the same authors (He et al. 2016b, *Identity Mappings
# in Deep Residual Networks*) moved BatchNorm and ReLU *before* each convolution and removed
# the ReLU after the addition: `x + F(x)` with `F = conv(ReLU(BN(conv(ReLU(BN(x))))))`. Then
# the identity path really is an identity, from the network's output back to its input, and
# their 1,001-layer networks trained better. (The Session 7 live demo uses pre-activation
# blocks for that reason.) This assignment's tests ask for the original, post-activation block.
#
# **Why the tests zero γ.** `zero_residual_branch` sets the scale γ (and shift β) of the
# block's last BatchNorm to zero, so `F(x) = 0` and the block computes `ReLU(shortcut(x))`:
# that isolates the skip path to test it. The same trick is a well-known training recipe
# (Goyal et al. 2017, *Accurate, Large Minibatch SGD*): initialise every block's last γ to
# zero, and each block starts as (nearly) the identity, so a deep ResNet starts out behaving
# like a shallow one and learns to use its branches. PyTorch's torchvision offers it as
# `zero_init_residual=True`.

# %% [markdown] nbgrader={"grade_id": "part_b_task", "locked": true}
# ## Part B: ResNet-18 (6 points)
#
# Complete `ResNet18(num_classes=10)` for 32x32 MNIST:
#
# | part | layers | output for a (N, 1, 32, 32) input |
# | --- | --- | --- |
# | stem | `conv1`: 3x3 conv, 1 to 64 channels, padding 1, no bias; `bn1`; ReLU | (N, 64, 32, 32) |
# | `layer1` | 2 residual blocks, 64 channels, stride 1 | (N, 64, 32, 32) |
# | `layer2` | 2 residual blocks, 128 channels, the first with stride 2 | (N, 128, 16, 16) |
# | `layer3` | 2 residual blocks, 256 channels, the first with stride 2 | (N, 256, 8, 8) |
# | `layer4` | 2 residual blocks, 512 channels, the first with stride 2 | (N, 512, 4, 4) |
# | head | `avg_pool`: `nn.AdaptiveAvgPool2d(1)`, flatten, `fc`: linear 512 to `num_classes` | (N, num_classes) |
#
# Build each stage with `_make_layer(in_channels, out_channels, num_blocks, stride)`: the
# first block goes from `in_channels` to `out_channels` with `stride`, the others keep
# `out_channels` with stride 1. (The ImageNet ResNet-18 starts with a 7x7 convolution of
# stride 2 and a max pooling; on 32x32 digits that would throw away most of the image, so this
# one starts with a 3x3 convolution, as ResNets for CIFAR do.) 1 + 16 + 1 = 18 layers with
# weights, not counting the three 1x1 projections.

# %% nbgrader={"grade_id": "resnet18", "solution": true}
class ResNet18(nn.Module):
    """ResNet-18 for 32x32 MNIST: a 3x3 stem, stages of [2, 2, 2, 2] ResidualBlocks, pooling, linear."""

    def __init__(self, num_classes=10):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        ### END SOLUTION

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        """One stage: `num_blocks` ResidualBlocks; the first changes the channels and applies `stride`."""
        ### BEGIN SOLUTION
        blocks = [ResidualBlock(in_channels, out_channels, stride)]
        blocks += [ResidualBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
        return nn.Sequential(*blocks)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.bn1(self.conv1(x)))   # (N, 64, 32, 32)
        x = self.layer1(x)                    # (N, 64, 32, 32)
        x = self.layer2(x)                    # (N, 128, 16, 16)
        x = self.layer3(x)                    # (N, 256, 8, 8)
        x = self.layer4(x)                    # (N, 512, 4, 4)
        x = self.avg_pool(x).flatten(1)       # (N, 512)
        return self.fc(x)                     # (N, num_classes)
        ### END SOLUTION


# %% [markdown] nbgrader={"grade_id": "part_b_try", "locked": true}
# Your network's shapes, traced by running one image through it (each row is recorded by the
# layer as it runs), and its parameter count:

# %% tags=["nbval-check-output"] nbgrader={"grade_id": "resnet18_try"}
resnet18 = ResNet18()
print_shape_table(resnet18, torch.zeros(1, 1, 32, 32))

# %% nbgrader={"grade": true, "grade_id": "resnet18_output_shape", "points": 1}
"""ResNet18 maps (N, 1, 32, 32) images to (N, num_classes) class scores."""
model = ResNet18().eval()
with torch.no_grad():
    for batch in (1, 3):
        scores = model(torch.rand(batch, 1, 32, 32))
        assert scores.shape == (batch, 10), f"batch of {batch}: expected {(batch, 10)}, got {tuple(scores.shape)}"
    assert ResNet18(num_classes=7).eval()(torch.rand(2, 1, 32, 32)).shape == (2, 7), "num_classes is ignored"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("resnet18_output_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "make_layer_builds_a_stage", "points": 1}
"""_make_layer(in, out, num_blocks, stride) returns num_blocks ResidualBlocks; only the first changes the shape."""
from deepnets.checks import output_shapes

stage = ResNet18()._make_layer(64, 128, 3, 2)
shapes = output_shapes(stage, torch.randn(2, 64, 16, 16), ResidualBlock)
assert len(shapes) == 3, f"_make_layer(64, 128, 3, 2) should run 3 ResidualBlocks, ran {len(shapes)}"
assert shapes == [(2, 128, 8, 8)] * 3, f"the blocks output {shapes}; expected (2, 128, 8, 8) from the first on"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("make_layer_builds_a_stage", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "resnet18_blocks_per_stage", "points": 1}
"""ResNet18 has four stages of [2, 2, 2, 2] ResidualBlocks at 64, 128, 256, 512 channels and 32, 16, 8, 4 pixels."""
from deepnets.checks import output_shapes

model = ResNet18()
per_stage = [n for n in (sum(isinstance(m, ResidualBlock) for m in child.modules()) for child in model.children()) if n]
assert per_stage == [2, 2, 2, 2], f"ResidualBlocks per stage: {per_stage}, expected [2, 2, 2, 2]"
shapes = output_shapes(model, torch.randn(2, 1, 32, 32), ResidualBlock)
expected = [(2, 64, 32, 32)] * 2 + [(2, 128, 16, 16)] * 2 + [(2, 256, 8, 8)] * 2 + [(2, 512, 4, 4)] * 2
assert shapes == expected, f"the blocks output {shapes}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("resnet18_blocks_per_stage", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "resnet18_parameter_count", "points": 1}
"""ResNet18 has exactly the parameters of ResNet-18's layout (convolution biases aside)."""
from deepnets.checks import parameters_without_conv_biases, resnet_parameter_count

expected = resnet_parameter_count([2, 2, 2, 2])  # 11,172,810 for 1 input channel and 10 classes
found = parameters_without_conv_biases(ResNet18())
assert found == expected, f"ResNet18 has {found:,} parameters (conv biases aside); ResNet-18's layout has {expected:,}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("resnet18_parameter_count", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "resnet18_learns", "points": 2}
"""Trained by the grader on one fixed batch of 16 digits (8 Adam steps), ResNet18 drives its loss below 0.3."""
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("resnet18_learns", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "compare_intro", "locked": true}
# ## Plain against residual, fairly
#
# The lesson plan compared ResNet-18 with a plain network that had one convolution per block
# instead of two: half the convolutions. Whatever the result, it could not say whether the
# skip connections or the missing convolutions made the difference. Here `PlainNet` is your
# `ResNet18` with every `ResidualBlock` replaced by a `PlainBlock`: the same stem, the same 16
# 3x3 convolutions and BatchNorms, the same head. The only parameters it lacks are those of the
# three projection shortcuts, which are part of the skip connections. Both are trained with
# the same seed, data order, optimizer (Adam, learning rate 0.001), batch size (64) and budget.

# %% nbgrader={"grade_id": "plain_net", "locked": true}
def plain_stage(in_channels, out_channels, num_blocks, stride):
    """A stage laid out like _make_layer's, built from PlainBlocks."""
    blocks = [PlainBlock(in_channels, out_channels, stride)]
    blocks += [PlainBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class PlainNet(ResNet18):
    """ResNet18 without skip connections: every stage is built from PlainBlocks."""

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        return plain_stage(in_channels, out_channels, num_blocks, stride)


plainnet = PlainNet()
assert not any(isinstance(m, ResidualBlock) for m in plainnet.modules()), \
    "PlainNet still has ResidualBlocks: ResNet18.__init__ must build its stages with self._make_layer"
projections = sum(count_parameters(m.shortcut) for m in ResNet18().modules() if isinstance(m, ResidualBlock))
print(f"ResNet18: {count_parameters(ResNet18()):,} parameters; PlainNet: {count_parameters(plainnet):,}; "
      f"difference {count_parameters(ResNet18()) - count_parameters(plainnet):,}, "
      f"of which projection shortcuts {projections:,}")

# %% nbgrader={"grade_id": "train_both"}
histories, models = {}, {}
for name, model_class in [("PlainNet", PlainNet), ("ResNet18", ResNet18)]:
    set_seed(0)
    models[name] = model_class()
    histories[name] = fit(models[name], mnist, epochs=budget.epochs, batch_size=64, lr=1e-3,
                          seed=0, device=device, name=name)

# %% [markdown] nbgrader={"grade_id": "compare_modes_intro", "locked": true}
# **Which test accuracy?** In evaluation mode BatchNorm normalises with running averages of the
# statistics it saw in training, updated a little at every step. After a short run they lag
# behind the weights, and a network's eval-mode accuracy can fall far below what it learned:
# that measures the lag, not the architecture. In training mode each batch of test images is
# normalised with its own statistics. The table prints both; **the verdict uses train-mode
# test accuracy**, and compares the two networks on the same test images, image by image
# (a paired test: McNemar's), so that the test set's luck is shared by both.

# %% nbgrader={"grade_id": "compare_both"}
def summary(history):
    """Training loss and accuracy averaged over the last tenth of the steps (at least 2)."""
    last = max(2, len(history.step_loss) // 10)
    return sum(history.step_loss[-last:]) / last, sum(history.step_accuracy[-last:]) / last


def accuracy_table(names):
    """Print parameters, training loss, train- and eval-mode test accuracy and seconds of `names`;
    return which test images each model got right, {(name, train_mode): one bool per image}."""
    print(f"{'model':<11} {'parameters':>11} {'epochs':>7} {'training loss':>14} {'training acc.':>14} "
          f"{'test acc. (train mode)':>23} {'test acc. (eval mode)':>22} {'seconds':>8}")
    answers = {}
    for name in names:
        loss, accuracy = summary(histories[name])
        for mode in (True, False):
            answers[name, mode] = correct_answers(models[name], mnist.test_images, mnist.test_labels,
                                                  train_mode=mode)
        by_mode = [100 * answers[name, mode].float().mean().item() for mode in (True, False)]
        print(f"{name:<11} {count_parameters(models[name]):>11,} {len(histories[name].epoch_loss):>7} "
              f"{loss:>14.4f} {accuracy:>13.1f}% {by_mode[0]:>22.2f}% {by_mode[1]:>21.2f}% "
              f"{histories[name].seconds:>8.1f}")
    return answers


def compare(first, second, answers):
    """The paired verdict on two models of `accuracy_table`'s `answers` (train-mode test accuracy),
    and what eval mode says. The models are scored once, in the table; both read those answers."""
    verdict, in_eval = (paired_comparison(answers[first, mode], answers[second, mode], (first, second))
                        for mode in (True, False))
    print(f"Verdict ({budget.name} budget, {len(mnist.train_labels):,} training images, "
          f"{budget.image_size}x{budget.image_size}, data: {mnist.source}; train-mode test accuracy):")
    print(verdict.verdict())
    print(f"(In eval mode, with the running statistics, the difference would read {in_eval.difference:+.2f} "
          f"points, p = {in_eval.p_value:.3g}; the two readings differ only in the statistics BatchNorm "
          f"normalises with.)")
    return verdict


answers = accuracy_table(["PlainNet", "ResNet18"])
print()
plain_vs_resnet = compare("PlainNet", "ResNet18", answers)
losses = {name: summary(histories[name])[0] for name in ("PlainNet", "ResNet18")}
lower = min(losses, key=losses.get)
print(f"Training loss over the last steps: PlainNet {losses['PlainNet']:.4f}, ResNet18 {losses['ResNet18']:.4f} "
      f"({lower} lower, in this one run).")
reference = remember("resnet.plain_vs_resnet18", budget, models={n: models[n] for n in ("PlainNet", "ResNet18")},
                     histories={n: histories[n] for n in ("PlainNet", "ResNet18")}, data_source=mnist.source)
shown = {**histories, **({f"{n} (recorded full run)": h for n, h in reference.histories.items()}
                         if reference else {})}
plot_training_curves(shown, title=f"PlainNet vs ResNet18 ({budget.name} budget)", train_accuracy=True);

# %% [markdown] nbgrader={"grade_id": "compare_reading", "locked": true}
# Read the table and the curves before you believe either network "won". Both networks have
# BatchNorm, so both can be expected to train at 18 layers; the questions are how fast the
# training loss falls, and whether the paired verdict says the test accuracies differ by more
# than the test set's luck. Compare the two test-accuracy columns: where eval mode trails
# train mode by many points, the running statistics lag (a longer run closes that gap). The
# lesson plan's full run is GPU-sized (5 epochs of 60,000 images); when a recording of it is
# shipped, the figure draws it next to your run (the line above the figure says whether).
#
# ## Gradient flow, layer by layer
#
# Which layers get a useful gradient? For one batch of 32 training images we compute the norm
# of ∂loss/∂weight for every convolution and the final linear layer, in both networks: freshly
# initialised (same seed), and after the training above. Layers are labelled by name:
# `layer2.0.conv1` is the first convolution of the first block of stage 2, and
# `layer2.0.shortcut.0` is that block's 1x1 projection, which only ResNet18 has.

# %% nbgrader={"grade_id": "gradient_flow"}
import matplotlib.pyplot as plt

images, labels = mnist.train_images[:32], mnist.train_labels[:32]
norms = {"initialised": {}, "trained": {}}
for name, model_class in [("PlainNet", PlainNet), ("ResNet18", ResNet18)]:
    set_seed(0)
    norms["initialised"][name] = gradient_norms(model_class().to(device), images, labels)
    norms["trained"][name] = gradient_norms(models[name], images, labels)
figure, axes = plt.subplots(2, 1, figsize=(11, 8))
for axis, (when, by_model) in zip(axes, norms.items()):
    plot_gradient_norms(by_model, title=f"Gradient norm per layer, {when} (one batch of 32)", axis=axis)


def gradient_ratios(by_model, label=""):
    """Print, per model, the stem's gradient norm over the last layer's and the largest over the
    smallest layer's; return {model: largest / smallest}."""
    spreads = {}
    for name, layer_norms in by_model.items():
        values = list(layer_norms.values())
        spreads[name] = max(values) / min(values)
        print(f"{label:<12} {name:<17} stem / last layer: {values[0] / values[-1]:6.2f}   "
              f"largest / smallest layer: {spreads[name]:7.1f}")
    return spreads


spread_18 = {when: gradient_ratios(by_model, when) for when, by_model in norms.items()}

# %% [markdown] nbgrader={"grade_id": "gradient_flow_reading", "locked": true}
# What to look for: a network whose early layers get gradients far smaller than its late
# layers' (vanishing) or far larger (exploding) learns unevenly, and the printed ratios put a
# number on it. Compare them with VGG-16 without BatchNorm in Exercise 1, whose table gave its
# first layer's gradient as a fraction of its last layer's. Here both networks have BatchNorm:
# compare how far the plain network's layers spread against the residual network's, and keep
# the numbers for the 34-layer comparison after Part C, where depth compounds whatever each
# block does. (The shortcut projections sit lower than the 3x3 convolutions partly because a
# 1x1 convolution has 9 times fewer weights.)

# %% [markdown] nbgrader={"grade_id": "part_c_task", "locked": true}
# ## Part C: mini-challenge, a deeper ResNet (9 points)
#
# The challenge has a fixed core and an open part.
#
# **Core (5 points, autograded).** Complete `DeepResNet(num_classes=10)` with the layout of
# ResNet-34: the same stem and head as your `ResNet18`, your `ResidualBlock`, channels 64,
# 128, 256, 512, but **[3, 4, 6, 3]** blocks in the four stages (1 + 32 + 1 = 34 layers with
# weights). Name the stages `layer1` to `layer4`; the first block of stages 2 to 4 halves the
# size. Reuse what you can (a `_make_layer` like ResNet18's); do not change `ResNet18`.
#
# **Open part (4 points: 1 autograded if you write the bottleneck block, 3 read by a person).**
# After the core's tests you design your own variant, `MyResNet`, from one of the lesson plan's
# options, and report how it compares with ResNet-18 and with a plain CNN (Session 7's
# `BaselineCNN`, standing in for the lesson plan's "Day 12 CNN"):
# 1. deeper stages (more blocks per stage than [3, 4, 6, 3]);
# 2. more channels: 64 → 128 → 256 → 512 → 1024 (a fifth stage);
# 3. a bottleneck block (ResNet-50's; write `BottleneckBlock` below and build from it);
# 4. a different stem (the first convolution's size or stride);
# 5. a different downsampling (for example pooling, or the stride in the shortcut only).

# %% nbgrader={"grade_id": "deep_resnet", "solution": true}
class DeepResNet(nn.Module):
    """ResNet-34's layout for 32x32 MNIST: a 3x3 stem, stages of [3, 4, 6, 3] ResidualBlocks, pooling, linear."""

    def __init__(self, num_classes=10):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=3, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=4, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=6, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=3, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        ### END SOLUTION

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        """One stage: `num_blocks` ResidualBlocks; the first changes the channels and applies `stride`."""
        ### BEGIN SOLUTION
        blocks = [ResidualBlock(in_channels, out_channels, stride)]
        blocks += [ResidualBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
        return nn.Sequential(*blocks)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.bn1(self.conv1(x)))   # (N, 64, 32, 32)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))   # (N, 512, 4, 4)
        return self.fc(self.avg_pool(x).flatten(1))                 # (N, num_classes)
        ### END SOLUTION


# %% tags=["nbval-check-output"] nbgrader={"grade_id": "deep_resnet_try"}
deep_resnet = DeepResNet()
print_shape_table(deep_resnet, torch.zeros(1, 1, 32, 32))

# %% nbgrader={"grade": true, "grade_id": "deep_resnet_output_shape", "points": 1}
"""DeepResNet maps (N, 1, 32, 32) images to (N, num_classes) class scores."""
model = DeepResNet().eval()
with torch.no_grad():
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10), "expected (3, 10) scores for 3 images"
    assert DeepResNet(num_classes=4).eval()(torch.rand(2, 1, 32, 32)).shape == (2, 4), "num_classes is ignored"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("deep_resnet_output_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "deep_resnet_blocks_per_stage", "points": 1}
"""DeepResNet has four stages of [3, 4, 6, 3] ResidualBlocks at 64, 128, 256, 512 channels and 32, 16, 8, 4 pixels."""
from deepnets.checks import output_shapes

model = DeepResNet()
per_stage = [n for n in (sum(isinstance(m, ResidualBlock) for m in child.modules()) for child in model.children()) if n]
assert per_stage == [3, 4, 6, 3], f"ResidualBlocks per stage: {per_stage}, expected [3, 4, 6, 3]"
shapes = output_shapes(model, torch.randn(2, 1, 32, 32), ResidualBlock)
expected = [(2, 64, 32, 32)] * 3 + [(2, 128, 16, 16)] * 4 + [(2, 256, 8, 8)] * 6 + [(2, 512, 4, 4)] * 3
assert shapes == expected, f"the blocks output {shapes}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("deep_resnet_blocks_per_stage", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "deep_resnet_parameter_count", "points": 1}
"""DeepResNet has exactly the parameters of ResNet-34's layout (convolution biases aside)."""
from deepnets.checks import parameters_without_conv_biases, resnet_parameter_count

expected = resnet_parameter_count([3, 4, 6, 3])  # 21,280,970 for 1 input channel and 10 classes
found = parameters_without_conv_biases(DeepResNet())
assert found == expected, f"DeepResNet has {found:,} parameters (conv biases aside); ResNet-34's layout has {expected:,}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("deep_resnet_parameter_count", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "deep_resnet_learns", "points": 2}
"""Trained by the grader on one fixed batch of 16 digits (8 Adam steps), DeepResNet drives its loss below 0.3."""
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("deep_resnet_learns", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "bottleneck_task", "locked": true}
# ### Open part: your variant
#
# **Option 3, a bottleneck block** (skip this cell if you choose another option).
# `BottleneckBlock(in_channels, out_channels, stride=1)`: a 1x1 convolution `conv1` from
# `in_channels` to `out_channels // 4`, a 3x3 convolution `conv2` at that width with the
# block's stride (padding 1), a 1x1 convolution `conv3` up to `out_channels`, each followed by
# BatchNorm (`bn1`, `bn2`, `bn3`; ReLU after the first two), no convolution biases, the same
# `shortcut` rule as `ResidualBlock`, and ReLU after the addition. If you write it, the test
# after it checks it (1 point); if you leave the cell as it is, that test passes too.

# %% nbgrader={"grade_id": "bottleneck_block", "solution": true}
class BottleneckBlock(nn.Module):
    """ResNet-50's block: 1x1 down to out/4 channels, 3x3 (with the stride), 1x1 up; plus a shortcut."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        width = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))     # (N, out / 4, H, W)
        out = F.relu(self.bn2(self.conv2(out)))   # (N, out / 4, H / stride, W / stride)
        out = self.bn3(self.conv3(out))           # (N, out, H / stride, W / stride)
        return F.relu(out + self.shortcut(x))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bottleneck_block_if_attempted", "points": 1}
"""If you wrote BottleneckBlock: its shapes, layers and parameters follow the design. Left unwritten, it passes."""
# Why a check that passes when the block is not attempted: nbgrader gives every graded cell
# fixed points and cannot leave a cell out of the total for some students only. A check that
# failed on the untouched stub would take a point from everyone who chose another option (a
# penalty for a free choice); a check worth nothing would not reward getting it right. This
# way writing the block costs nothing once it is correct, Validate tells you whether it is, and
# the open part's hand-graded points reward whichever option you chose.
from deepnets.checks import parameters_without_conv_biases

try:
    BottleneckBlock(16, 16)
except NotImplementedError:
    print("BottleneckBlock is not written: nothing to check, no point lost.")
else:
    for in_channels, out_channels, stride, size in [(16, 16, 1, 8), (16, 32, 2, 8), (8, 32, 1, 5)]:
        block = BottleneckBlock(in_channels, out_channels, stride).eval()
        with torch.no_grad():
            output = block(torch.randn(2, in_channels, size, size))
        expected_size = (size + stride - 1) // stride
        assert output.shape == (2, out_channels, expected_size, expected_size), \
            f"BottleneckBlock({in_channels}, {out_channels}, stride={stride}) gave {tuple(output.shape)}"
        assert output.min() >= 0, "ReLU comes after the addition"
        width = out_channels // 4
        expected = in_channels * width + 9 * width * width + width * out_channels + 2 * (2 * width + out_channels)
        if stride != 1 or in_channels != out_channels:
            expected += in_channels * out_channels + 2 * out_channels
        found = parameters_without_conv_biases(block)
        assert found == expected, (f"BottleneckBlock({in_channels}, {out_channels}, stride={stride}) has {found:,} "
                                   f"parameters (conv biases aside); its design has {expected:,}")
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg_resnet import lesson

lesson.verify("bottleneck_block_if_attempted", globals())
### END HIDDEN TESTS

# %% tags=["nbval-check-output"] nbgrader={"grade_id": "bottleneck_try"}
try:
    for in_channels, out_channels, stride in [(256, 256, 1), (256, 512, 2)]:
        x = torch.randn(2, in_channels, 8, 8)
        bottleneck, basic = BottleneckBlock(in_channels, out_channels, stride), ResidualBlock(in_channels, out_channels, stride)
        print(f"({in_channels} -> {out_channels}, stride {stride}): BottleneckBlock {tuple(bottleneck(x).shape)}, "
              f"{count_parameters(bottleneck):,} parameters; ResidualBlock {tuple(basic(x).shape)}, "
              f"{count_parameters(basic):,} parameters")
except NotImplementedError:
    print("BottleneckBlock is not written (it is one of the open part's options).")

# %% [markdown] nbgrader={"grade_id": "variant_task", "locked": true}
# **Your variant.** Write `MyResNet(num_classes=10)` in the next cell: one of the five options
# above, built from your blocks, for 1-channel 32x32 digits (the smaller budgets train it on
# 16x16 ones, so keep the head's `nn.AdaptiveAvgPool2d(1)`). Then run the cell after it: it
# trains your variant, ResNet18's recipe and budget, next to Session 7's `BaselineCNN`, and
# prints parameters, seconds and accuracy for all of them with paired verdicts. Keep
# the budget's cost in mind: a variant twice as expensive as DeepResNet takes twice as long.

# %% nbgrader={"grade_id": "my_resnet", "solution": true}
class MyResNet(nn.Module):
    """Your variant of DeepResNet (say which option in the report below)."""

    def __init__(self, num_classes=10):
        super().__init__()
        ### BEGIN SOLUTION
        # Option 4, a different stem: a 3x3 convolution with stride 2 halves the image before
        # the first stage, so every stage runs on a quarter of the pixels.
        self.conv1 = nn.Conv2d(1, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages = DeepResNet()  # borrow the [3, 4, 6, 3] stages and the head
        self.layer1, self.layer2, self.layer3, self.layer4 = stages.layer1, stages.layer2, stages.layer3, stages.layer4
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.bn1(self.conv1(x)))   # (N, 64, 16, 16) for a 32x32 input
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avg_pool(x).flatten(1))
        ### END SOLUTION


# %% [markdown] nbgrader={"grade_id": "deep_train_intro", "locked": true}
# ### Training DeepResNet and your variant against ResNet-18 and a plain CNN
#
# Every network here is trained with ResNet-18's recipe (Adam, learning rate 0.001, batch 64,
# seed 0) on the same images; in the full budget DeepResNet and your variant get 3 epochs, as
# the lesson plan did, against ResNet-18's 5 (the table prints each). `BaselineCNN` is Session
# 7's two-convolution CNN, sized for this notebook's digits.

# %% nbgrader={"grade_id": "train_deep"}
class BaselineCNN(nn.Module):
    """Session 7's (and Session 6's) CNN: two conv-ReLU-pool stages and a linear classifier."""

    def __init__(self, image_size=budget.image_size):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(32 * (image_size // 4) ** 2, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


for name, model_class in [("DeepResNet", DeepResNet), ("BaselineCNN", BaselineCNN), ("MyResNet", MyResNet)]:
    set_seed(0)
    try:
        models[name] = model_class()
    except NotImplementedError:
        print(f"{name} is not written yet: skipped.")
        continue
    histories[name] = fit(models[name], mnist, epochs=budget.deep_epochs, batch_size=64,
                          lr=1e-3, seed=0, device=device, name=name)
trained = [name for name in ("ResNet18", "DeepResNet", "MyResNet", "BaselineCNN") if name in histories]
answers = accuracy_table(trained)
for other in ("DeepResNet", "MyResNet"):
    if other in histories:
        print()
        compare("ResNet18", other, answers)
if "MyResNet" in histories:
    print()
    compare("BaselineCNN", "MyResNet", answers)
deep_reference = remember("resnet.deep_vs_resnet18", budget,
                          models={n: models[n] for n in ("ResNet18", "DeepResNet")},
                          histories={n: histories[n] for n in ("ResNet18", "DeepResNet")},
                          data_source=mnist.source)

# %% [markdown] nbgrader={"grade_id": "deep_flow_intro", "locked": true}
# ### Gradient flow at 34 layers
#
# The gradient flow again, now between DeepResNet and a plain network of the same 34-layer
# layout, both freshly initialised with the same seed, on the same batch as at 18 layers.

# %% nbgrader={"grade_id": "deep_gradient_flow"}
class PlainDeepNet(DeepResNet):
    """DeepResNet without skip connections: every stage is built from PlainBlocks."""

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        return plain_stage(in_channels, out_channels, num_blocks, stride)


assert not any(isinstance(m, ResidualBlock) for m in PlainDeepNet().modules()), \
    "PlainDeepNet still has ResidualBlocks: DeepResNet.__init__ must build its stages with self._make_layer"
deep_norms = {}
for name, model_class in [("plain, 34 layers", PlainDeepNet), ("DeepResNet", DeepResNet)]:
    set_seed(0)
    deep_norms[name] = gradient_norms(model_class().to(device), images, labels)
plot_gradient_norms(deep_norms, title="Gradient norm per layer at initialisation, 34 layers (one batch of 32)")
spread_34 = gradient_ratios(deep_norms, "initialised")
plain_18, residual_18 = spread_18["initialised"]["PlainNet"], spread_18["initialised"]["ResNet18"]
plain_34, residual_34 = spread_34["plain, 34 layers"], spread_34["DeepResNet"]
print(f"\nLargest / smallest layer gradient at initialisation ({budget.image_size}x{budget.image_size} digits): "
      f"plain {plain_18:.1f} at 18 layers and {plain_34:.1f} at 34; residual {residual_18:.1f} and {residual_34:.1f}.")
print(f"From 18 to 34 layers the plain network's spread {'grew' if plain_34 > plain_18 else 'did not grow'} "
      f"({plain_34 / plain_18:.2f}x) and the residual network's "
      f"{'grew' if residual_34 > residual_18 else 'did not grow'} ({residual_34 / residual_18:.2f}x); "
      f"at 34 layers the plain network's spread is {plain_34 / residual_34:.1f}x the residual one's.")

# %% [markdown] nbgrader={"grade_id": "deep_gradient_reading", "locked": true}
# Compare these ratios with the 18-layer ones above (the initialised pair), using the lines just
# printed. With BatchNorm, a deep plain network's gradients need not vanish: look at whether
# its early layers' gradients are larger or smaller than its late layers', and whether depth
# widens the spread more in the plain network than in the residual one. Without BatchNorm and
# with a poor initialisation, as VGG-16 in Exercise 1 showed in its own table, the same
# compounding can shrink gradients to almost nothing.
#
# ### Your report (3 points, read by a person)
#
# In the next cell: which option you chose and why you expected it to help; its parameters,
# training seconds and test accuracy against ResNet-18 and `BaselineCNN`, copied from the table
# and verdicts above (with the budget you ran); and whether the comparison shows a difference
# beyond the test set's luck.

# %% [markdown] nbgrader={"grade": true, "grade_id": "challenge_report", "points": 3, "solution": true}
# Model answer (for the course's variant; the numbers come from the table above and change with
# the budget): "I chose option 4, a stride-2 stem, expecting the same depth at a quarter of the
# pixels to train in a fraction of DeepResNet's time. MyResNet has as many parameters as
# DeepResNet (the stem's stride adds none); the table gives its seconds against ResNet18's and
# BaselineCNN's, and its train-mode test accuracy. The paired verdicts say whether it differs
# from ResNet18 and from BaselineCNN by more than the test set's luck; at the demo budget one
# short run each may not rank networks that all reach high accuracy, and BaselineCNN, with far
# fewer parameters (the table gives both), is a hard baseline on MNIST."
#
# Mark scheme: 1 point for a variant from the list, built and trained, with the reason it was
# chosen; 1 point for parameters, seconds and accuracy of the variant, ResNet-18 and the plain
# CNN, taken from the notebook's own output with the budget named; 1 point for a conclusion
# that follows the paired verdicts (no "better" where the verdict says the run cannot tell).

# %% [markdown] nbgrader={"grade_id": "part_d_task", "locked": true}
# ## Part D: reflection (13 points)
#
# Answer each of the seven questions in a few sentences; all seven are graded. Use the numbers
# and plots of this notebook and of Exercise 1 (`day13_vgg/vgg.ipynb`): say what they show and
# what they cannot show. Points are given for reasoning
# from evidence, not for length. (If you ran the quick budget, rerun with
# `DEEPNETS_BUDGET=demo` first: a handful of training steps shows little.)
#
# **1. Why do skip connections help against the vanishing gradient problem, and in deep
# networks generally?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_skip_connections", "points": 2, "solution": true}
# Model answer: a residual block adds its input to the branch's output, so the derivative of
# F(x) + x with respect to x is dF/dx + I: however small the branch's derivative, the identity
# term gives the gradient a path that no weight multiplies, so the gradient reaching early
# layers is not only a product of one factor per layer. In our post-activation block the last
# ReLU gates that path (it passes the gradient where F(x) + x > 0, stops it elsewhere), so
# "unchanged" holds only where the ReLU is active; pre-activation blocks (He 2016b) drop that
# ReLU and make the path a true identity. A block that is not needed can learn F(x) = 0 and
# pass its input on (the zero-γ start). Evidence: the stacked-block table's growth factors
# from 1 to 16 blocks, plain against residual, and the largest/smallest gradient ratios at 18
# and 34 layers, read with the numbers the notebook printed.
#
# Mark scheme: 1 point for the mechanism (identity term in the derivative, or an additive path
# the gradient takes without passing through the weights; full credit does not require the
# ReLU gating, but no credit for claiming the ReLU-gated path always multiplies by exactly
# one); 1 point for evidence from the notebook's own printed numbers (the stacked-block table
# or the gradient-flow ratios), whichever way they came out.

# %% [markdown] nbgrader={"grade_id": "reflection_2_question", "locked": true}
# **2. How do gradients flow differently in plain and residual networks? Describe what your
# gradient-flow plots and ratios show at 18 and at 34 layers.** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_gradient_flow", "points": 2, "solution": true}
# Model answer (its comparisons follow the printed lines; a run can come out otherwise): the
# notebook printed, for each network, the stem's gradient over the last layer's and the largest
# over the smallest layer's, at 18 and at 34 layers, and a line saying whether the plain
# network's spread grew from 18 to 34 layers and how it compares with the residual network's.
# Where that line says the plain spread grew and exceeds the residual one, it shows depth
# compounding in the plain network: gradients there are multiplied through every layer on the
# way back, so whatever each layer does compounds with depth, while in a residual network they
# also flow along the identity paths. With BatchNorm, the plain network's early gradients may
# be larger rather than smaller than its late ones (drift, not vanishing).
#
# Mark scheme: 1 point for describing their own plots with numbers (ratios or orders of
# magnitude, 18 against 34 layers); 1 point for a correct explanation (compounding through
# layers against identity paths) that does not claim vanishing where the plot shows growth.

# %% [markdown] nbgrader={"grade_id": "reflection_3_question", "locked": true}
# **3. How does VGG's design philosophy differ from AlexNet's?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_vgg_alexnet", "points": 2, "solution": true}
# Model answer: AlexNet chose each layer by hand, with large early kernels (11x11 with stride 4,
# then 5x5) and an irregular sequence of layers. VGG fixed one rule: blocks of 3x3
# convolutions (padding 1) followed by 2x2 max pooling, doubling the channels after each
# pooling, and went deeper (16-19 layers) by repeating the block. Two stacked 3x3 convolutions
# see a 5x5 window with 28% fewer parameters and an extra ReLU (three see 7x7 with 45% fewer),
# as Exercise 1 measured from real layers. The price: far more computation, and most
# parameters in the fully connected layers (Exercise 1 printed their share for our VGG-16).
#
# Mark scheme: 1 point for the contrast (hand-designed large kernels against one repeated
# block of small kernels, deeper); 1 point for the receptive-field and parameter argument with
# numbers, or for a cost Exercise 1 showed (compute, parameters in the classifier, training
# without BatchNorm).

# %% [markdown] nbgrader={"grade_id": "reflection_4_question", "locked": true}
# **4. What makes ResNet such a breakthrough?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_resnet_breakthrough", "points": 2, "solution": true}
# Model answer: before ResNet, deeper plain networks trained *worse*, on the training set as
# well (the degradation problem), so depth stopped paying off at around 20 layers. Residual
# connections made depth cheap: a block defaults to something close to the identity, gradients
# have a direct path, and networks of 50, 152 and (in the paper) over 1,000 layers trained;
# ResNet won ImageNet 2015 and its block became the default building unit of later
# architectures. Its cost is small: an identity shortcut adds no parameters, a projection few.
#
# Mark scheme: 1 point for the problem it solved (degradation of deep plain networks, not
# overfitting; or training very deep networks at all); 1 point for why it works or what it
# enabled (identity path and easy identity, depth of 100+ layers, reuse in later designs).

# %% [markdown] nbgrader={"grade_id": "reflection_5_question", "locked": true}
# **5. What would you consider when choosing a network's depth?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_depth", "points": 2, "solution": true}
# Model answer: whether the network can be trained at that depth (Exercise 1's verdicts say
# whether VGG-16 without BatchNorm learned in the student's run; skip connections and
# normalisation make depth trainable); the cost in parameters, time and memory (DeepResNet has
# about 21 million parameters to ResNet-18's 11 million, and the table gives the seconds each
# took in the student's run); the size of the data set and the task (on
# MNIST an 18-layer network already has far more capacity than needed, so a deeper one can
# only overfit more or train longer); and evidence: compare depths fairly, with the same
# budget and seed, and look at validation accuracy, not only training loss.
#
# Mark scheme: 1 point for two or more distinct considerations (trainability, compute and
# memory, data size and overfitting, the accuracy gain actually observed); 1 point for tying at
# least one of them to a number from today's notebooks.

# %% [markdown] nbgrader={"grade_id": "reflection_6_question", "locked": true}
# **6. What was the most important concept you learned today, and which output of today's
# notebooks showed it to you?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_most_important", "points": 2, "solution": true}
# Model answer (one of many; it quotes Exercise 1's printed lines, so it holds where they came
# out this way): that a network can fail to learn for reasons that have nothing to do with its
# capacity. Where Exercise 1's verdict printed VGG-16 without BatchNorm as "not learning" at a
# loss near ln 10, its table gave the first layer's gradient as a tiny fraction of the last
# layer's at initialisation, and the BatchNorm run's loss fell. BatchNorm and, for deeper
# networks, skip connections are what make depth usable.
#
# Mark scheme: 1 point for a concept of the day stated correctly (VGG blocks, receptive field,
# vanishing or exploding gradients, BatchNorm, residual connections, projection shortcuts,
# fair comparisons); 1 point for pointing to a specific output (a number, table or plot) that
# demonstrates it.

# %% [markdown] nbgrader={"grade_id": "reflection_7_question", "locked": true}
# **7. What questions do you have about modern architectures?** (1 point)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_open_question", "points": 1, "solution": true}
# Example: "Would pre-activation blocks, whose identity path has no ReLU, change the gradient
# ratios of the 34-layer comparison?" or "Could a plain 34-layer network with a better
# initialisation train as well as DeepResNet?"
#
# Mark scheme: 1 point for a specific question that builds on today's material (not "none" or
# a yes/no question with an obvious answer). Graders may answer it in the feedback.

# %% [markdown] nbgrader={"grade_id": "wrap_up", "locked": true}
# ## Wrap-up
#
# * A **residual block** adds its input back: `ReLU(F(x) + shortcut(x))`. The shortcut is the
#   identity whenever the shapes match and a 1x1 projection only where they change.
# * **ResNet-18** is a stem, four stages of two blocks (64 to 512 channels, halving the size),
#   global average pooling and one linear layer: about 11 million parameters.
# * A **fair comparison** changes one thing: PlainNet and ResNet18 share every convolution.
# * **Gradient flow**: read it from the per-layer norms. Without normalisation and with a poor
#   initialisation, deep plain networks' gradients can vanish (Exercise 1's table); with
#   BatchNorm, compare the spread of plain and residual networks at 18 and 34 layers (the lines
#   printed above say how it came out in your run).
# * **Post- and pre-activation**: the last ReLU of the original block gates the identity path;
#   pre-activation blocks make it a true identity. Zeroing a block's last γ starts it as the
#   identity (the tests' trick, and a training recipe).
#
# Next: transfer learning with networks pretrained on ImageNet, such as ResNet.
