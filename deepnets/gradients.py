"""Layer-by-layer gradient norms: run one batch backwards through any model and see what reaches each layer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTED_LAYERS = (nn.Conv2d, nn.Linear)


def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   layer_types: tuple = WEIGHTED_LAYERS) -> dict[str, float]:
    """{layer name: L2 norm of d(loss)/d(weight)} for each conv and linear layer, input to output.

    One forward and backward pass of cross-entropy on (`images`, `labels`) in train mode; the
    model's own gradients are left as they were.
    """
    was_training = model.training
    model.train()
    saved = {name: p.grad for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    F.cross_entropy(model(images.to(device)), labels.to(device)).backward()
    norms = {name: module.weight.grad.norm().item()
             for name, module in model.named_modules()
             if isinstance(module, layer_types) and module.weight.grad is not None}
    for name, parameter in model.named_parameters():
        parameter.grad = saved[name]
    model.train(was_training)
    return norms


def plot_gradient_norms(norms_by_model: dict[str, dict[str, float]], title: str = "Gradient norm per layer",
                        axis=None, label_every: int | None = None):
    """One log-scale line per model: gradient norm against depth, the first layer on the left."""
    if axis is None:
        _, axis = plt.subplots(figsize=(10, 4))
    longest: list[str] = []
    for model_name, norms in norms_by_model.items():
        # A gradient of exactly zero has no logarithm: draw it at the bottom of the axis instead.
        values = [max(value, 1e-30) for value in norms.values()]
        axis.plot(range(len(values)), values, marker="o", markersize=3, label=model_name)
        longest = max(longest, list(norms), key=len)
    step = label_every or max(1, len(longest) // 20)
    axis.set_xticks(range(0, len(longest), step))
    axis.set_xticklabels(longest[::step], rotation=60, ha="right", fontsize=8)
    axis.set(yscale="log", xlabel="layer (input → output)", ylabel="‖∂loss/∂weight‖", title=title)
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    axis.figure.tight_layout()
    return axis.figure
