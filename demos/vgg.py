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

# %% [markdown]
# # Day 13 · VGG: deep networks from small convolutions (instructor demo)
#
# AlexNet (2012) won ImageNet with eight layers whose shapes were chosen one by one: an 11x11
# convolution, then 5x5, then 3x3. VGG (Simonyan & Zisserman, *Very Deep Convolutional
# Networks for Large-Scale Image Recognition*, 2014) replaced that hand design with one rule
# repeated: a **block** of a few 3x3 convolutions with ReLU, then 2x2 max pooling, with the
# number of channels doubling after each pooling. Stacking blocks gave networks of 16 and 19
# layers, twice AlexNet's depth.
#
# This demo builds VGG-16 for MNIST, computes why small kernels pay off, and then trains it
# the way the lesson plan did. It does not learn. We look inside to see why, and test what
# fixes it: **batch normalization**, the first of the day's two ideas. The second, residual
# connections, is this day's assignment (`day13_vgg_resnet/resnet.ipynb`).
#
# **Goals.** After this demo you can
# 1. write a VGG block and assemble VGG-16 whose shapes and parameter count you can explain,
# 2. compute the receptive field and parameter cost of stacked 3x3 convolutions,
# 3. tell "the network is not learning" from "the network is learning slowly" in a training
#    run, and explain with evidence why a deep plain network can fail to learn at all.
#
# **Readings.** D2L [8.2 Networks Using Blocks (VGG)](https://d2l.ai/chapter_convolutional-modern/vgg.html)
# and [8.5 Batch Normalization](https://d2l.ai/chapter_convolutional-modern/batch-norm.html).
#
# **Budgets.** VGG-16 is expensive on a CPU (about 0.35 billion multiply-adds per image, forward
# only). The setup cell picks a budget: `quick` (CI, 20 training steps a run), `demo` (a
# laptop CPU, 60 steps a run, a few minutes in all) or `full` (the lesson plan's setting: 3
# epochs on all 60,000 images, batch 64; for a GPU). Every conclusion below is printed from
# this notebook's own run, so it holds for the budget you ran.

# %%
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnets import count_parameters, evaluate, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.gradients import activation_stds, gradient_norms, plot_gradient_norms
from deepnets.plots import plot_training_curves
from deepnets.shapes import print_shape_table

device = pick_device()
print(f"Device: {device}")

budget = pick_budget(
    quick=dict(train_size=1_280, test_size=300, epochs=1),    # 20 steps of 64 images per run
    demo=dict(train_size=3_840, test_size=1_000, epochs=1),   # 60 steps per run
    full=dict(train_size=None, test_size=None, epochs=3),     # the lesson plan: 3 x 938 steps
)
# VGG-16 halves the image five times (32 -> 16 -> 8 -> 4 -> 2 -> 1), so MNIST's 28x28 digits
# get a 2-pixel border of zeros to make them 32x32.
mnist = load_mnist().subset(budget.train_size, budget.test_size).padded(2)
print(mnist)

# %% [markdown]
# ## 1. The VGG block
#
# A block is `num_convs` 3x3 convolutions, each followed by ReLU, then 2x2 max pooling.
# Padding 1 keeps the height and width through the convolutions; only the pooling halves them.
# The optional `batch_norm` puts a BatchNorm layer between each convolution and its ReLU: we
# will need it in section 5.

# %%
def vgg_block(num_convs, in_channels, out_channels, batch_norm=False):
    """`num_convs` 3x3 convolutions with ReLU (and BatchNorm if asked), then 2x2 max pooling."""
    layers = []
    for _ in range(num_convs):
        # The convolution keeps its bias even with BatchNorm, so that the runs below differ in
        # the BatchNorm layers alone.
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels  # the next convolution reads this one's output
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


print(vgg_block(2, 1, 64))

# %% [markdown]
# ## 2. Why 3x3? Receptive field and parameters, counted from real layers
#
# Two 3x3 convolutions in a row: each output pixel of the second depends on a 3x3 patch of the
# first's output, each of which depends on a 3x3 patch of the input, so the output sees a 5x5
# window of the input, like one 5x5 convolution. Rather than take that on trust, the cell
# below measures it: it backpropagates from one output pixel and reads off which input pixels
# receive a gradient. Parameters are counted from the same layers, for 64 channels in and out.

# %% tags=["nbval-check-output"]
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


def conv_stack(kernel_size, depth, channels=64):
    """`depth` convolutions of `kernel_size`, each with ReLU, keeping the size (no pooling)."""
    return vgg_block(depth, channels, channels)[:-1] if kernel_size == 3 else nn.Sequential(
        nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2), nn.ReLU())


stacks = {"one 3x3": conv_stack(3, 1), "two 3x3": conv_stack(3, 2), "one 5x5": conv_stack(5, 1),
          "three 3x3": conv_stack(3, 3), "one 7x7": conv_stack(7, 1)}
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
    print(f"{small} vs {large}: same receptive field, {saving:.0%} fewer parameters, "
          f"and a ReLU after each convolution instead of one")

# %% [markdown]
# The same window for fewer parameters, and more non-linearities along the way. That trade
# is VGG's design rule: go deeper with small kernels.
#
# ## 3. VGG-16 for 32x32 MNIST
#
# Five blocks (2, 2, 3, 3 and 3 convolutions, 64 to 512 channels) make 13 convolutional
# layers; three linear layers (4096, 4096, 10 units, with dropout) make 16 layers with
# weights. The original was built for 224x224 colour images, where the last block leaves 7x7
# maps; on 32x32 digits it leaves 1x1, so the first linear layer takes 512 inputs.
# `VGG16_MNIST(batch_norm=True)` is the same network with BatchNorm in every block.

# %%
class VGG16_MNIST(nn.Module):
    """VGG-16 for 32x32 MNIST: 13 3x3 convolutions in five blocks, then three linear layers."""

    def __init__(self, num_classes=10, batch_norm=False):
        super().__init__()
        self.features = nn.Sequential(            # (N, 1, 32, 32)
            vgg_block(2, 1, 64, batch_norm),      # (N, 64, 16, 16)
            vgg_block(2, 64, 128, batch_norm),    # (N, 128, 8, 8)
            vgg_block(3, 128, 256, batch_norm),   # (N, 256, 4, 4)
            vgg_block(3, 256, 512, batch_norm),   # (N, 512, 2, 2)
            vgg_block(3, 512, 512, batch_norm),   # (N, 512, 1, 1)
        )
        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))   # (N, num_classes)


vgg = VGG16_MNIST()
print(vgg)

# %% tags=["nbval-check-output"]
weighted = [m for m in vgg.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
print(f"Layers with weights: {sum(isinstance(m, nn.Conv2d) for m in weighted)} convolutional + "
      f"{sum(isinstance(m, nn.Linear) for m in weighted)} linear = {len(weighted)}")
print(f"Parameters: {count_parameters(vgg):,} in all; {count_parameters(vgg.features):,} in the "
      f"convolutions, {count_parameters(vgg.classifier):,} ({count_parameters(vgg.classifier) / count_parameters(vgg):.0%}) "
      f"in the three linear layers")
print(f"With BatchNorm: {count_parameters(VGG16_MNIST(batch_norm=True)):,} "
      "(each BatchNorm adds a scale and a shift per channel)")

# %% [markdown]
# The shape after each block, traced by running one image through the network (the rows are
# recorded by the layers themselves as they run):

# %% tags=["nbval-check-output"]
print_shape_table(vgg, torch.zeros(1, 1, 32, 32), depth=2)

# %% [markdown]
# Most of the parameters sit in the first two linear layers, yet most of the computation is
# in the convolutions, which run at every pixel position.
#
# ## 4. Training VGG-16 as the lesson plan wrote it
#
# Adam with learning rate 0.001, batch size 64, cross-entropy: the lesson plan's recipe. We
# judge whether a network **learns** by its training loss. A network that has learned nothing
# assigns probability 1/10 to each digit, a loss of ln 10 = 2.303; a falling loss is learning.
# The test accuracy is printed too; always guessing the most common digit would score the
# "chance" printed below.

# %%
LN_10 = math.log(10)
chance = 100 * mnist.test_labels.bincount().max().item() / len(mnist.test_labels)


def summary(history):
    """Training loss and accuracy averaged over the last tenth of the steps, and test accuracy."""
    last = max(5, len(history.step_loss) // 10)
    loss = sum(history.step_loss[-last:]) / last
    accuracy = sum(history.step_accuracy[-last:]) / last
    return loss, accuracy, history.final_test_accuracy


def verdict(loss):
    """What a training loss says about learning, next to ln 10 (a uniform guess)."""
    if loss > LN_10 + 0.05:
        return "worse than a uniform guess (loss above ln 10): its steps overshoot"
    if loss > LN_10 - 0.1:
        return "not learning (yet): the loss is still about ln 10, that of a uniform guess"
    if loss > 1.5:
        return "learning, slowly"
    return "learning"


def train_vgg(name, batch_norm, lr):
    """Train a fresh VGG-16 (same seed, data order, batch size); return the model if BN, and the history."""
    # Only the BatchNorm models are needed later; each VGG-16 holds 134 MB of weights.
    set_seed(0)  # BatchNorm draws no random numbers, so all four runs start from the same weights
    model = VGG16_MNIST(batch_norm=batch_norm)
    history = fit(model, mnist, epochs=budget.epochs, batch_size=64, lr=lr, seed=0,
                  device=device, name=name)
    loss, accuracy, test_accuracy = summary(history)
    print(f"{name}: training loss {loss:.3f} and training accuracy {accuracy:.1f}% over the last "
          f"steps; test accuracy {test_accuracy:.1f}% (chance {chance:.1f}%) -> {verdict(loss)}")
    return (model if batch_norm else None), history


runs = {}
models = {}
name = "no BN, lr 1e-3 (lesson plan)"
models[name], runs[name] = train_vgg(name, batch_norm=False, lr=1e-3)

# %% [markdown]
# Read the verdict above. Before trying fixes, we look inside the network.
#
# ## 5. Why: the signal dies on the way in, and the gradient on the way back
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

# %%
def kaiming_init(model):
    """He et al. (2015) initialisation for ReLU networks: weight variance 2 / fan-in, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


def by_depth(values):
    """Rename {module name: value} to conv1 .. conv13, fc1 .. fc3, so that variants line up."""
    counts, renamed = {"conv": 0, "fc": 0}, {}
    for name, value in values.items():
        kind = "fc" if name.startswith("classifier") else "conv"
        counts[kind] += 1
        renamed[f"{kind}{counts[kind]}"] = value
    return renamed


fresh = {}
for name, make in [("default init", lambda: VGG16_MNIST()),
                   ("Kaiming init", lambda: kaiming_init(VGG16_MNIST())),
                   ("default + BN", lambda: VGG16_MNIST(batch_norm=True))]:
    set_seed(0)
    fresh[name] = make()
images, labels = mnist.train_images[:64], mnist.train_labels[:64]
spreads = {name: by_depth(activation_stds(model, images)) for name, model in fresh.items()}
norms = {name: by_depth(gradient_norms(model, images, labels)) for name, model in fresh.items()}

for title, table, layers in [("spread", spreads, list(spreads["default init"])),
                             ("gradient norm", norms, ["conv1", "conv7", "conv13", "fc3"])]:
    print(f"{title:<14}" + "".join(f"{name:>15}" for name in fresh))
    for layer in layers:
        print(f"{layer:<14}" + "".join(f"{table[name][layer]:>15.1e}" for name in fresh))
    print()
with torch.no_grad():
    logits = fresh["default init"].eval()(images[:3])
print("Default init, logits of three different digits:\n", logits.numpy().round(4))
del fresh  # three VGG-16s are 0.4 GB; the measurements are all we need

# %%
plot_gradient_norms(norms, title="VGG-16 at initialisation: gradient norm per layer (one batch)");

# %%
first, last = spreads["default init"]["conv1"], spreads["default init"]["fc3"]
shrink = (last / first) ** (1 / (len(spreads["default init"]) - 1))
ratio = {name: layer_norms["conv1"] / layer_norms["fc3"] for name, layer_norms in norms.items()}
print(f"Default init: the spread shrinks by a factor of about {1 / shrink:.1f} per layer, "
      f"from {first:.1e} after conv1 to {last:.1e} at the logits.")
for name, value in ratio.items():
    print(f"{name}: the first layer's gradient is {value:.1e} times the last layer's.")

# %% [markdown]
# What the numbers say. With the default initialisation, each layer passes on a weaker
# version of the differences between images than it received (the first line above gives the
# factor), so after 16 layers the network gives every digit practically the same logits: it
# cannot tell them apart. The gradient tells the same story backwards: the first convolution's
# gradient is orders of magnitude below the last layer's (the ratios above, and the plot), a
# **vanishing gradient**. A network that gives every digit the same logits can at best
# learn which digit is most frequent: compare section 4's test accuracy with chance.
#
# Kaiming initialisation and BatchNorm both keep the spread and the gradients within a
# moderate range at every depth (read their columns). They get there differently: Kaiming
# chooses the initial weights so that the scale is right at the start; BatchNorm rescales
# every layer's output to zero mean and unit variance over the batch at every step, whatever
# the weights become.
#
# ## 6. The fix: BatchNorm after every convolution
#
# Same network, same initial weights, same data order and recipe, with a BatchNorm layer after
# each of the 13 convolutions.

# %%
name = "BN, lr 1e-3"
models[name], runs[name] = train_vgg(name, batch_norm=True, lr=1e-3)

# %% [markdown]
# ## 7. A contrast: a lower learning rate
#
# Is the learning rate to blame? Adam moves every weight by up to about `lr` per step
# whatever the size of its gradient, so even a vanishing gradient produces steps of full size
# in directions that carry no information about the digits. We rerun both networks with a ten
# times smaller learning rate: a 2x2 comparison, one change at a time.

# %%
name = "no BN, lr 1e-4"
models[name], runs[name] = train_vgg(name, batch_norm=False, lr=1e-4)
name = "BN, lr 1e-4"
models[name], runs[name] = train_vgg(name, batch_norm=True, lr=1e-4)

# %% [markdown]
# ## 8. Four runs side by side

# %%
print(f"{'run':<30} {'training loss':>13} {'training accuracy':>18} {'test accuracy':>14} {'seconds':>8}  verdict")
for name, history in runs.items():
    loss, accuracy, test_accuracy = summary(history)
    print(f"{name:<30} {loss:>13.3f} {accuracy:>17.1f}% {test_accuracy:>13.1f}% "
          f"{history.seconds:>8.0f}  {verdict(loss)}")
print(f"(training loss and accuracy: mean over the last tenth of the steps; ln 10 = {LN_10:.3f}; "
      f"chance = {chance:.1f}%)")
plot_training_curves(runs, title=f"VGG-16 on MNIST, {budget.name} budget", train_accuracy=True);

# %% [markdown]
# What this run shows, one change at a time (computed from the table above, so it holds for
# the budget you ran):

# %%
def said(name):
    """The verdict on one run, from its training loss."""
    return verdict(summary(runs[name])[0])


peak = max(runs["BN, lr 1e-3"].step_loss[:20])
print(f"- As the lesson plan wrote it (no BN, lr 1e-3): {said('no BN, lr 1e-3 (lesson plan)')}.")
print(f"- BatchNorm alone (lr 1e-3): {said('BN, lr 1e-3')}; its loss peaked at {peak:.2f} "
      f"in the first 20 steps (ln 10 = {LN_10:.2f}).")
print(f"- A lower learning rate alone (no BN, lr 1e-4): {said('no BN, lr 1e-4')}.")
print(f"- BatchNorm and lr 1e-4: {said('BN, lr 1e-4')}, with "
      f"{summary(runs['BN, lr 1e-4'])[1]:.0f}% training accuracy over its last steps.")

# %% [markdown]
# How to read it. Without BatchNorm the question is whether the loss ever leaves ln 10; with
# the lesson plan's long budget a lower rate may eventually escape, and the lines above say
# whether it did in yours. With BatchNorm the network becomes trainable, but the learning
# rate still matters: Adam's first steps at 1e-3 are large for the freshly initialised
# weights (compare the peak loss above with ln 10, and the start of the curves), so in a short
# budget BatchNorm at 1e-3 looks slow next to BatchNorm at 1e-4.
#
# **Why can a BatchNorm network's test accuracy trail its training accuracy in a short run?**
# In training mode BatchNorm normalises with the statistics of the current batch; in
# evaluation mode (test accuracy) it uses running averages of those statistics, updated a
# little at every step. When the weights have changed a lot in a few dozen steps, the
# averages lag behind. The cell below recomputes them from 10 training batches, without
# changing any weight, and measures the test accuracy again.

# %%
@torch.no_grad()
def refresh_batchnorm_statistics(model, data, batches=10, batch_size=64):
    """Recompute every BatchNorm's running mean and variance from training batches; weights unchanged."""
    model.to(device).train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    for start in range(0, batches * batch_size, batch_size):
        model(data.train_images[start:start + batch_size].to(device))
    return model


for name in ("BN, lr 1e-3", "BN, lr 1e-4"):
    before = runs[name].final_test_accuracy
    after = evaluate(refresh_batchnorm_statistics(models[name], mnist), mnist.test_images, mnist.test_labels)
    print(f"{name}: test accuracy {before:.1f}% with the running averages from training, "
          f"{after:.1f}% with freshly computed ones")

# %% [markdown]
# If the second number is much higher, the trailing test accuracy was BatchNorm's running
# averages lagging behind, not a failure to learn. After a full training run the two agree.
#
# ## Takeaways
#
# * VGG's rule, small 3x3 kernels in repeated blocks, buys a large receptive field with
#   fewer parameters and more non-linearities, and makes depth cheap to add.
# * Depth alone does not train. With PyTorch's default initialisation, VGG-16's signal fades
#   layer by layer and its gradients vanish on the way back (section 5); trained as the lesson
#   plan did, it gets stuck (section 4's verdict).
# * BatchNorm after each convolution keeps every layer's output at a steady scale, and the
#   same network becomes trainable; the learning rate still sets the pace (section 8).
#   Kaiming initialisation fixes the scale at the start too (section 5); try it: wrap the
#   model in `train_vgg` with `kaiming_init(...)`.
#
# The assignment `resnet.ipynb` takes the next step: even with BatchNorm, very deep plain
# networks are hard to train, and residual connections fix that. Its last part asks you to
# compare VGG's design with AlexNet's, and how you would choose a network's depth.
