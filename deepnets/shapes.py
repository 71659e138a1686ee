"""Shape tables: what each part of a model outputs, traced by running it, not typed in by hand."""

from __future__ import annotations

import torch
from torch import nn

from deepnets.training import count_parameters


def trace_shapes(model: nn.Module, x: torch.Tensor, depth: int = 1) -> list[tuple[str, str, tuple, int]]:
    """(name, type, output shape, parameters) of each submodule `depth` levels down, in the order
    the forward pass runs them (a module that runs twice appears twice). Runs in eval mode."""
    rows, hooks = [], []
    for name, module in model.named_modules():
        if name and name.count(".") == depth - 1:
            hooks.append(module.register_forward_hook(
                lambda module, inputs, output, name=name: rows.append(
                    (name, type(module).__name__, tuple(output.shape), count_parameters(module)))))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return rows


def print_shape_table(model: nn.Module, x: torch.Tensor, depth: int = 1) -> None:
    """Print `trace_shapes` as a table, starting from the input and ending with the total."""
    print(f"{'layer':<14} {'type':<20} {'output shape':<20} {'parameters':>12}")
    print(f"{'(input)':<14} {'':<20} {str(tuple(x.shape)):<20} {'':>12}")
    for name, kind, shape, parameters in trace_shapes(model, x, depth):
        print(f"{name:<14} {kind:<20} {str(shape):<20} {parameters:>12,}")
    print(f"{'total':<14} {'':<20} {'':<20} {count_parameters(model):>12,}")
