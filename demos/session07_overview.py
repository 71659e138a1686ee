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
# # Session 7 · Instructor overview: deeper CNNs, residual connections and batch normalization
#
# One hour, after Session 6 (CNNs). This page is the plan; the two notebooks it points to are
# the demo you run in front of the class and the exercise the students do.
#
# | notebook | who | what |
# | --- | --- | --- |
# | `notebooks/session07_vanishing_gradients.ipynb` | you, live | vanishing gradients, BatchNorm and residual connections made visible |
# | `release/session07_residual_cnn/residual_cnn.ipynb` | students, solo | build a residual CNN with BatchNorm, compare it with Session 6's CNN |
# | `notebooks/residual_cnn.ipynb` | you | the exercise's solution, model answers and mark schemes |
#
# **Goals.** By the end of the hour learners can
# 1. say what vanishing gradients are and show them on a plot of gradient norms per layer;
# 2. explain what batch normalization does to each layer's activations;
# 3. explain why a skip connection `x + F(x)` lets gradients reach early layers;
# 4. implement a residual block with BatchNorm in PyTorch and compare two models fairly.

# %% [markdown]
# ## Timeline
#
# | time | activity | material |
# | --- | --- | --- |
# | 0:00 – 0:05 | 1. Touching base and session overview | this page |
# | 0:05 – 0:25 | 2. Demo: vanishing gradients, BatchNorm and residual blocks | `session07_vanishing_gradients.ipynb` |
# | 0:25 – 0:50 | 3. Solo exercise: implementing a residual CNN | `residual_cnn.ipynb` (release) |
# | 0:50 – 1:00 | 4. Wrap-up and key insights | the demo's last section |
#
# **How long each part takes.** The minutes above are the lesson plan's. What the notebooks
# compute in the demo budget on a 2-core laptop-class CPU, as `make demo` last measured it
# (each part is the cells under one heading; the rest of a slot is talking, reading and
# writing code), is printed below; time `make demo` on your own laptop before class.

# %%
from deepnets.budget import print_measured_times

print_measured_times("../benchmarks/results/demo_timings.json",
                     ["session07_vanishing_gradients.ipynb", "residual_cnn.ipynb"])

# %% [markdown]
# If the 25 minutes run short, students finish the five reflections after class: they need
# only the printed numbers and figures of their own run.
#
# **Before class.** Open the demo in JupyterLab (`make lab`) and run it once: on a laptop CPU
# the demo budget computes everything in a few minutes, so you can also run it live while you
# talk; each training run shows a progress bar and a figure that redraws as it trains. On a
# CUDA GPU the notebook picks the full budget (the lesson plan's settings) by itself;
# `DEEPNETS_BUDGET=demo make lab` forces the laptop budget.

# %% [markdown]
# ## 1. Touching base (5 minutes)
#
# * Review Session 6: convolutions, parameter efficiency (weights shared across the image),
#   translation invariance.
# * **Opening question:** *"What happens if we stack more layers? Why don't we just make CNNs
#   100 layers deep?"* Collect guesses before showing anything.
# * Talking points:
#   * **Vanishing gradients**: the gradient that reaches the early layers is a product of one
#     factor per layer; when those factors are below one, it shrinks exponentially with depth,
#     and the early layers cannot learn useful features.
#   * It is worst with sigmoid or tanh (the sigmoid's slope is at most 1/4), and it still
#     happens with ReLU in very deep networks when nothing keeps each layer's scale in check.
#   * Preview of the two fixes: **batch normalization** (keeps activations at a steady scale,
#     smoother training) and **residual connections** (skip connections give the gradient a
#     direct path).

# %% [markdown]
# ## 2. Demo (20 minutes)
#
# Run `notebooks/session07_vanishing_gradients.ipynb` top to bottom. Its sections, with the
# question to ask the class before each result appears:
#
# 1. **The lesson plan's comparison**, a 6-layer plain CNN against `ResidualCNN`. *"Will the
#    plain network suffer from vanishing gradients?"* The notebook prints whether the plain
#    network learned, and a paired test of the two models on the same test images: read out
#    its verdict, including when it says that this budget cannot tell them apart.
# 2. **Gradient norms per layer at initialisation**, plain and residual, with and without
#    BatchNorm, ReLU and sigmoid, at depths 6, 20 and 56. *"Where will the gradient be
#    smallest?"* Seconds of computing. Look at the first-layer gradient of each variant as depth
#    grows, and at sigmoid against ReLU; the printed lines give the factors.
# 3. **Training loss against depth**. Without BatchNorm, the plain depth-56 stack against its
#    residual twin; with BatchNorm, plain and residual stacks at depths 20 and 56 (the effect
#    of the ResNet paper's first figure). *"Is the deeper network overfitting?"* (It is the
#    training loss.) Under each experiment the notebook prints "Shown in this run" or that this
#    budget does not show it, and then the recorded full-budget run if one has been recorded.
# 4. **Gradient norms after training**, and the tool the students can rerun on any model.
#
# The notebook prints which budget it used, and each statement under a result is computed
# from that run's numbers: read those out. The quick budget (CI) trains too little to show
# section 3.

# %% [markdown]
# ## 3. Solo exercise (25 minutes)
#
# Students open `residual_cnn.ipynb` from the Assignments tab (or `release/`). First a worked
# example, not graded: BatchNorm computed by hand and checked against `nn.BatchNorm2d` in train
# and eval mode, then one experiment that changes BatchNorm alone (Session 6's CNN with and
# without it, at three learning rates); reflection question 2 is answered from it. Then Part A: a
# residual block with BatchNorm (7 points, autograded); Part B: the residual CNN (6 points,
# autograded); Part C: five reflection questions (10 points, graded by hand). Worth saying
# before they start: ReLU comes *after* the addition, and the linear layer's input size follows
# from the one pooling step (32 × 14 × 14); writing the shape after each line as a comment
# is the quickest way to get it right. Visible tests run any time; hidden ones at grading.

# %% [markdown]
# ## 4. Wrap-up and key insights (10 minutes)
#
# * **Vanishing gradients**: deep networks fail to learn when the gradient disappears before
#   it reaches the early layers.
# * **Batch normalization** normalizes each layer's activations over the batch and stabilizes
#   training.
# * **Residual connections**: shortcut paths let the gradient flow; a block that is not needed
#   can learn `F(x) = 0` and pass its input on.
# * **Impact**: ResNets made networks of 100 layers and more trainable and practical.
#
# **Looking ahead.** Next session: transfer learning with CNNs pretrained on ImageNet, such as
# ResNet.

# %% [markdown]
# ## Videos and readings
#
# The Session 7 plan lists no videos or readings of its own; the exercise points students to
# the two D2L sections, and the Day 13 plan, which covers the same ideas, recommends the videos.
#
# * D2L, [Batch Normalization](https://d2l.ai/chapter_convolutional-modern/batch-norm.html)
#   and [Residual Networks (ResNet)](https://d2l.ai/chapter_convolutional-modern/resnet.html).
# * [Batch Normalization Explained](https://www.youtube.com/watch?v=dXB-KQYkzNU) (StatQuest, 15 min),
#   [Vanishing Gradients Problem](https://www.youtube.com/watch?v=SKMpmAOUa2Q) (15 min),
#   [ResNet: Why it works](https://www.youtube.com/watch?v=RYth6EbBUqM) (15 min).
# * The papers, for the curious: He et al., [Deep Residual Learning for Image
#   Recognition](https://arxiv.org/abs/1512.03385) (2015; its Figure 1 is the effect section 3
#   of the demo reproduces); Ioffe and Szegedy, [Batch
#   Normalization](https://arxiv.org/abs/1502.03167) (2015).
