"""Figures the lessons share: training curves of several models on one plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
import numpy as np

from deepnets.training import History


def smooth(values, window: int) -> np.ndarray:
    """Moving average over `window` steps (shorter at the start), so noisy losses read as a trend."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    averaged = (cumulative[window:] - cumulative[:-window]) / window
    head = cumulative[1:window] / np.arange(1, window)
    return np.concatenate([head, averaged])


def plot_training_curves(histories: dict[str, History], title: str = "Training curves",
                         train_accuracy: bool = False):
    """Training loss per step and test accuracy during training, one colour per model, one figure.

    Test accuracy is drawn at every point `fit` measured it (several times an epoch), so a
    one-epoch run draws a curve. With `train_accuracy`, the accuracy plot also shows each
    model's training accuracy per step (moving average, dashed).
    """
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(12, 4))
    for name, history in histories.items():
        steps = np.arange(1, len(history.step_loss) + 1)
        window = max(1, len(steps) // 25)
        line, = loss_axis.plot(steps, smooth(history.step_loss, window), label=name)
        accuracy_axis.plot(history.eval_steps, history.eval_accuracy, marker="o", markersize=4,
                           color=line.get_color(), label=name)
        if train_accuracy:
            accuracy_axis.plot(steps, smooth(history.step_accuracy, window), linestyle="--",
                               color=line.get_color())
    loss_axis.set(xlabel="training step", ylabel="training loss (moving average)",
                  yscale="log", title="Training loss")
    accuracy_axis.set(xlabel="training step", ylabel="accuracy (%)",
                      title="Accuracy during training" if train_accuracy else "Test accuracy during training")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
    loss_axis.legend()
    if train_accuracy:  # the colours are named on the left; here, what each line style means
        accuracy_axis.legend(handles=[
            Line2D([], [], color="grey", linestyle="--", label="training (moving average)"),
            Line2D([], [], color="grey", marker="o", label="test (eval mode)")])
    else:
        accuracy_axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
