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
# # Session 7 · Residual CNNs and batch normalization
#
# Why can't we just stack 100 convolutional layers? Deep plain networks are hard to train:
# the signal that reaches the early layers during backpropagation can shrink (or blow up)
# layer after layer. Two ideas changed that in 2015:
#
# * **Batch normalization** (Ioffe & Szegedy) re-centres and re-scales every layer's
#   activations over the mini-batch, so each layer sees inputs of a steady scale.
# * **Residual connections** (He et al., *Deep Residual Learning for Image Recognition*) let a
#   block compute `ReLU(F(x) + x)`: the block only has to learn a correction `F(x)` to the
#   identity, and the gradient has a direct path back through the `+ x`.
#
# In this exercise you build a small residual CNN with batch normalization for MNIST and
# compare it with the plain CNN from Session 6.
#
# **Goals.** After this notebook you can
# 1. implement a residual block with batch normalization in PyTorch,
# 2. assemble it into a CNN whose shapes you can explain,
# 3. compare two models fairly (same data, same seed, same training budget) and say what the
#    numbers do and do not show.
#
# **Readings.** D2L [8.5 Batch Normalization](https://d2l.ai/chapter_convolutional-modern/batch-norm.html)
# and [8.6 Residual Networks](https://d2l.ai/chapter_convolutional-modern/resnet.html).
#
# **How this notebook is graded.** Parts A and B are autograded: the cells after each task
# are tests worth the points in the heading. Some tests are visible and you can run them now;
# more are hidden and run when your notebook is graded. Part C is read by a person.
# Before you submit, *Restart & Run All* (or press **Validate**) and check that no cell fails.
# Save after the run: whoever reads Part C sees the outputs your notebook carries when you submit.

# %% nbgrader={"grade_id": "setup", "locked": true}
# deepnets first: it tunes PyTorch's CPU threads for a shared machine before torch loads.
from deepnets import count_parameters, fit, load_mnist, pick_budget, pick_device, set_seed
from deepnets.evidence import LEARNED_ABOVE, compare_on_same_images, correct_answers
from deepnets.plots import plot_training_curves

import torch
import torch.nn.functional as F
from torch import nn

device = pick_device()
print(f"Device: {device}")

# How much training the notebook does. The budget is picked for you: 'quick' while nbgrader
# validates or grades, 'demo' on a CPU, 'full' (the lesson plan's 5 epochs on all of MNIST)
# on a GPU. Set the environment variable DEEPNETS_BUDGET to choose one yourself.
# batchnorm_*: the BatchNorm experiment (one epoch of BaselineCNN with and without BatchNorm at
# each learning rate); the rest: the comparison of BaselineCNN and ResidualCNN in Part C.
budget = pick_budget(
    quick=dict(train_size=1_000, test_size=500, epochs=1,
               batchnorm_train=500, batchnorm_test=500, batchnorm_lrs=(1e-3, 1e-2, 1e-1)),
    demo=dict(train_size=20_000, test_size=10_000, epochs=1,
              batchnorm_train=4_000, batchnorm_test=2_000, batchnorm_lrs=(1e-3, 1e-2, 1e-1)),
    full=dict(train_size=None, test_size=None, epochs=5,
              batchnorm_train=None, batchnorm_test=None, batchnorm_lrs=(1e-3, 1e-2, 1e-1)),
)
all_mnist = load_mnist()
mnist = all_mnist.subset(budget.train_size, budget.test_size)
batchnorm_data = all_mnist.subset(budget.batchnorm_train, budget.batchnorm_test)

# %% [markdown] nbgrader={"grade_id": "baseline_intro", "locked": true}
# ## The baseline: Session 6's CNN
#
# Two convolutions, each followed by ReLU and 2x2 max pooling, then a linear classifier.
# It has no batch normalization and no skip connection. It is given; do not change it.

# %% nbgrader={"grade_id": "baseline", "locked": true}
class BaselineCNN(nn.Module):
    """Session 6's CNN: two conv-ReLU-pool stages and a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):                        # x: (N, 1, 28, 28)
        x = self.pool(F.relu(self.conv1(x)))     # (N, 16, 14, 14)
        x = self.pool(F.relu(self.conv2(x)))     # (N, 32, 7, 7)
        return self.fc(x.flatten(1))             # (N, 10)


# %% tags=["nbval-check-output"] nbgrader={"grade_id": "baseline_summary", "locked": true}
baseline_shape = BaselineCNN()(torch.zeros(2, 1, 28, 28)).shape
print(f"BaselineCNN: output {tuple(baseline_shape)}, {count_parameters(BaselineCNN()):,} parameters")

# %% [markdown] nbgrader={"grade_id": "batchnorm_intro", "locked": true}
# ## Batch normalization, by hand (a worked example, not graded)
#
# Your block will use `nn.BatchNorm2d`. Here is what it computes. For a batch of feature maps
# `x` of shape `(N, C, H, W)`, BatchNorm works on each channel `c` separately:
#
# 1. the channel's **batch mean** `μ_c` and **batch variance** `σ²_c`, over all `N` images and
#    all `H × W` positions;
# 2. normalize: `x̂ = (x − μ_c) / sqrt(σ²_c + ε)`, so the channel has mean 0 and variance 1 in
#    this batch (`ε`, 1e-5 by default, keeps the division safe);
# 3. scale and shift: `y = γ_c · x̂ + β_c`, where `γ` (`weight`) and `β` (`bias`) are learned,
#    so the network can undo the normalization where that helps (they start at 1 and 0).
#
# That is **train mode**. It also keeps **running statistics**, an exponential moving average
# of the batch statistics: `running = (1 − momentum) · running + momentum · batch`, with
# `momentum` 0.1 (for the variance PyTorch averages the unbiased batch variance). In **eval
# mode** (`model.eval()`) BatchNorm normalizes with those running statistics instead, so an
# image's prediction no longer depends on which other images share its batch.
#
# The cells below compute all of this by hand on a small batch and check it against
# `nn.BatchNorm2d`; the `assert`s are the proof. Read them, then change the numbers.

# %% nbgrader={"grade_id": "batchnorm_by_hand", "locked": true}
torch.manual_seed(0)
channels = 2
# 4 images, 2 channels, 3x3: channel 0 has mean about 3 and spread 2, channel 1 about -1 and 0.5.
x = torch.randn(4, channels, 3, 3) * torch.tensor([2.0, 0.5]).view(1, -1, 1, 1) \
    + torch.tensor([3.0, -1.0]).view(1, -1, 1, 1)
gamma, beta, eps = torch.tensor([1.5, 0.5]), torch.tensor([0.0, 2.0]), 1e-5


def per_channel(values):
    """(C,) -> (1, C, 1, 1), so that it broadcasts over images and positions."""
    return values.view(1, -1, 1, 1)


batch_mean = x.mean(dim=(0, 2, 3))                    # one number per channel
batch_var = x.var(dim=(0, 2, 3), unbiased=False)      # over N, H and W
x_hat = (x - per_channel(batch_mean)) / torch.sqrt(per_channel(batch_var) + eps)
by_hand = per_channel(gamma) * x_hat + per_channel(beta)

bn = nn.BatchNorm2d(channels, eps=eps)
with torch.no_grad():
    bn.weight.copy_(gamma)
    bn.bias.copy_(beta)
bn.train()
with torch.no_grad():
    train_out = bn(x)                                   # also updates the running statistics
assert torch.allclose(by_hand, train_out, atol=1e-5), "the hand computation differs from BatchNorm2d"

print(f"{'channel':>7} {'batch mean':>11} {'batch var':>10} {'gamma':>6} {'beta':>5} "
      f"{'output mean':>12} {'output std':>11}")
for c in range(channels):
    out = train_out[:, c]
    print(f"{c:>7} {batch_mean[c]:>11.3f} {batch_var[c]:>10.3f} {gamma[c]:>6.2f} {beta[c]:>5.2f} "
          f"{out.mean():>12.3f} {out.std(unbiased=False):>11.3f}")
print("In train mode each channel's output has mean beta and standard deviation gamma (up to eps).")

# %% nbgrader={"grade_id": "batchnorm_running_statistics", "locked": true}
# The running statistics after that one train-mode batch, by hand: they started at mean 0, variance 1.
momentum = bn.momentum
running_mean = (1 - momentum) * torch.zeros(channels) + momentum * batch_mean
running_var = (1 - momentum) * torch.ones(channels) + momentum * x.var(dim=(0, 2, 3), unbiased=True)
assert torch.allclose(bn.running_mean, running_mean, atol=1e-6)
assert torch.allclose(bn.running_var, running_var, atol=1e-6)

bn.eval()
with torch.no_grad():
    eval_out = bn(x)                                   # eval mode: the running statistics
eval_by_hand = per_channel(gamma) * (x - per_channel(running_mean)) \
    / torch.sqrt(per_channel(running_var) + eps) + per_channel(beta)
assert torch.allclose(eval_out, eval_by_hand, atol=1e-5), "eval mode should use the running statistics"

for c in range(channels):
    print(f"channel {c}: batch mean {batch_mean[c]:.3f}, running mean {bn.running_mean[c]:.3f}; "
          f"batch var {batch_var[c]:.3f}, running var {bn.running_var[c]:.3f}")
print(f"Largest difference between the train-mode and eval-mode outputs of the same batch: "
      f"{(train_out - eval_out).abs().max():.3f}")

# In train mode an image's output depends on the rest of its batch; in eval mode it does not.
other = x.clone()
other[1:] = torch.randn_like(other[1:]) * 3          # new batch-mates, the same first image
with torch.no_grad():
    train_change = (bn.train()(other)[0] - bn.train()(x)[0]).abs().max().item()
    eval_change = (bn.eval()(other)[0] - bn.eval()(x)[0]).abs().max().item()
print(f"Changing the other three images moves the first image's output by {train_change:.3f} in train "
      f"mode and by {eval_change:.3f} in eval mode.")

# %% [markdown] nbgrader={"grade_id": "batchnorm_catch_up_intro", "locked": true}
# After one batch the running statistics have moved only a tenth of the way from (0, 1) to the
# batch's own, so eval mode normalizes with the wrong numbers. Each further train-mode batch
# moves them another tenth of the remaining way. Watch the train/eval difference shrink, then
# **try it**: change `momentum` (say 0.5 or 0.01) or the number of batches, and rerun.

# %% nbgrader={"grade_id": "batchnorm_catch_up"}
momentum, batches = 0.1, 50
bn = nn.BatchNorm2d(channels, momentum=momentum)
for step in range(1, batches + 1):
    # Batches from the same source as x: channel means 3 and -1, spreads 2 and 0.5.
    batch = torch.randn(4, channels, 3, 3) * per_channel(torch.tensor([2.0, 0.5])) \
        + per_channel(torch.tensor([3.0, -1.0]))
    with torch.no_grad():
        train_out = bn.train()(batch)
        eval_out = bn.eval()(batch)
    if step in (1, 2, 5, 10, 20, 50) or step == batches:
        print(f"after {step:>3} batches: running mean {[round(v, 2) for v in bn.running_mean.tolist()]}, "
              f"largest train/eval difference {(train_out - eval_out).abs().max():.3f}")

# %% [markdown] nbgrader={"grade_id": "batchnorm_experiment_intro", "locked": true}
# ### One change at a time: the baseline with and without BatchNorm
#
# To see what BatchNorm does to training, change nothing else. `BaselineCNNWithBN` is
# `BaselineCNN` with a `BatchNorm2d` after each convolution; it starts from the same
# weights (same seed), sees the same images in the same order, for the same number of steps.
# Both train at the learning rate the rest of this notebook uses (0.001) and at 10 and 100
# times that: which learns faster, and which tolerates the higher rates? Accuracies below are on the same test images, compared
# image by image (a paired test); for the BatchNorm model the verdict uses eval mode (running
# statistics), as a deployed model would, and the table also shows train mode (batch
# statistics), in case the running statistics lag behind after a short run.

# %% nbgrader={"grade_id": "baseline_with_bn", "locked": true}
class BaselineCNNWithBN(BaselineCNN):
    """BaselineCNN with a BatchNorm2d after each convolution, and nothing else changed."""

    def __init__(self):
        super().__init__()  # the same layers, drawn from the same random numbers
        self.bn1 = nn.BatchNorm2d(16)
        self.bn2 = nn.BatchNorm2d(32)

    def forward(self, x):                                   # x: (N, 1, 28, 28)
        x = self.pool(F.relu(self.bn1(self.conv1(x))))     # (N, 16, 14, 14)
        x = self.pool(F.relu(self.bn2(self.conv2(x))))     # (N, 32, 7, 7)
        return self.fc(x.flatten(1))                        # (N, 10)


bn_models, bn_histories = {}, {}
for lr in budget.batchnorm_lrs:
    for name, model_class in [("without BN", BaselineCNN), ("with BN", BaselineCNNWithBN)]:
        set_seed(0)  # the same initial weights for both models
        bn_models[name, lr] = model_class()
        bn_histories[f"{name}, lr {lr:g}"] = fit(
            bn_models[name, lr], batchnorm_data, epochs=1, batch_size=128, lr=lr, seed=0,
            device=device, name=f"{name}, lr {lr:g}")

# %% nbgrader={"grade_id": "batchnorm_experiment_results", "locked": true}
test_images, test_labels = batchnorm_data.test_images, batchnorm_data.test_labels
print(f"{len(batchnorm_data.train_labels):,} training images, 1 epoch, seed 0; "
      f"{len(test_labels):,} test images ({budget.name} budget)")
print(f"{'run':<24} {'last-20-step loss':>17} {'test acc (eval)':>16} {'(train mode)':>13}")
accuracy = {}  # (name, lr) -> eval-mode test accuracy
for (name, lr), model in bn_models.items():
    history = bn_histories[f"{name}, lr {lr:g}"]
    accuracy[name, lr] = history.final_test_accuracy
    train_mode = 100 * correct_answers(model, test_images, test_labels, train_mode=True).float().mean()
    last_losses = history.step_loss[-20:]
    print(f"{name + ', lr ' + format(lr, 'g'):<24} {sum(last_losses) / len(last_losses):>17.3f} "
          f"{accuracy[name, lr]:>15.2f}% {train_mode:>12.2f}%")

for lr in budget.batchnorm_lrs:
    print(f"\nLearning rate {lr:g}, eval mode:")
    print(compare_on_same_images({"without BN": bn_models["without BN", lr], "with BN": bn_models["with BN", lr]},
                                 test_images, test_labels).verdict())

print()
for name in ("without BN", "with BN"):
    learned = [f"{lr:g}" for lr in budget.batchnorm_lrs if accuracy[name, lr] > LEARNED_ABOVE]
    failed = [f"{lr:g}" for lr in budget.batchnorm_lrs if accuracy[name, lr] <= LEARNED_ABOVE]
    print(f"{name}: above {LEARNED_ABOVE:.0f}% test accuracy at learning rate(s) {', '.join(learned) or 'none'}; "
          f"at or below {LEARNED_ABOVE:.0f}% (chance is 10%) at {', '.join(failed) or 'none'}.")
plot_training_curves(bn_histories, title=f"BaselineCNN with and without BatchNorm ({budget.name} budget)");

# %% [markdown] nbgrader={"grade_id": "part_a_task", "locked": true}
# ## Part A: a residual block (7 points)
#
# Complete `ResidualBlock(channels)`. It keeps the number of channels and the image size:
#
# ```
# x ──► conv1 (3x3) ─► bn1 ─► ReLU ─► conv2 (3x3) ─► bn2 ─► (+) ─► ReLU ─► out
# │                                                          ▲
# └──────────────────────── identity (skip) ─────────────────┘
# ```
#
# * two 3x3 convolutions from `channels` to `channels`, with padding 1 so that the height and
#   width do not change; name them `conv1` and `conv2`;
# * a `BatchNorm2d` after each convolution, named `bn1` and `bn2`;
# * the input `x` is added to the output of `bn2` (the skip connection), and ReLU comes
#   **after** the addition.
#
# Tip: a convolution followed by BatchNorm does not need its own bias (`bias=False`):
# BatchNorm subtracts the mean, which cancels any bias, and adds its own shift.

# %% nbgrader={"grade_id": "residual_block", "solution": true}
class ResidualBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity skip connection: ReLU(F(x) + x)."""

    def __init__(self, channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))   # (N, C, H, W)
        out = self.bn2(self.conv2(out))         # (N, C, H, W): the residual F(x)
        return F.relu(out + x)                  # skip connection, then ReLU (out += x works too)
        ### END SOLUTION


# %% [markdown] nbgrader={"grade_id": "part_a_try", "locked": true}
# Try your block: a batch of 4 images with 8 channels should come out with the same shape.

# %% nbgrader={"grade_id": "residual_block_try"}
block = ResidualBlock(8)
print(block)
print("output shape:", tuple(block(torch.randn(4, 8, 28, 28)).shape))

# %% nbgrader={"grade": true, "grade_id": "block_keeps_shape", "points": 1}
"""The block's output has the shape of its input."""
for channels, size in [(8, 28), (32, 14), (1, 7)]:
    x = torch.randn(4, channels, size, size)
    assert ResidualBlock(channels)(x).shape == x.shape, f"shape changed for input {tuple(x.shape)}"
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_keeps_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_has_convs_and_batchnorms", "points": 1}
"""The block has two 3x3 convolutions, each followed by a BatchNorm2d over the same channels."""
block = ResidualBlock(16)
convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
assert len(convs) == 2, f"expected 2 Conv2d layers, found {len(convs)}"
assert all(conv.kernel_size == (3, 3) for conv in convs), "both convolutions should be 3x3"
assert all(conv.in_channels == conv.out_channels == 16 for conv in convs), "channels must not change"
assert len(norms) == 2 and all(norm.num_features == 16 for norm in norms), "expected 2 BatchNorm2d(16)"
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_has_convs_and_batchnorms", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "zero_gamma_note", "locked": true}
# **How the next tests see the skip: the zero-γ trick.** They set `bn2`'s scale γ and shift β
# to zero. Then `bn2` outputs 0 whatever comes in, the residual branch `F(x)` is 0, and a
# correct block returns `ReLU(0 + x) = ReLU(x)`: only the skip path is left, so the test sees
# whether `x` was added back and where the ReLU sits. The same move is a training trick for
# large ResNets: start every block's last BatchNorm at γ = 0, so each block starts as its skip
# path and a deep network starts out as shallow as it can be (Goyal et al. 2017, *Accurate,
# Large Minibatch SGD*). In this block, the original ResNet paper's *post-activation* design
# (ReLU after the addition), that start is `ReLU(x)`, not quite `x`; the live demo uses
# *pre-activation* blocks (`x + F(x)` with nothing after the addition, He et al. 2016), whose
# skip path is exactly the identity.

# %% nbgrader={"grade": true, "grade_id": "block_skip_connection", "points": 1}
"""With the residual branch switched off (bn2 scaled to zero), the block is ReLU(x): the skip."""
from deepnets.checks import zero_residual_branch

block = zero_residual_branch(ResidualBlock(8)).eval()
x = torch.randn(2, 8, 10, 10)
with torch.no_grad():
    assert torch.allclose(block(x), F.relu(x)), "ResidualBlock does not add its input x back"
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_skip_connection", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_gradient_through_skip", "points": 1}
"""The gradient reaches the input through the skip path even when the residual branch is off."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_gradient_through_skip", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_relu_after_addition", "points": 1}
"""ReLU comes after the addition: outputs are never negative, and negative inputs are cut."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_relu_after_addition", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_batchnorm_train_vs_eval", "points": 1}
"""BatchNorm normalizes with batch statistics in train mode and running statistics in eval mode."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_batchnorm_train_vs_eval", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "block_skip_is_identity", "points": 1}
"""The skip path is the identity: it adds no parameters beyond the two conv and BN layers."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("block_skip_is_identity", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "part_b_task", "locked": true}
# ## Part B: a residual CNN (6 points)
#
# Complete `ResidualCNN()`, which maps a batch of MNIST images `(N, 1, 28, 28)` to class
# scores `(N, 10)`:
#
# 1. a first convolution from 1 to 32 channels (3x3, padding 1), then BatchNorm and ReLU;
# 2. a `ResidualBlock(32)` at 28x28;
# 3. 2x2 max pooling (28x28 to 14x14);
# 4. a second `ResidualBlock(32)` at 14x14;
# 5. flatten and a linear layer to 10 classes.
#
# Write the shape after each step as a comment; it is the easiest way to get the
# linear layer's input size right.

# %% nbgrader={"grade_id": "residual_cnn", "solution": true}
class ResidualCNN(nn.Module):
    """conv-BN-ReLU, a residual block, max pooling, a second residual block, linear classifier."""

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.res1 = ResidualBlock(32)
        self.pool = nn.MaxPool2d(2, 2)
        self.res2 = ResidualBlock(32)
        self.fc = nn.Linear(32 * 14 * 14, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.bn1(self.conv1(x)))   # (N, 32, 28, 28)
        x = self.res1(x)                      # (N, 32, 28, 28)
        x = self.pool(x)                      # (N, 32, 14, 14)
        x = self.res2(x)                      # (N, 32, 14, 14)
        return self.fc(x.flatten(1))          # (N, 10)
        ### END SOLUTION


# %% nbgrader={"grade_id": "residual_cnn_try"}
residual_model = ResidualCNN()
print(residual_model)
print("output shape:", tuple(residual_model(torch.zeros(2, 1, 28, 28)).shape))

# %% nbgrader={"grade": true, "grade_id": "cnn_output_shape", "points": 1}
"""ResidualCNN maps (N, 1, 28, 28) images to (N, 10) class scores."""
model = ResidualCNN().eval()
for batch in (1, 5, 64):
    with torch.no_grad():
        scores = model(torch.rand(batch, 1, 28, 28))
    assert scores.shape == (batch, 10), f"batch of {batch}: expected {(batch, 10)}, got {tuple(scores.shape)}"
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("cnn_output_shape", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "cnn_parameter_count", "points": 1}
"""ResidualCNN has a sane number of parameters for this design (about 100,000)."""
n_parameters = count_parameters(ResidualCNN())
assert 50_000 <= n_parameters <= 200_000, f"{n_parameters:,} parameters is far from the design's ~100,000"
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("cnn_parameter_count", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "cnn_built_from_residual_blocks", "points": 1}
"""ResidualCNN contains two ResidualBlocks and a BatchNorm after its first convolution."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("cnn_built_from_residual_blocks", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "cnn_gradient_reaches_first_layer", "points": 1}
"""A backward pass gives every parameter, the first convolution's included, a non-zero gradient."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("cnn_gradient_reaches_first_layer", globals())
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "cnn_learns_mnist", "points": 2}
"""Trained by the grader from fresh weights (its own data, seed and budget), ResidualCNN reaches the
accuracy a correct ResidualCNN reaches (the threshold is calibrated on many runs of the solution)."""
### BEGIN HIDDEN TESTS
from autograder.checks.session07_residual_cnn import lesson

lesson.verify("cnn_learns_mnist", globals())
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade_id": "part_c_intro", "locked": true}
# ## Training both models, fairly
#
# A comparison says something only if the two runs differ in the model alone. Both models
# below see the same images in the same order (same seed), with the same optimizer (Adam,
# learning rate 0.001), batch size (128) and number of epochs. The progress bar shows each
# run as it goes.

# %% nbgrader={"grade_id": "train_both"}
models, histories, parameters = {}, {}, {}
for name, model_class in [("BaselineCNN", BaselineCNN), ("ResidualCNN", ResidualCNN)]:
    set_seed(0)  # the same initial random state for both models
    models[name] = model_class()
    parameters[name] = count_parameters(models[name])
    histories[name] = fit(models[name], mnist, epochs=budget.epochs, batch_size=128, lr=1e-3,
                          seed=0, device=device, name=name)

# %% nbgrader={"grade_id": "compare_both"}
print(f"{'model':<12} {'parameters':>10} {'test acc (eval)':>16} {'test acc (train mode)':>22} "
      f"{'last epoch loss':>16} {'seconds':>8}")
for name, history in histories.items():
    train_mode = 100 * correct_answers(models[name], mnist.test_images, mnist.test_labels,
                                       train_mode=True).float().mean()
    print(f"{name:<12} {parameters[name]:>10,} {history.final_test_accuracy:>15.2f}% {train_mode:>21.2f}% "
          f"{history.epoch_loss[-1]:>16.4f} {history.seconds:>8.1f}")

# Both models answered the same test images, so compare them image by image (a paired test):
# what matters is on how many images they disagree, and which one is right on those.
comparison = compare_on_same_images(models, mnist.test_images, mnist.test_labels)
print(f"\nIn eval mode (running statistics), on the {budget.name} budget, {len(mnist.train_labels):,} "
      f"training images, {budget.epochs} epoch(s), seed 0:")
print(comparison.verdict())
plot_training_curves(histories, title=f"BaselineCNN vs ResidualCNN ({budget.name} budget)");

# %% [markdown] nbgrader={"grade_id": "part_c_task", "locked": true}
# ## Part C: reflection (10 points)
#
# Answer each question in a few sentences, using the numbers and the plot above. Say what your
# run shows and what it cannot show. Points are given for reasoning from evidence, not for
# length. (If you ran the quick budget, rerun with `DEEPNETS_BUDGET=demo` first.)
#
# **1. Did your ResidualCNN outperform the baseline CNN, and did it train faster or more
# stably? By how much, and is the gap bigger than the noise?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_outperform", "points": 2, "solution": true}
# Model answer (the numbers are the student's own: the table and the paired test under "Training
# both models, fairly"). Quote both eval-mode test accuracies and the paired difference
# ResidualCNN - BaselineCNN with its 95% interval and p-value. If the printed p is below 0.05,
# the gap is more than test-set noise, for this one seed and budget (seed-to-seed variation is
# not measured); if it is not, this run cannot tell the two models apart. On the loss curves,
# say which model's loss falls first and which is smoother, as their own plot shows it. One seed and a short budget do not show how the gap behaves with longer training,
# where both models approach 99%.
#
# Mark scheme: 1 point for quoting both accuracies (or the gap) from their own run and
# commenting on the curves (speed or smoothness of the loss); 1 point for judging the gap
# with the paired test (or against noise or seed variation), or noting that a single run on
# MNIST cannot separate models that both reach about 98-99%.

# %% [markdown] nbgrader={"grade_id": "reflection_2_question", "locked": true}
# **2. How does batch normalization change the training dynamics (stability, the learning
# rates it tolerates, speed of convergence)? Use the BatchNorm experiment before Part A. What in
# Part C's comparison can, and cannot, be put down to BatchNorm?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_batchnorm", "points": 2, "solution": true}
# Model answer: BatchNorm normalizes each channel with the batch's mean and variance, then
# scales and shifts it by the learned γ and β; in eval mode it uses running averages of those
# statistics instead (the worked example shows both, and how the running statistics lag). So
# the scale of each layer's input does not drift as the weights change. The evidence is the
# BatchNorm experiment, the only run in this notebook that changes BatchNorm alone: quote, at
# learning rate 0.001, the paired difference "with BN - without BN" and its p-value (the
# notebook prints whether it is more than test-set noise), and the loss curves (which falls
# faster). For the learning rates it tolerates, quote the last lines of that experiment: at
# which rates each model got above 50%. Whatever those lines print is the answer for this
# network, Adam and this budget; the textbook claim that BatchNorm allows larger learning rates
# comes from plain SGD, and Adam already scales every step, γ and β included, so a student who
# notes that the high-rate result may differ from the claim, and says which, has read the
# evidence well. Part C's comparison cannot be put down to BatchNorm: ResidualCNN also
# differs in depth, width, pooling and skip connections.
#
# Mark scheme: 1 point for a correct mechanism (normalizing activations with batch statistics,
# learnable scale and shift, running statistics in eval mode); 1 point for evidence from the
# BatchNorm experiment (the speed at 0.001, what happened at the higher rates) or for
# explaining why Part C's comparison confounds BatchNorm with other changes.

# %% [markdown] nbgrader={"grade_id": "reflection_3_question", "locked": true}
# **3. Why do skip connections help deeper networks train better?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_skip", "points": 2, "solution": true}
# Model answer: the output of a block is x + F(x), so its derivative with respect to x is
# I + dF/dx: the gradient always has a direct path through the identity and does not have to
# pass through every layer's weights and non-linearities, where it can shrink layer after
# layer. A block that is not needed can also learn F(x) = 0 and pass its input on unchanged,
# so adding blocks should not make the best reachable training loss worse.
#
# Mark scheme: 1 point for the gradient argument (identity term in the derivative, gradients
# not multiplied through every layer); 1 point for the "easy identity" argument (learning a
# residual near zero is easier than learning the identity with a stack of layers), or for
# connecting it to the degradation of deep plain networks.

# %% [markdown] nbgrader={"grade_id": "reflection_4_question", "locked": true}
# **4. Compare the parameter counts: which model is more efficient, and where do
# ResidualCNN's parameters sit?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_parameters", "points": 2, "solution": true}
# Model answer: BaselineCNN has 20,490 parameters and ResidualCNN 100,202 (the table prints
# both), about five times as many; 62,730 of them are in the final linear layer (32 x 14 x 14
# inputs times 10 outputs, plus biases), because ResidualCNN pools only once. What the extra
# parameters buy is the paired difference printed under the table: if its p-value is below
# 0.05, about that many points (within its interval) for five times the parameters and many
# more multiply-adds per image; if not, this run shows no accuracy gained for them. Per
# parameter, the baseline is the more efficient model either way.
#
# Mark scheme: 1 point for both counts and the ratio; 1 point for locating the parameters
# (the linear layer dominates) or for a reasoned efficiency judgement (accuracy per parameter
# or per unit of compute).

# %% [markdown] nbgrader={"grade_id": "reflection_5_question", "locked": true}
# **5. What is the relationship between residuals and the identity mapping?** (2 points)

# %% [markdown] nbgrader={"grade": true, "grade_id": "reflection_identity", "points": 2, "solution": true}
# Model answer: a residual block computes H(x) = F(x) + x, so F(x) = H(x) - x is the residual:
# what the block must add to its input. When the best mapping is close to the identity, the
# block only needs F(x) close to 0, which weight decay and a small initialisation favour. Our
# tests show the same thing: with the branch switched off, the block returns ReLU(x).
#
# Mark scheme: 1 point for H(x) = F(x) + x with F as the residual (difference from the
# identity); 1 point for why that makes the identity (or near-identity) easy to represent.

# %% [markdown] nbgrader={"grade_id": "wrap_up", "locked": true}
# ## Wrap-up
#
# * **Vanishing gradients**: in deep plain networks the early layers can get gradients too
#   small to learn from.
# * **Batch normalization** keeps each layer's activations at a steady scale, which
#   stabilizes training.
# * **Residual connections** give gradients a shortcut and make the identity easy to learn;
#   that is what made networks of 100 layers and more trainable.
#
# **Before you submit, check that you can:**
# - [ ] explain each line of your `ResidualBlock.forward`, and why ReLU comes after the addition;
# - [ ] give the shape after every layer of your `ResidualCNN`;
# - [ ] say what BatchNorm does differently in `model.train()` and `model.eval()`;
# - [ ] point to the numbers or the curve behind each of your reflection answers;
# - [ ] run *Restart & Run All* (or **Validate**) without an error.
#
# Next session: transfer learning with CNNs pretrained on ImageNet, such as ResNet.
