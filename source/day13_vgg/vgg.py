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
# # Day 13 · Exercise 1: VGG, deep networks from small convolutions
#
# AlexNet (2012) won ImageNet with eight layers whose shapes were chosen one by one: an 11x11
# convolution, then 5x5, then 3x3. VGG (Simonyan & Zisserman, *Very Deep Convolutional
# Networks for Large-Scale Image Recognition*, 2014) replaced that hand design with one rule
# repeated: a **block** of a few 3x3 convolutions with ReLU, then 2x2 max pooling, with the
# number of channels doubling after each pooling. Stacking blocks gave networks of 16 and 19
# layers, twice AlexNet's depth.
#
# In Parts A and B you write the VGG block and VGG-16 for 32x32 MNIST. Part C is read and run:
# it trains *your* VGG-16 the way the lesson plan did, looks inside it at initialisation, and
# tests what changes when BatchNorm is added. Your instructor runs the same notebook live.
# The next notebook, `day13_vgg_resnet/resnet.ipynb`, takes the day's second idea, residual
# connections.
#
# **Goals.** After this notebook you can
# 1. write a VGG block and assemble VGG-16 whose shapes and parameter count you can explain,
# 2. compute the receptive field and parameter cost of stacked 3x3 convolutions,
# 3. tell "the network is not learning" from "the network is learning slowly" in a training
#    run, and explain with evidence why a deep plain network can fail to learn at all.
#
# **Readings.** D2L [8.2 Networks Using Blocks (VGG)](https://d2l.ai/chapter_convolutional-modern/vgg.html)
# and [8.5 Batch Normalization](https://d2l.ai/chapter_convolutional-modern/batch-norm.html).
#
# **How this notebook is graded.** Parts A and B are autograded (6 points): the cells after
# each task are tests worth the points in their header; more checks run when your notebook is
# graded. Part C is not graded, but the Day 13 reflection asks about its outputs. Before you
# submit, *Restart & Run All* (or press **Validate**), then save: the outputs your notebook
# carries are the ones a grader reads.

# %% nbgrader={"grade_id": "setup", "locked": true}
# deepnets first: it tunes PyTorch's CPU threads for a shared machine before torch loads.
from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.evidence import correct_answers, remember
from deepnets.gradients import activation_stds, gradient_norms, plot_gradient_norms
from deepnets.plots import plot_training_curves
from deepnets.shapes import print_shape_table

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

device = pick_device()
print(f"Device: {device}")

# How much Part C trains. VGG-16 is expensive on a CPU (about 0.3 billion multiply-adds per
# image, forward only), so the budget sets the number of steps and the batch size; the network
# and the recipe (Adam, cross-entropy) stay the lesson plan's. 'quick' while nbgrader validates
# or grades (too short to show the effect: it says so), 'demo' on a laptop CPU, 'full' the
# lesson plan's setting (3 epochs of all 60,000 images, batch 64; for a GPU).
budget = pick_budget(
    quick=dict(train_size=128, test_size=100, epochs=1, batch_size=32),   # 4 steps per run
    demo=dict(train_size=1_280, test_size=300, epochs=1, batch_size=32),  # 40 steps per run
    full=dict(train_size=None, test_size=None, epochs=3, batch_size=64),  # the lesson plan: 3 x 938 steps
)
# VGG-16 halves the image five times (32 -> 16 -> 8 -> 4 -> 2 -> 1), so MNIST's 28x28 digits
# get a 2-pixel border of zeros to make them 32x32.
mnist = load_mnist().subset(budget.train_size, budget.test_size).padded(2)
print(mnist)

# %% [markdown] nbgrader={"grade_id": "part_a_task", "locked": true}
# ## Part A: the VGG block (3 points)
#
# Complete `vgg_block(num_convs, in_channels, out_channels)`. It returns an `nn.Sequential` of
#
# * `num_convs` 3x3 convolutions (`nn.Conv2d(..., kernel_size=3, padding=1)`), each followed by
#   a ReLU. The first goes from `in_channels` to `out_channels`, the others from
#   `out_channels` to `out_channels`;
# * then one 2x2 max pooling with stride 2 (`nn.MaxPool2d(kernel_size=2, stride=2)`).
#
# Padding 1 keeps the height and width through the convolutions; only the pooling halves them.
# Keep the convolutions' biases (the default).

# %% nbgrader={"grade_id": "vgg_block", "solution": true}
def vgg_block(num_convs, in_channels, out_channels):
    """`num_convs` 3x3 convolutions, each with ReLU, then 2x2 max pooling."""
    ### BEGIN SOLUTION
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels  # the next convolution reads this one's output
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)
    ### END SOLUTION


# %% nbgrader={"grade_id": "vgg_block_try", "locked": true}
print(vgg_block(2, 1, 64))

# %% nbgrader={"grade": true, "grade_id": "vgg_block_output_shape", "points": 1}
"""vgg_block(n, in, out) maps (N, in, H, W) to (N, out, H / 2, W / 2)."""
block = vgg_block(2, 1, 64)
assert block(torch.rand(2, 1, 32, 32)).shape == (2, 64, 16, 16), "vgg_block(2, 1, 64) should map (2, 1, 32, 32) to (2, 64, 16, 16)"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg_block_output_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "vgg_block_layers", "points": 1}
"""num_convs 3x3 convolutions with padding 1, ReLU after each, and one 2x2 max pooling at the end."""
block = vgg_block(3, 4, 8)
convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
pools = [m for m in block.modules() if isinstance(m, nn.MaxPool2d)]
assert len(convs) == 3, f"vgg_block(3, 4, 8) has {len(convs)} convolutions, expected 3"
assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs), "use 3x3 kernels with padding=1"
assert [(c.in_channels, c.out_channels) for c in convs] == [(4, 8), (8, 8), (8, 8)], "the first convolution changes the channels"
assert len(pools) == 1, "one max pooling per block"
with torch.no_grad():
    assert block(torch.randn(2, 4, 8, 8)).min() >= 0, "the block's output has negative values: ReLU after each convolution"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg_block_layers", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "vgg_block_parameter_count", "points": 1}
"""vgg_block has exactly the parameters of its convolutions (3x3 weights and a bias each); ReLU and pooling have none."""
assert count_parameters(vgg_block(2, 1, 64)) == (9 * 1 * 64 + 64) + (9 * 64 * 64 + 64), \
    f"vgg_block(2, 1, 64) has {count_parameters(vgg_block(2, 1, 64)):,} parameters, expected 37,568"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg_block_parameter_count", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "receptive_field_intro", "locked": true}
# ### Why 3x3? Receptive field and parameters, counted from real layers
#
# Two 3x3 convolutions in a row: each output pixel of the second depends on a 3x3 patch of the
# first's output, each of which depends on a 3x3 patch of the input, so the output sees a 5x5
# window of the input, like one 5x5 convolution. Rather than take that on trust, the cell
# below measures it: it backpropagates from one output pixel and reads off which input pixels
# receive a gradient. The 3x3 stacks are your `vgg_block`'s layers without the pooling;
# parameters are counted from the same layers, for 64 channels in and out.

# %% tags=["nbval-check-output"] nbgrader={"grade_id": "receptive_field", "locked": true}
def receptive_field(layers, size=15):
    """Side of the square of input pixels that can change the centre output pixel, by backprop."""
    probe = copy.deepcopy(layers)
    with torch.no_grad():
        for parameter in probe.parameters():
            parameter.abs_()  # positive weights and inputs: every ReLU passes, no paths cancel
    in_channels = next(m for m in probe.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.rand(1, in_channels, size, size, requires_grad=True)
    probe(x)[0, :, size // 2, size // 2].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero()  # input rows that got a gradient
    return rows.max().item() - rows.min().item() + 1


def without_pooling(block):
    """The block's layers in order, the max pooling left out."""
    return nn.Sequential(*[m for m in block.modules()
                           if not list(m.children()) and not isinstance(m, nn.MaxPool2d)])


def one_conv(kernel_size, channels=64):
    return nn.Sequential(nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2), nn.ReLU())


stacks = {"one 3x3": without_pooling(vgg_block(1, 64, 64)), "two 3x3": without_pooling(vgg_block(2, 64, 64)),
          "one 5x5": one_conv(5), "three 3x3": without_pooling(vgg_block(3, 64, 64)), "one 7x7": one_conv(7)}
print(f"{'stack (64 -> 64 channels)':<26} {'receptive field':>15} {'parameters':>11} "
      f"{'weights per channel pair':>25} {'ReLUs':>6}")
for name, stack in stacks.items():
    convs = [m for m in stack.modules() if isinstance(m, nn.Conv2d)]
    side = receptive_field(stack)
    per_pair = sum(conv.kernel_size[0] * conv.kernel_size[1] for conv in convs)
    relus = sum(isinstance(m, nn.ReLU) for m in stack.modules())
    print(f"{name:<26} {f'{side}x{side}':>15} {count_parameters(stack):>11,} {per_pair:>25} {relus:>6}")

for small, large in [("two 3x3", "one 5x5"), ("three 3x3", "one 7x7")]:
    saving = 1 - count_parameters(stacks[small]) / count_parameters(stacks[large])
    print(f"{small} vs {large}: receptive fields {receptive_field(stacks[small])} and "
          f"{receptive_field(stacks[large])} pixels wide, {saving:.0%} fewer parameters in the 3x3 stack")

# %% [markdown] nbgrader={"grade_id": "part_b_task", "locked": true}
# ## Part B: VGG-16 for 32x32 MNIST (3 points)
#
# Complete `VGG16_MNIST(num_classes=10)`:
#
# | part | layers | output for a (N, 1, 32, 32) input |
# | --- | --- | --- |
# | `features` | `vgg_block(2, 1, 64)` | (N, 64, 16, 16) |
# | | `vgg_block(2, 64, 128)` | (N, 128, 8, 8) |
# | | `vgg_block(3, 128, 256)` | (N, 256, 4, 4) |
# | | `vgg_block(3, 256, 512)` | (N, 512, 2, 2) |
# | | `vgg_block(3, 512, 512)` | (N, 512, 1, 1) |
# | `classifier` | flatten; linear 512 to 4096, ReLU, dropout 0.5; linear 4096 to 4096, ReLU, dropout 0.5; linear 4096 to `num_classes` | (N, num_classes) |
#
# Put the five blocks in an `nn.Sequential` named `features` and the three linear layers in
# one named `classifier`. 13 convolutional and 3 linear layers: 16 layers with weights. (The
# original was built for 224x224 colour images, where the last block leaves 7x7 maps; on 32x32
# digits it leaves 1x1, so the first linear layer takes 512 inputs.)

# %% nbgrader={"grade_id": "vgg16", "solution": true}
class VGG16_MNIST(nn.Module):
    """VGG-16 for 32x32 MNIST: 13 3x3 convolutions in five blocks, then three linear layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        ### BEGIN SOLUTION
        self.features = nn.Sequential(            # (N, 1, 32, 32)
            vgg_block(2, 1, 64),                  # (N, 64, 16, 16)
            vgg_block(2, 64, 128),                # (N, 128, 8, 8)
            vgg_block(3, 128, 256),               # (N, 256, 4, 4)
            vgg_block(3, 256, 512),               # (N, 512, 2, 2)
            vgg_block(3, 512, 512),               # (N, 512, 1, 1)
        )
        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.classifier(self.features(x).flatten(1))   # (N, num_classes)
        ### END SOLUTION


# %% [markdown] nbgrader={"grade_id": "part_b_try", "locked": true}
# Your network's shapes, traced by running one image through it (each row is recorded by the
# layer as it runs), and its parameters:

# %% tags=["nbval-check-output"] nbgrader={"grade_id": "vgg16_try", "locked": true}
vgg = VGG16_MNIST()
print_shape_table(vgg, torch.zeros(1, 1, 32, 32), depth=2)
convolutional = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
linear = [m for m in vgg.modules() if isinstance(m, nn.Linear)]
in_linear = sum(count_parameters(m) for m in linear)
print(f"Layers with weights: {len(convolutional)} convolutional + {len(linear)} linear = "
      f"{len(convolutional) + len(linear)}")
print(f"Parameters: {count_parameters(vgg):,} in all; {in_linear:,} ({in_linear / count_parameters(vgg):.0%}) "
      f"in the linear layers")

# %% nbgrader={"grade": true, "grade_id": "vgg16_output_shape", "points": 1}
"""VGG16_MNIST maps (N, 1, 32, 32) images to (N, num_classes) class scores."""
model = VGG16_MNIST().eval()
with torch.no_grad():
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10), "expected (3, 10) scores for 3 images"
    assert VGG16_MNIST(num_classes=4).eval()(torch.rand(2, 1, 32, 32)).shape == (2, 4), "num_classes is ignored"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg16_output_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "vgg16_blocks", "points": 1}
"""13 3x3 convolutions in five blocks of [2, 2, 3, 3, 3]; each block's pooling outputs 64 to 512 channels at 16 down to 1 pixel."""
model = VGG16_MNIST()
convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
assert len(convs) == 13 and all(c.kernel_size == (3, 3) for c in convs), "VGG-16 has 13 3x3 convolutions"
shapes = []
hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
         for m in model.modules() if isinstance(m, nn.MaxPool2d)]
with torch.no_grad():
    model.eval()(torch.rand(2, 1, 32, 32))
for hook in hooks:
    hook.remove()
assert shapes == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2), (2, 512, 1, 1)], \
    f"the poolings output {shapes}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg16_blocks", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "vgg16_parameter_count", "points": 1}
"""VGG16_MNIST has exactly the parameters of VGG-16's layout for one input channel and 10 classes."""
expected = sum((9 * c_in + 1) * c_out for c_in, c_out in
               [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)])
expected += (512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 10
assert count_parameters(VGG16_MNIST()) == expected, \
    f"VGG16_MNIST has {count_parameters(VGG16_MNIST()):,} parameters; VGG-16's layout has {expected:,}"
### BEGIN HIDDEN TESTS
from autograder.checks.day13_vgg import lesson

lesson.verify("vgg16_parameter_count", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "part_c_intro", "locked": true}
# Most of the parameters sit in the first two linear layers (the line above gives the share),
# yet most of the computation is in the convolutions, which run at every pixel position.
#
# ## Part C (read and run): training your VGG-16 as the lesson plan wrote it
#
# Adam with learning rate 0.001, cross-entropy: the lesson plan's recipe. We judge whether a
# network **learns** by its training loss. A network that has learned nothing assigns
# probability 1/10 to each digit, a loss of ln 10 = 2.303; a falling loss is learning. The
# test accuracy is printed too; always guessing the most common digit would score the
# "chance" printed below.
#
# What the budget changes: the number of steps and the batch size (the setup cell prints
# them), never the network or the optimiser. Each verdict below is printed from this run's
# numbers, with the budget it holds for.

# %% nbgrader={"grade_id": "train_plain_vgg", "locked": true}
LN_10 = math.log(10)
chance = 100 * mnist.test_labels.bincount().max().item() / len(mnist.test_labels)
steps = budget.epochs * math.ceil(len(mnist.train_labels) / budget.batch_size)


def summary(history):
    """Training loss and accuracy averaged over the last tenth of the steps (at least 4)."""
    last = max(4, len(history.step_loss) // 10)
    return sum(history.step_loss[-last:]) / last, sum(history.step_accuracy[-last:]) / last


def verdict(loss):
    """What a training loss says about learning, next to ln 10 (a uniform guess)."""
    if loss > LN_10 + 0.05:
        return "worse than a uniform guess (loss above ln 10): its steps overshoot"
    if loss > LN_10 - 0.1:
        return "not learning (yet): the loss is still about ln 10, that of a uniform guess"
    if loss > 1.5:
        return "learning, slowly"
    return "learning"


def with_batchnorm(model):
    """The same network with a BatchNorm2d after every convolution (the convolutions unchanged)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, nn.Sequential(child, nn.BatchNorm2d(child.out_channels)))
    return model


def train_vgg(name, batch_norm, lr):
    """Train a fresh VGG-16 (same seed, data order, batch size); return the model and its history."""
    set_seed(0)  # BatchNorm draws no random numbers, so every run starts from the same weights
    model = with_batchnorm(VGG16_MNIST()) if batch_norm else VGG16_MNIST()
    history = fit(model, mnist, epochs=budget.epochs, batch_size=budget.batch_size, lr=lr, seed=0,
                  device=device, name=name)
    loss, accuracy = summary(history)
    print(f"{name}: training loss {loss:.3f} and training accuracy {accuracy:.1f}% over the last "
          f"steps ({steps} steps of {budget.batch_size} in the {budget.name} budget) -> {verdict(loss)}")
    return model, history


print(f"{steps} training steps per run, batch {budget.batch_size}; chance on the test images: {chance:.1f}%")
runs, models = {}, {}
name = "no BN, lr 1e-3 (lesson plan)"
models[name], runs[name] = train_vgg(name, batch_norm=False, lr=1e-3)

# %% [markdown] nbgrader={"grade_id": "inside_intro", "locked": true}
# Read the verdict above. Before trying fixes, we look inside the network.
#
# ### Why: the signal on the way in, and the gradient on the way back
#
# Take three fresh VGG-16s with the same seed: PyTorch's default initialisation (what we just
# trained), **Kaiming initialisation** (He et al., 2015: weights drawn with variance 2 / fan-in,
# which keeps the scale of a ReLU network's activations from layer to layer), and the default
# initialisation with BatchNorm after each convolution. For one batch of 64 training images we
# measure, layer by layer:
#
# * **spread**: how much the layer's output differs from one image to the next. Near zero, the
#   layer outputs the same thing whatever the digit, and so does everything after it;
# * **gradient norm**: the size of ∂loss/∂weight, what the optimiser gets to learn from.

# %% nbgrader={"grade_id": "inside", "locked": true}
def kaiming_init(model):
    """He et al. (2015) initialisation for ReLU networks: weight variance 2 / fan-in, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


def by_depth(model, values):
    """Rename {module name: value} to conv1 .. conv13, fc1 .. fc3, so that variants line up."""
    kinds = {name: ("conv" if isinstance(m, nn.Conv2d) else "fc") for name, m in model.named_modules()}
    counts, renamed = {"conv": 0, "fc": 0}, {}
    for name, value in values.items():
        counts[kinds[name]] += 1
        renamed[f"{kinds[name]}{counts[kinds[name]]}"] = value
    return renamed


fresh = {}
for name, make in [("default init", lambda: VGG16_MNIST()),
                   ("Kaiming init", lambda: kaiming_init(VGG16_MNIST())),
                   ("default + BN", lambda: with_batchnorm(VGG16_MNIST()))]:
    set_seed(0)
    fresh[name] = make()
images, labels = mnist.train_images[:64], mnist.train_labels[:64]
spreads = {name: by_depth(model, activation_stds(model, images)) for name, model in fresh.items()}
norms = {name: by_depth(model, gradient_norms(model, images, labels)) for name, model in fresh.items()}
del fresh  # three VGG-16s are 0.4 GB; the measurements are all we need

for title, table, layers in [("spread", spreads, list(spreads["default init"])),
                             ("gradient norm", norms, ["conv1", "conv7", "conv13", "fc3"])]:
    print(f"{title:<14}" + "".join(f"{name:>15}" for name in norms))
    for layer in layers:
        print(f"{layer:<14}" + "".join(f"{table[name][layer]:>15.1e}" for name in norms))
    print()
first, last = spreads["default init"]["conv1"], spreads["default init"]["fc3"]
shrink = (last / first) ** (1 / (len(spreads["default init"]) - 1))
print(f"Default init: the spread changes by a factor of {shrink:.2f} per layer on average, "
      f"from {first:.1e} after conv1 to {last:.1e} at the logits.")
for name, layer_norms in norms.items():
    print(f"{name}: the first layer's gradient is {layer_norms['conv1'] / layer_norms['fc3']:.1e} "
          f"times the last layer's.")
plot_gradient_norms(norms, title="VGG-16 at initialisation: gradient norm per layer (one batch)");

# %% [markdown] nbgrader={"grade_id": "inside_reading", "locked": true}
# How to read it. A per-layer factor below 1 means each layer passes on a weaker version of
# the differences between images than it received; compounded over 16 layers, the logits of
# different digits become nearly the same and the network cannot tell them apart. The
# gradient tells the same story backwards: a first-layer gradient orders of magnitude below
# the last layer's is a **vanishing gradient**. Compare the three columns: Kaiming
# initialisation chooses the initial weights so that the scale is right at the start;
# BatchNorm rescales every layer's output to zero mean and unit variance over the batch at
# every step, whatever the weights become.
#
# ### The fix: BatchNorm after every convolution, and a learning-rate contrast
#
# Same network, same initial weights, same data order and recipe, with a BatchNorm layer
# after each of the 13 convolutions (`with_batchnorm`, above). Then the contrast: is the
# learning rate to blame? Adam moves every weight by up to about `lr` per step whatever the
# size of its gradient, so we rerun the network without BatchNorm at a ten times smaller rate.

# %% nbgrader={"grade_id": "train_fixes", "locked": true}
for name, batch_norm, lr in [("BN, lr 1e-3", True, 1e-3), ("no BN, lr 1e-4", False, 1e-4)]:
    models[name], runs[name] = train_vgg(name, batch_norm=batch_norm, lr=lr)

# %% [markdown] nbgrader={"grade_id": "side_by_side_intro", "locked": true}
# ### The runs side by side
#
# Test accuracy is measured twice for each run: in evaluation mode (BatchNorm uses the running
# averages of its statistics, updated a little at every step, which lag behind the weights in a
# short run) and in training mode (each batch of test images is normalised with its own
# statistics). The verdict rests on the training loss, which neither affects.

# %% nbgrader={"grade_id": "side_by_side", "locked": true}
reference = remember("vgg.batchnorm_fix", budget, models=models, histories=runs, data_source=mnist.source)
print(f"{'run':<30} {'training loss':>13} {'training acc.':>14} {'test acc. (eval)':>17} "
      f"{'test acc. (train mode)':>23} {'seconds':>8}  verdict")
for name, history in runs.items():
    loss, accuracy = summary(history)
    by_mode = [100 * correct_answers(models[name], mnist.test_images, mnist.test_labels,
                                     train_mode=mode).float().mean().item() for mode in (False, True)]
    print(f"{name:<30} {loss:>13.3f} {accuracy:>13.1f}% {by_mode[0]:>16.1f}% {by_mode[1]:>22.1f}% "
          f"{history.seconds:>8.0f}  {verdict(loss)}")
print(f"(training loss and accuracy: mean over the last tenth of the steps; ln 10 = {LN_10:.3f}; "
      f"chance = {chance:.1f}%)")
shown = {**runs, **({f"{name} (recorded full run)": h for name, h in reference.histories.items()}
                    if reference else {})}
plot_training_curves(shown, title=f"VGG-16 on MNIST, {budget.name} budget", train_accuracy=True);

# %% nbgrader={"grade_id": "conclusions", "locked": true}
def said(name):
    """The verdict on one run, from its training loss."""
    return verdict(summary(runs[name])[0])


plain, fixed = summary(runs["no BN, lr 1e-3 (lesson plan)"])[0], summary(runs["BN, lr 1e-3"])[0]
print(f"In this run ({budget.name} budget, {steps} steps of {budget.batch_size}, data: {mnist.source}):")
print(f"- as the lesson plan wrote it (no BN, lr 1e-3): {said('no BN, lr 1e-3 (lesson plan)')};")
print(f"- with BatchNorm (lr 1e-3): {said('BN, lr 1e-3')};")
print(f"- with a ten times lower learning rate and no BatchNorm: {said('no BN, lr 1e-4')}.")
stuck = plain > LN_10 - 0.1
if stuck and fixed < LN_10 - 0.1:
    print(f"The effect shows: without BatchNorm the loss stayed at ln 10 ({plain:.3f}); with it, it fell "
          f"to {fixed:.3f}.")
elif not stuck:
    print(f"This run does not show the lesson plan's VGG-16 stuck (its loss fell to {plain:.3f}).")
else:
    print(f"This budget is too short to show BatchNorm's fix: its loss is {fixed:.3f}, still near ln 10. "
          "Rerun with DEEPNETS_BUDGET=demo.")
if reference is None:
    print("No full-budget (GPU-sized) run is recorded yet, so none is drawn next to this one.")

# %% [markdown] nbgrader={"grade_id": "takeaways", "locked": true}
# ## Takeaways
#
# * VGG's rule, small 3x3 kernels in repeated blocks, buys a large receptive field with fewer
#   parameters and more non-linearities, and makes depth cheap to add.
# * Depth alone does not guarantee training: compare the spread and gradient tables at
#   initialisation with the training verdicts printed above.
# * BatchNorm after each convolution keeps every layer's output at a steady scale whatever the
#   weights; the table shows what it changed in your run. Kaiming initialisation fixes the
#   scale at the start (its column in the tables); try it: `kaiming_init(VGG16_MNIST())`.
#
# The Day 13 assignment `resnet.ipynb` takes the next step: even with BatchNorm, very deep
# plain networks are hard to train, and residual connections fix that. Its last part asks you
# about this notebook's outputs.
