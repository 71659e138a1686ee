"""Figures the lessons share: training curves of several models on one plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter
import numpy as np

from deepnets.training import History


# A log axis spanning this many decades or more labels its powers of ten only.
LABEL_2S_AND_5S_BELOW_DECADES = 3


class DistinctLabels(Formatter):
    """Tick labels with as few significant digits as keep them apart: 0.5 (not 5 x 10^-1), and
    2.26, 2.28, 2.3 on a narrow log axis where two digits would print "2.3" for every tick."""

    def __init__(self, digits: int = 2, minor: bool = False):
        self.digits = self.least = digits
        self.minor = minor

    def format_ticks(self, values):
        for self.digits in range(self.least, 8):
            labels = [f"{value:.{self.digits}g}" for value in values]
            if len(set(labels)) == len(labels):
                break
        decades = self._decades()
        if self.minor and decades >= 1:
            # The powers of ten are labelled already: of the minor ticks keep 2s and 5s only, or
            # 0.06, 0.07, 0.08 and 0.09 run into each other and into 0.1; over many decades none
            # (VGG's gradient norms at initialisation span 9, and their 2s and 5s ran together).
            kept = (2, 5) if decades < LABEL_2S_AND_5S_BELOW_DECADES else ()
            labels = [label if _leading_digit(value) in kept else "" for label, value in zip(labels, values)]
        return labels

    def _decades(self) -> float:
        """How many powers of ten the axis spans (0 when it has no positive view)."""
        low, high = self.axis.get_view_interval() if self.axis is not None else (0, 0)
        return float(np.log10(high / low)) if low > 0 and high > low else 0.0

    def __call__(self, value, position=None):
        return f"{value:.{self.digits}g}"


def _leading_digit(value: float) -> int:
    return round(value / 10 ** np.floor(np.log10(value))) if value > 0 else 0


def log_scale(axis) -> None:
    """Put `axis`'s y axis on a log scale whose tick labels read as plain numbers (DistinctLabels)."""
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(DistinctLabels())
    axis.yaxis.set_minor_formatter(DistinctLabels(minor=True))


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
    # The runs are named once, below both panels: a legend inside a panel hid the end of a curve
    # (the BatchNorm experiment's six runs fill the accuracy panel).
    legend_rows = -(-len(histories) // LEGEND_COLUMNS)
    legend_inches = LEGEND_ROW_INCHES * legend_rows
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(12, 4 + legend_inches))
    for name, history in histories.items():
        steps = np.arange(1, len(history.step_loss) + 1)
        window = max(1, len(steps) // 25)
        line, = loss_axis.plot(steps, smooth(history.step_loss, window), label=name)
        accuracy_axis.plot(history.eval_steps, history.eval_accuracy, marker="o", markersize=4,
                           color=line.get_color(), label=name)
        if train_accuracy:
            accuracy_axis.plot(steps, smooth(history.step_accuracy, window), linestyle="--",
                               color=line.get_color())
    loss_axis.set(xlabel="training step", ylabel="training loss (moving average)", title="Training loss")
    log_scale(loss_axis)
    accuracy_axis.set(xlabel="training step", ylabel="accuracy (%)",
                      title="Accuracy during training" if train_accuracy else "Test accuracy during training")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
    handles, labels = loss_axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), LEGEND_COLUMNS), frameon=False)
    if train_accuracy:  # what each line style means
        accuracy_axis.legend(handles=[
            Line2D([], [], color="grey", linestyle="--", label="training (moving average)"),
            Line2D([], [], color="grey", marker="o", label="test (eval mode)")])
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, legend_inches / figure.get_figheight(), 1, 1))
    return figure


# The shared legend of plot_training_curves: runs per row, and the height each row adds.
LEGEND_COLUMNS = 3
LEGEND_ROW_INCHES = 0.3
