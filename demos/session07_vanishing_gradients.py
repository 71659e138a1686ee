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
# # Session 7 demo · Vanishing gradients, batch normalization and residual connections
#
# *Instructor notebook, 20 minutes live. The plan for the whole hour is in
# `session07_overview.ipynb`.*
#
# **The question for the class:** *why don't we just make CNNs 100 layers deep?*
#
# 1. The lesson plan's comparison: a 6-layer plain CNN against a residual CNN.
# 2. Gradient norms layer by layer, at initialisation: plain and residual stacks, with and
#    without batch normalization, ReLU and sigmoid, at three depths.
# 3. Training loss against depth: do deeper networks train better or worse?
# 4. Gradient norms after training, and the same tool on any model.
#
# Every statement printed under a result is computed from this run's numbers. The notebook
# prints its budget: `demo` on a CPU (a few minutes on a laptop), `full` on a CUDA GPU (the
# lesson plan's settings), `quick` in CI. Set `DEEPNETS_BUDGET` to choose.

# %%
# deepnets first: it tunes PyTorch's CPU threads for a shared machine before torch loads.
from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.data import SAMPLE_SOURCE
from deepnets.evidence import LEARNED_ABOVE, correct_answers, paired_comparison, remember
from deepnets.gradients import gradient_norms, plot_gradient_norms
from deepnets.live import LiveCurves
from deepnets.plots import plot_training_curves

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

device = pick_device()
print(f"Device: {device}")
budget = pick_budget(
    # Section 1: images and epochs of the lesson plan's two models. Sections 2-4: the depths
    # compared, images for a gradient measurement. Section 3, for the runs without BatchNorm
    # (stuck_*) and the runs with it at two depths (deep_*): the images each run sees (None: all
    # of MNIST for stack_epochs epochs; otherwise as many passes over the training set as that
    # takes, since the offline sample has only 4,000), batch size and Adam's learning rate.
    quick=dict(seed_train=1_000, seed_epochs=1, test_size=500, depths=(6, 20, 56), grad_images=32,
               stuck_images=640, stuck_batch=32, stuck_lr=3e-3, deep_images=640, deep_batch=64, deep_lr=1e-3,
               stack_epochs=1, trained_depths=(6, 20)),
    demo=dict(seed_train=4_000, seed_epochs=1, test_size=1_000, depths=(6, 20, 56), grad_images=128,
              stuck_images=4_000, stuck_batch=32, stuck_lr=3e-3, deep_images=8_192, deep_batch=64, deep_lr=1e-3,
              stack_epochs=1, trained_depths=(20, 56)),
    full=dict(seed_train=None, seed_epochs=5, test_size=None, depths=(6, 20, 56), grad_images=512,
              stuck_images=None, stuck_batch=128, stuck_lr=1e-3, deep_images=None, deep_batch=128, deep_lr=1e-3,
              stack_epochs=2, trained_depths=(20, 56)),
)
mnist = load_mnist()
CHANCE = math.log(10)  # the cross-entropy of guessing: probability 1/10 for every digit

# %% [markdown]
# ## 1. The lesson plan's demo: a 6-layer plain CNN against a residual CNN
#
# Six 3×3 convolutions with ReLU and no batch normalization, against the residual CNN the
# students are about to build, both exactly as the lesson plan writes them. Both train with
# Adam at 0.001 on the same images in the same order.
#
# *Ask: will the 6-layer plain network suffer from vanishing gradients?*

# %%
class DeepCNN(nn.Module):
    """The lesson plan's plain CNN: `depth` conv-ReLU layers of 32 channels, one pooling, a linear layer."""

    def __init__(self, depth=6):
        super().__init__()
        layers, in_channels = [], 1
        for _ in range(depth):
            layers += [nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU()]
            in_channels = 32
        self.conv = nn.Sequential(*layers)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):                        # (N, 1, 28, 28)
        x = self.pool(self.conv(x))              # (N, 32, 14, 14)
        return self.fc(x.view(x.size(0), -1))    # (N, 10)


class ResidualBlock(nn.Module):
    """The lesson plan's block: ReLU(BN(conv(ReLU(BN(conv(x))))) + x)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class ResidualCNN(nn.Module):
    """The lesson plan's residual CNN: conv-BN-ReLU, a block, pooling, a block, a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.res1 = ResidualBlock(32)
        self.pool = nn.MaxPool2d(2, 2)
        self.res2 = ResidualBlock(32)
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):                        # (N, 1, 28, 28)
        x = F.relu(self.bn1(self.conv1(x)))      # (N, 32, 28, 28)
        x = self.pool(self.res1(x))              # (N, 32, 14, 14)
        x = self.res2(x)                         # (N, 32, 14, 14)
        return self.fc(x.view(x.size(0), -1))    # (N, 10)


# %%
seed_data = mnist.subset(budget.seed_train, budget.test_size)
seed_models, seed_histories = {}, {}
with LiveCurves(title="The lesson plan's comparison") as live:
    for name, make in [("DeepCNN(6)", lambda: DeepCNN(6)), ("ResidualCNN", ResidualCNN)]:
        set_seed(0)
        seed_models[name] = make()
        seed_histories[name] = fit(seed_models[name], seed_data, epochs=budget.seed_epochs, seed=0,
                                   device=device, name=name, on_step=live.track(name))

# %% [markdown]
# Both models answered the same test images, so they are compared image by image (a paired
# test: on how many images do they disagree, and which one is right there?). ResidualCNN has
# BatchNorm, whose running statistics can lag behind its weights after a short run, so the
# table shows its accuracy in eval mode (running statistics, what the verdict uses) and in
# train mode (each test batch's own statistics).

# %%
test_images, test_labels = seed_data.test_images, seed_data.test_labels
# Each model answers the test images once per mode; the table and both verdicts read these answers.
answers = {(name, train_mode): correct_answers(model, test_images, test_labels, train_mode=train_mode)
           for name, model in seed_models.items() for train_mode in (False, True)}
print(f"{'model':<12} {'parameters':>10} {'test acc (eval)':>16} {'(train mode)':>13} {'last epoch loss':>16}")
for name, history in seed_histories.items():
    train_mode = 100 * answers[name, True].float().mean()
    print(f"{name:<12} {count_parameters(seed_models[name]):>10,} {history.final_test_accuracy:>15.1f}% "
          f"{train_mode:>12.1f}% {history.epoch_loss[-1]:>16.3f}")
plain_accuracy = seed_histories["DeepCNN(6)"].final_test_accuracy
if plain_accuracy > LEARNED_ABOVE:
    print(f"\nThe 6-layer plain CNN learns ({plain_accuracy:.1f}% where guessing gets 10%): with ReLU "
          "and Adam, six layers are not deep enough for vanishing gradients to stop training.")
else:
    print(f"\nThe 6-layer plain CNN reached only {plain_accuracy:.1f}% in the '{budget.name}' budget, "
          "too little training to tell.")
seed_comparison = paired_comparison(*(answers[name, False] for name in seed_models), tuple(seed_models))
print(f"\nIn eval mode (the verdict), after {len(seed_data.train_labels):,} training images x "
      f"{budget.seed_epochs} epoch(s), seed 0:")
print(seed_comparison.verdict())
train_mode_comparison = paired_comparison(*(answers[name, True] for name in seed_models), tuple(seed_models))
if train_mode_comparison.significant != seed_comparison.significant or (
        train_mode_comparison.difference > 0) != (seed_comparison.difference > 0):
    print(f"\nIn train mode (batch statistics) the paired difference is {train_mode_comparison.difference:+.2f} "
          f"points (p = {train_mode_comparison.p_value:.2g}): the two modes disagree, so after this short run "
          "ResidualCNN's running statistics lag behind its weights, and the eval-mode verdict says as much "
          "about them as about the architectures.")

# %% [markdown]
# ## 2. Gradient norms layer by layer, at initialisation
#
# To see the problem we need deeper networks and a look inside. Below, one family of
# networks in which depth, skip connections, batch normalization and the activation can each
# be switched on and off alone:
#
# * a **stem** convolution (1 → 16 channels, stride 2: 28×28 → 14×14),
# * `(depth - 2) / 2` **blocks** of two 3×3 convolutions (16 channels), each convolution
#   preceded by the activation and, optionally, batch normalization; with `skip=True` a block
#   returns `x + F(x)`, without it just `F(x)`. These are *pre-activation* blocks (He et al.
#   2016, "Identity Mappings in Deep Residual Networks"): nothing comes after the addition, so
#   the skip path is exactly the identity and carries the gradient back unchanged. (The lesson
#   plan's block, like the exercise's, ends with a ReLU after the addition, which blocks that
#   path wherever the sum is negative.)
# * global average pooling and a **linear** layer to 10 classes.
#
# `depth` counts the weighted layers, as the ResNet paper does (its "plain-20" and "ResNet-56").
# A plain stack and its residual twin have exactly the same layers and parameters.

# %%
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def conv_unit(width, batchnorm, activation):
    """[BatchNorm →] activation → 3x3 convolution."""
    norm = [nn.BatchNorm2d(width)] if batchnorm else []
    return nn.Sequential(*norm, ACTIVATIONS[activation](),
                         nn.Conv2d(width, width, 3, padding=1, bias=not batchnorm))


class Block(nn.Module):
    """Two conv units F; returns x + F(x) with the skip connection, F(x) without it."""

    def __init__(self, width, skip, batchnorm, activation):
        super().__init__()
        self.skip = skip
        self.branch = nn.Sequential(conv_unit(width, batchnorm, activation),
                                    conv_unit(width, batchnorm, activation))

    def forward(self, x):                        # (N, width, 14, 14) in and out
        out = self.branch(x)
        return x + out if self.skip else out


class ConvStack(nn.Module):
    """A stem, (depth - 2) / 2 blocks, global average pooling and a linear classifier."""

    def __init__(self, depth, *, skip, batchnorm, activation="relu", width=16):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[Block(width, skip, batchnorm, activation)
                                      for _ in range((depth - 2) // 2)])
        norm = [nn.BatchNorm2d(width)] if batchnorm else []
        self.head = nn.Sequential(*norm, ACTIVATIONS[activation](), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(width, 10))

    def forward(self, x):                        # (N, 1, 28, 28)
        x = self.stem(x)                         # (N, width, 14, 14)
        x = self.blocks(x)                       # (N, width, 14, 14)
        return self.head(x)                      # (N, 10)


VARIANTS = {  # name: (skip, batchnorm)
    "plain": (False, False),
    "plain + BatchNorm": (False, True),
    "residual": (True, False),
    "residual + BatchNorm": (True, True),
}
for depth in budget.depths:
    model = ConvStack(depth, skip=True, batchnorm=True)
    weighted = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    print(f"depth {depth}: {weighted} weighted layers, {count_parameters(model):,} parameters")

# %% [markdown]
# `gradient_norms(model, images, labels)` runs one batch forwards and backwards and returns,
# for every convolution and linear layer from input to output, the size (L2 norm) of the
# gradient of the loss with respect to its weights: how strongly that layer would be told to
# change. A gradient of exactly zero is drawn at the bottom of the axis.
#
# *Ask: where in the network will the gradient be smallest, and which switch will matter?*

# %%
images, labels = mnist.train_images[:budget.grad_images], mnist.train_labels[:budget.grad_images]
init_norms = {}  # (activation, variant, depth) -> {layer: gradient norm}
for activation in ACTIVATIONS:
    for variant, (skip, batchnorm) in VARIANTS.items():
        for depth in budget.depths:
            set_seed(0)
            model = ConvStack(depth, skip=skip, batchnorm=batchnorm, activation=activation).to(device)
            init_norms[activation, variant, depth] = gradient_norms(model, images, labels)

figure, axes = plt.subplots(2, 4, figsize=(17, 7), sharey=True)
for row, activation in zip(axes, ACTIVATIONS):
    for axis, variant in zip(row, VARIANTS):
        for depth in budget.depths:
            norms = list(init_norms[activation, variant, depth].values())
            axis.plot([max(value, 1e-30) for value in norms], marker=".", label=f"depth {depth}")
        axis.set(yscale="log", title=f"{activation}, {variant}", xlabel="layer (input → output)")
        axis.grid(alpha=0.3, which="both")
    row[0].set_ylabel("‖∂loss/∂weight‖ at initialisation")
axes[0, 0].legend()
axes[0, 0].set_ylim(1e-31, 1e3)
figure.suptitle("Gradient norm per layer at initialisation (log scale; 1e-30 stands for exactly 0)")
figure.tight_layout()
plt.show()

# %%
def first_layer(norms):
    """The gradient norm of the stem, the layer farthest from the loss."""
    return next(iter(norms.values()))


print("Gradient norm of the first layer (the stem) at initialisation:")
print(f"{'activation, variant':<32}" + "".join(f"{'depth ' + str(d):>12}" for d in budget.depths))
for activation in ACTIVATIONS:
    for variant in VARIANTS:
        print(f"{activation + ', ' + variant:<32}" + "".join(
            f"{first_layer(init_norms[activation, variant, d]):>12.1e}" for d in budget.depths))

def times(ratio):
    """'40 times', or '3e+08 times' for a ratio too large to read as digits."""
    return f"{ratio:,.0f} times" if ratio < 10_000 else f"{ratio:.0e} times"


deepest, shallowest = max(budget.depths), min(budget.depths)
print()
for activation in ACTIVATIONS:
    for variant in VARIANTS:
        deep = first_layer(init_norms[activation, variant, deepest])
        shallow = first_layer(init_norms[activation, variant, shallowest])
        if deep == 0:
            change = "is exactly 0"
        elif deep < shallow / 10:
            change = f"is {times(shallow / deep)} smaller than at depth {shallowest}"
        elif deep > shallow * 10:
            change = f"is {times(deep / shallow)} larger than at depth {shallowest}"
        else:
            change = f"is within a factor of 10 of depth {shallowest}'s ({deep:.1e} against {shallow:.1e})"
        print(f"{activation}, {variant}: at depth {deepest} the first layer's gradient {change}.")

# %% [markdown]
# ## 3. Training loss against depth
#
# A small gradient is a symptom; what matters is whether the network learns. First the
# deepest ReLU stacks without batch normalization: the plain one against its residual twin.
#
# *Ask: which of the two will learn anything at all?*

# %%
def training_set(images):
    """(data, epochs) in which a run sees at least `images` training images (None: the budget's
    epochs over all of them). The offline sample has 4,000, so a run may pass over it twice."""
    if images is None:
        return mnist.subset(None, budget.test_size), budget.stack_epochs
    passes = math.ceil(images / len(mnist.train_labels))
    data = mnist.subset(math.ceil(images / passes), budget.test_size)
    assert len(data.train_labels) * passes >= images, "a run would see fewer images than its budget"
    return data, passes


deepest = max(budget.depths)
stuck_runs = {
    f"plain ReLU, depth {deepest}": dict(depth=deepest, skip=False, batchnorm=False, activation="relu"),
    f"residual ReLU, depth {deepest}": dict(depth=deepest, skip=True, batchnorm=False, activation="relu"),
}
stack_settings, stack_models, stack_histories = {}, {}, {}
stuck_data, stuck_epochs = training_set(budget.stuck_images)
print(f"Each run: {len(stuck_data.train_labels):,} images x {stuck_epochs} pass(es), batch {budget.stuck_batch}, "
      f"Adam at {budget.stuck_lr:g}, seed 0")
with LiveCurves(panels=[f"Training loss without BatchNorm, depth {deepest}"]) as live:
    for name, settings in stuck_runs.items():
        set_seed(0)
        stack_settings[name] = settings
        stack_models[name] = ConvStack(**settings)
        stack_histories[name] = fit(stack_models[name], stuck_data, epochs=stuck_epochs, lr=budget.stuck_lr,
                                    batch_size=budget.stuck_batch, seed=0, device=device, name=name,
                                    on_step=live.track(name))


# %%
def final_loss(history, steps=20):
    """Mean training loss over the last `steps` steps."""
    return sum(history.step_loss[-steps:]) / len(history.step_loss[-steps:])


def at_chance(history):
    """The last steps' training loss is within 0.05 of guessing (ln 10)."""
    return final_loss(history) > CHANCE - 0.05


for name in stuck_runs:
    history = stack_histories[name]
    verdict = "no better than chance" if at_chance(history) else "learning"
    print(f"{name:<32} final training loss {final_loss(history):.3f} ({verdict}; chance is {CHANCE:.3f}), "
          f"test accuracy {history.final_test_accuracy:.1f}%")
plain_name, residual_name = stuck_runs
stuck_shown = at_chance(stack_histories[plain_name]) and not at_chance(stack_histories[residual_name])
if stuck_shown:
    print(f"\nShown in this run: at depth {deepest} without BatchNorm the plain stack stays at chance "
          "while its residual twin, with the same layers and parameters, learns.")
else:
    print(f"\nThe '{budget.name}' budget on this data does not show the plain stack stuck while the "
          "residual one learns (see the verdicts above); the recorded full-budget run, if there is one, "
          "is shown after the next experiment.")

# %% [markdown]
# Now with batch normalization in every stack, so that each layer's input keeps a steady
# scale. This is the experiment of the ResNet paper's first figure: the same plain design at
# two depths, and the residual twins. If extra layers could only help, the deeper network
# would reach a training loss at least as low as the shallower one (it could copy the shallow
# one and make the extra blocks pass their input on).
#
# *Ask: will the deeper plain network train better or worse? Is a higher training loss
# overfitting?*

# %%
deep_data, deep_epochs = training_set(budget.deep_images)
print(f"Each run: {len(deep_data.train_labels):,} images x {deep_epochs} pass(es), batch {budget.deep_batch}, "
      f"Adam at {budget.deep_lr:g}, seed 0")
with LiveCurves(panels=["plain + BatchNorm", "residual + BatchNorm"],
                title="Training loss against depth, with batch normalization") as live:
    for variant in ("plain + BatchNorm", "residual + BatchNorm"):
        skip, batchnorm = VARIANTS[variant]
        for depth in budget.trained_depths:
            name = f"{variant}, depth {depth}"
            set_seed(0)
            stack_settings[name] = dict(depth=depth, skip=skip, batchnorm=batchnorm)
            stack_models[name] = ConvStack(**stack_settings[name])
            stack_histories[name] = fit(stack_models[name], deep_data, epochs=deep_epochs, lr=budget.deep_lr,
                                        batch_size=budget.deep_batch, seed=0, device=device, name=name,
                                        on_step=live.track(f"depth {depth}", panel=variant))

# %%
def depth_verdict(histories, variant, depths=budget.trained_depths):
    """'higher', 'lower' or 'level': the deeper stack's final training loss against the shallower one's."""
    shallow, deep = (final_loss(histories[f"{variant}, depth {d}"]) for d in (min(depths), max(depths)))
    return "higher" if deep > 1.1 * shallow else "lower" if deep < shallow / 1.1 else "level"


shallow, deep = min(budget.trained_depths), max(budget.trained_depths)
verdict_words = {"higher": "the deeper one ends higher", "lower": "the deeper one ends lower",
                 "level": "the two end within 10% of each other"}
for variant in ("plain + BatchNorm", "residual + BatchNorm"):
    losses = {d: final_loss(stack_histories[f"{variant}, depth {d}"]) for d in (shallow, deep)}
    accuracies = {d: stack_histories[f"{variant}, depth {d}"].final_test_accuracy for d in (shallow, deep)}
    print(f"{variant}: final training loss {losses[shallow]:.3f} at depth {shallow}, "
          f"{losses[deep]:.3f} at depth {deep}, so {verdict_words[depth_verdict(stack_histories, variant)]}; "
          f"test accuracy {accuracies[shallow]:.1f}% and {accuracies[deep]:.1f}%.")
degradation_shown = (depth_verdict(stack_histories, "plain + BatchNorm") == "higher"
                     and depth_verdict(stack_histories, "residual + BatchNorm") == "lower")
if degradation_shown:
    print(f"\nShown in this run: with BatchNorm, going from depth {shallow} to {deep} made the plain stack's "
          "training loss worse and the residual stack's better (the ResNet paper's Figure 1).")
else:
    print(f"\nThe '{budget.name}' budget on this data does not show the full pattern (deeper plain higher, "
          "deeper residual lower); see the verdicts above" +
          (", and the recorded full-budget run below, if any." if budget.name != "full" else "."))

# %% [markdown]
# The same experiments at the full budget (all of MNIST, 2 epochs), when a run has been
# recorded (`tools/record_reference.py`), next to this run's numbers.

# %%
reference = remember("session07_vanishing_gradients.depth", budget, models=stack_models,
                     histories=stack_histories, data_source=mnist.source,
                     results={"final_loss": {name: final_loss(h) for name, h in stack_histories.items()}})
if reference is not None and budget.name != "full":
    recorded = reference.results["final_loss"]
    print(f"\n{'run':<36} {'this run':>9} {'recorded':>9}   (final training loss; - : not run)")
    for name in dict.fromkeys([*stack_histories, *recorded]):
        here = f"{final_loss(stack_histories[name]):.3f}" if name in stack_histories else "-"
        there = f"{recorded[name]:.3f}" if name in recorded else "-"
        print(f"{name:<36} {here:>9} {there:>9}")
    recorded_depths = reference.provenance["settings"]["trained_depths"]
    recorded_epochs = reference.provenance["settings"]["stack_epochs"]
    stuck = {name: at_chance(reference.histories[name]) for name in (plain_name, residual_name)}
    print(f"\nIn the recorded run, at depth {deepest} without BatchNorm, the plain stack is "
          f"{'at chance' if stuck[plain_name] else 'learning'} and the residual stack "
          f"{'at chance' if stuck[residual_name] else 'learning'}; with BatchNorm, from depth "
          f"{min(recorded_depths)} to {max(recorded_depths)}, "
          f"{verdict_words[depth_verdict(reference.histories, 'plain + BatchNorm', recorded_depths)]} for the "
          f"plain stack and {verdict_words[depth_verdict(reference.histories, 'residual + BatchNorm', recorded_depths)]} "
          f"for the residual one.")
    recorded_on = "the offline sample" if reference.provenance["data"] == SAMPLE_SOURCE else "all of MNIST"
    plot_training_curves(reference.histories, title=f"Recorded full-budget run ({recorded_on}, {recorded_epochs} "
                         f"epochs a run; {reference.provenance['device']}, {reference.provenance['date']})");

# %% [markdown]
# ## 4. Gradient norms after training
#
# The same measurement on the trained networks (solid) next to the same networks at
# initialisation (dotted).

# %%
figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), sharey=True)
panels = {axes[0]: list(stuck_runs), axes[1]: [n for n in stack_histories if "BatchNorm" in n]}
trained_norms = {}
for axis, names in panels.items():
    for name in names:
        trained_norms[name] = gradient_norms(stack_models[name], images, labels)
        line, = axis.plot([max(v, 1e-30) for v in trained_norms[name].values()], label=name)
        set_seed(0)  # the same initial weights as the trained model had
        untrained = ConvStack(**stack_settings[name]).to(device)
        axis.plot([max(v, 1e-30) for v in gradient_norms(untrained, images, labels).values()],
                  linestyle=":", color=line.get_color())
    axis.set(yscale="log", xlabel="layer (input → output)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
axes[0].set(title="without BatchNorm", ylabel="‖∂loss/∂weight‖ (dotted: at initialisation)")
axes[1].set_title("with BatchNorm")
figure.suptitle("Gradient norm per layer after training")
figure.tight_layout()
plt.show()

for name, norms in trained_norms.items():
    print(f"{name:<36} first layer {first_layer(norms):.1e}, last layer {list(norms.values())[-1]:.1e}")

# %% [markdown]
# ## Your turn: gradient norms of any model
#
# `gradient_norms` works on any PyTorch model that maps a batch of images to class scores,
# and `plot_gradient_norms` draws one line per model. Here, the two models of section 1, as
# trained there; try your own `ResidualCNN` from the exercise, or a deeper `DeepCNN`.

# %%
figure, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
for axis, (name, model) in zip(axes, seed_models.items()):
    plot_gradient_norms({name: gradient_norms(model, images, labels)}, axis=axis,
                        title=f"{name} after training", label_every=1)
plt.show()

# %% [markdown]
# ## Wrap-up
#
# What this run measured, section by section:

# %%
print(f"1. The lesson plan's 6-layer plain ReLU CNN: {plain_accuracy:.1f}% test accuracy "
      f"(ResidualCNN: {seed_histories['ResidualCNN'].final_test_accuracy:.1f}%); paired test: "
      + (f"ResidualCNN - DeepCNN(6) = {seed_comparison.difference:+.1f} points, p = {seed_comparison.p_value:.2g}"
         + (", more than test-set noise." if seed_comparison.significant else ", not distinguishable at this budget.")))
print(f"2. First layer's gradient at initialisation, depth {shallowest} → depth {deepest}:")
for activation in ACTIVATIONS:
    for variant in VARIANTS:
        print(f"     {activation + ', ' + variant:<30} "
              f"{first_layer(init_norms[activation, variant, shallowest]):.1e} → "
              f"{first_layer(init_norms[activation, variant, deepest]):.1e}")
print(f"3. Final training loss without BatchNorm (chance is {CHANCE:.3f}):")
for name in stuck_runs:
    print(f"     {name:<30} {final_loss(stack_histories[name]):.3f}")
print("   and with BatchNorm:")
for variant in ("plain + BatchNorm", "residual + BatchNorm"):
    print(f"     {variant:<30} " + ", ".join(
        f"depth {d}: {final_loss(stack_histories[f'{variant}, depth {d}']):.3f}" for d in budget.trained_depths))
print(f"   Plain stuck while residual learns: {'shown' if stuck_shown else 'not shown'}; "
      f"degradation (deeper plain worse, deeper residual better): {'shown' if degradation_shown else 'not shown'} "
      f"in the '{budget.name}' budget on {mnist.source}.")

# %% [markdown]
# Key insights. Each is what the literature reports; the lines printed above say which of
# them this run showed.
#
# * **Vanishing gradients**: the gradient is multiplied by one factor per layer on its way
#   back, so in a deep plain network the early layers can get almost nothing to learn from
#   (look at section 2's first-layer gradients), and such a network can stay at chance (section
#   3). Sigmoid's slope is at most 1/4, so with it the gradient can shrink with depth far
#   faster than with ReLU: compare the sigmoid and ReLU rows.
# * **Batch normalization** resets the scale of every layer's input, which keeps the
#   gradient from vanishing in a plain stack (compare "plain" with "plain + BatchNorm" in
#   section 2). It does not fix everything: in He et al.'s experiments a deeper plain network
#   with BatchNorm still trained worse than a shallower one, the *degradation* problem that
#   section 3's second experiment looks for.
# * **Residual connections**: the block computes `x + F(x)`, whose derivative `I + ∂F/∂x` always
#   contains the identity, so the gradient reaches the first layer directly; and an unneeded
#   block only has to learn `F(x) = 0`. This demo's blocks are *pre-activation* blocks (He et
#   al. 2016): nothing comes after the addition, so the skip path is exactly the identity. The
#   lesson plan's block (and the exercise's) puts a ReLU after the addition, which gates the
#   identity path where the sum is negative.
# * **Impact**: this is what made ResNets of 100 layers and more trainable and practical.
#
# Next: the solo exercise, `residual_cnn.ipynb`. Next session: transfer learning with CNNs
# pretrained on ImageNet, such as ResNet.
