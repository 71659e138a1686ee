"""Layer-by-layer gradient norms: run one batch backwards through any model and see what reaches each layer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from deepnets.plots import log_scale
from deepnets.training import measured_as_is

WEIGHTED_LAYERS = (nn.Conv2d, nn.Linear)


def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   layer_types: tuple = WEIGHTED_LAYERS) -> dict[str, float]:
    """{layer name: L2 norm of d(loss)/d(weight)} for each conv and linear layer, input to output.

    One forward and backward pass of cross-entropy on (`images`, `labels`) in train mode; the
    model's own gradients and BatchNorm's running statistics are left as they were.
    """
    saved = {name: p.grad for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    with measured_as_is(model, train_mode=True):
        F.cross_entropy(model(images.to(device)), labels.to(device)).backward()
    norms = {name: module.weight.grad.norm().item()
             for name, module in model.named_modules()
             if isinstance(module, layer_types) and module.weight.grad is not None}
    for name, parameter in model.named_parameters():
        parameter.grad = saved[name]
    return norms


def input_gradient(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    """d(loss)/dx when the gradient arriving at `module`'s output is `upstream` (train mode).

    `upstream` stands in for what the layers above would send back. (Summing the output instead
    would be misleading: in train mode a BatchNorm's outputs sum to a constant, so the gradient
    of their sum is zero whatever the network.)
    """
    x = x.detach().clone().requires_grad_(True)
    # BatchNorm's running statistics are put back after the backward pass, which reads them.
    with measured_as_is(module, train_mode=True):
        output = module(x)
        (gradient,) = torch.autograd.grad(output, x, grad_outputs=upstream)
    return gradient


@torch.no_grad()
def activation_stds(model: nn.Module, images: torch.Tensor,
                    layer_types: tuple = WEIGHTED_LAYERS) -> dict[str, float]:
    """{layer name: how much its output varies from image to image} for each conv and linear layer.

    The spread is the standard deviation across the images of the batch, averaged over the
    layer's units: near zero, the layer outputs the same thing whatever the input. Measured in
    train mode, as during training (BatchNorm uses the batch's statistics), but with dropout
    off, whose noise does not come from the input; the model is left as it was.
    """
    spreads, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, layer_types):
            hooks.append(module.register_forward_hook(
                lambda module, inputs, output, name=name: spreads.__setitem__(
                    name, output.float().std(dim=0).mean().item())))
    try:
        with torch.no_grad(), measured_as_is(model, train_mode=True, dropout=False):
            model(images.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return spreads


def _merged_order(name_lists: list[list[str]]) -> list[str]:
    """All names of several input-to-output lists in one order: shared layers line up."""
    merged: list[str] = []
    for names in name_lists:
        position = 0
        for name in names:
            if name in merged:
                position = merged.index(name) + 1
            else:
                merged.insert(position, name)
                position += 1
    return merged


def plot_gradient_norms(norms_by_model: dict[str, dict[str, float]], title: str = "Gradient norm per layer",
                        axis=None, label_every: int | None = None):
    """One log-scale line per model: gradient norm against depth, the first layer on the left.

    Layers are placed by name, so a layer two models share sits at the same position, and a
    layer only one model has (a projection shortcut, say) gets a place of its own.
    """
    if axis is None:
        _, axis = plt.subplots(figsize=(10, 4))
    order = _merged_order([list(norms) for norms in norms_by_model.values()])
    position = {name: index for index, name in enumerate(order)}
    for model_name, norms in norms_by_model.items():
        # A gradient of exactly zero has no logarithm: draw it at the bottom of the axis instead.
        values = [max(value, 1e-30) for value in norms.values()]
        axis.plot([position[name] for name in norms], values, marker="o", markersize=3, label=model_name)
    step = label_every or max(1, len(order) // 20)
    axis.set_xticks(range(0, len(order), step))
    axis.set_xticklabels(order[::step], rotation=60, ha="right", fontsize=8)
    axis.set(xlabel="layer (input → output)", ylabel="‖∂loss/∂weight‖", title=title)
    log_scale(axis)  # ticks read 2, 4, 6, 10, not 2×10^0
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    axis.figure.tight_layout()
    return axis.figure
