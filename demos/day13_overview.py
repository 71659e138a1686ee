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
# # Week 3, Day 13 · Instructor overview: modern architectures, VGG and ResNet
#
# A full day (two sessions of four hours) of mostly self-paced work: videos and readings in
# the morning, then five coding exercises and a mini-challenge in two graded notebooks:
#
# * `release/day13_vgg/vgg.ipynb` (assignment `day13_vgg`): Exercise 1, VGG. Parts A and B
#   (write `vgg_block` and VGG-16, 6 points, autograded); Part C trains the student's own
#   VGG-16 with and without BatchNorm (read and run). Its instructor copy,
#   `notebooks/vgg.ipynb`, is the live demo of Part C.
# * `release/day13_vgg_resnet/resnet.ipynb` (assignment `day13_vgg_resnet`): Exercises 2 to 5,
#   the mini-challenge and the reflection.
#
# The Session 7 demo, `notebooks/session07_vanishing_gradients.ipynb`, shows the same effects
# live in minutes and can open the afternoon.
#
# **Daily goals.** Learners
# * understand VGG's philosophy: deeper networks built from small (3×3) filters;
# * learn ResNet and skip connections;
# * understand the vanishing gradient problem and how ResNet solves it;
# * implement VGG-style blocks and ResNet blocks;
# * compare the effect of network depth;
# * visualize gradient flow.

# %% [markdown]
# ## Timeline
#
# Minutes are the lesson plan's. The computing in each slot (the instructor's wait when running
# a demo live, a student's when running the cells; the rest is reading and writing code) is
# printed after this table, part by part, as `make demo` last measured it in the demo budget
# on a 2-core laptop-class CPU; time `make demo` on your own laptop before class.
#
# | when | activity | notebook, part | how | minutes |
# | --- | --- | --- | --- | --- |
# | morning | optional daily check-in with peers on Teams | | | 15 |
# | morning | video learning (the five videos below) | | self-paced | 90 |
# | morning | reference material (readings below) | | self-paced | 30 |
# | morning | Exercise 1: VGG blocks and VGG-16 | `vgg.ipynb` Parts A, B (6 points) | self-paced | 60 |
# | morning | Exercise 1, continued: VGG-16 without and with BatchNorm | `vgg.ipynb` Part C | live demo (`notebooks/vgg.ipynb`), then read and run | within the 60 |
# | morning | Exercise 2: understanding residual blocks | `resnet.ipynb` Part A (10 points) | self-paced | 60 |
# | afternoon | Exercise 3: implement ResNet-18 | `resnet.ipynb` Part B (6 points) | self-paced | 70 |
# | afternoon | Exercise 4: compare plain and residual networks | `resnet.ipynb`, "Plain against residual, fairly" | self-paced, read and run | 60 |
# | afternoon | Exercise 5: visualise gradient flow | `resnet.ipynb`, "Gradient flow" (18 layers; 34 after Part C) | self-paced, read and run | 40 |
# | afternoon | mini-challenge: design a deeper ResNet | `resnet.ipynb` Part C: core (5 points) in class, open part (4 points) | self-paced; the open part's report can be homework | 50 |
# | afternoon | reflection and consolidation | `resnet.ipynb` Part D: seven prompts, all graded (13 points) | self-paced or homework | 30 |
#
# The lesson plan asks for "two or three" reflection prompts; this course grades all seven,
# because each is answered from the day's own outputs in a few sentences.

# %%
from deepnets.budget import print_measured_times

print_measured_times("../benchmarks/results/demo_timings.json", ["vgg.ipynb", "resnet.ipynb"])

# %% [markdown]
# ## Opening question and talking points
#
# * **Opening question:** *"When researchers added layers to a network that already worked,
#   it got worse, and not only on the test set: the training error went up too. Why can that
#   not be overfitting, and what could cause it?"*
# * **VGG:** stack 3×3 convolutions. Two of them see a 5×5 patch, as one 5×5 convolution
#   does, with 2 × 9 = 18 instead of 25 weights per input-output channel pair (28% fewer) and
#   two non-linearities instead of one.
# * **The degradation problem:** deeper plain networks reached a *higher training* error, so
#   the optimizer, not the model's capacity, is the bottleneck. Vanishing gradients are part
#   of the story; batch normalization fixes much of that, and the degradation remains.
# * **ResNet's answer:** learn the residual `F(x) = H(x) - x` and output `F(x) + x`. If the best
#   block is the identity, it only has to learn `F(x) = 0`; and the gradient reaches earlier
#   layers through the `+ x` without passing through the block's weights.
# * **Show it:** the Session 7 demo's gradient-norm figure and its training-loss-against-depth
#   figure are Exercises 4 and 5 in miniature, and compute in minutes on a laptop.

# %% [markdown]
# ## Videos (90 minutes)
#
# * [VGG Networks Explained](https://www.youtube.com/watch?v=jlHksMZIcSE) (15 min): the
#   philosophy of very deep networks.
# * [ResNet Explained](https://www.youtube.com/watch?v=GWt6Fu05voI), Yannic Kilcher (30 min):
#   residual learning in depth.
# * [ResNet: Why it works](https://www.youtube.com/watch?v=RYth6EbBUqM) (15 min): skip connections.
# * [Batch Normalization Explained](https://www.youtube.com/watch?v=dXB-KQYkzNU), StatQuest
#   (15 min): critical for training deep networks.
# * [Vanishing Gradients Problem](https://www.youtube.com/watch?v=SKMpmAOUa2Q) (15 min): why
#   deep networks were hard to train.
#
# ## Readings (30 minutes)
#
# * D2L, [Networks Using Blocks (VGG)](https://d2l.ai/chapter_convolutional-modern/vgg.html).
# * D2L, [Residual Networks (ResNet)](https://d2l.ai/chapter_convolutional-modern/resnet.html).
# * Optional: the introduction of He et al., [Deep Residual Learning for Image
#   Recognition](https://arxiv.org/abs/1512.03385).

# %% [markdown]
# ## Reflection and consolidation (30 minutes)
#
# Learners review VGG and ResNet, and answer all seven prompts in `resnet.ipynb`'s Part D (graded,
# 13 points; the lesson plan asked for two or three):
#
# * What was the most important concept you learned today?
# * Why do skip connections solve the vanishing gradient problem?
# * How does VGG's design philosophy differ from AlexNet?
# * What makes ResNet such a breakthrough?
# * How do gradients flow differently in plain vs residual networks?
# * What would you consider when choosing network depth?
# * What questions do you have about modern architectures?
#
# **Key insights to close on.** Small filters stacked deep (VGG) buy receptive field cheaply;
# depth alone stops paying off when the optimizer cannot train it; BatchNorm and identity
# shortcuts (ResNet) are what made 50, 101 and 152 layers trainable.
#
# **Next:** Day 14, transfer learning and data augmentation.
