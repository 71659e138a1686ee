"""Training curves that redraw while the models train, so a live audience sees the runs progress."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import Formatter

from deepnets.plots import smooth
from deepnets.training import History


def _show(figure):
    """Display `figure` in a notebook and return a handle to redraw it in place (None elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    handle = display(figure, display_id=True)
    plt.close(figure)  # shown through the handle only, not a second time when the cell ends
    return handle


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
        if self.minor and self._spans_a_decade():
            # The powers of ten are labelled already: of the minor ticks keep 2s and 5s only, or
            # 0.06, 0.07, 0.08 and 0.09 run into each other and into 0.1.
            labels = [label if _leading_digit(value) in (2, 5) else "" for label, value in zip(labels, values)]
        return labels

    def _spans_a_decade(self) -> bool:
        low, high = self.axis.get_view_interval() if self.axis is not None else (0, 0)
        return low > 0 and high / low >= 10

    def __call__(self, value, position=None):
        return f"{value:.{self.digits}g}"


def _leading_digit(value: float) -> int:
    return round(value / 10 ** np.floor(np.log10(value))) if value > 0 else 0


class LiveCurves:
    """A figure of training loss per step, one line per run, redrawn every few seconds while training.

        with LiveCurves(panels=["plain", "residual"]) as live:
            fit(model, data, on_step=live.track("depth 20", panel="plain"))

    Each panel is one axis (shared log-scale loss axis); the last redraw happens when the
    `with` block ends, so the notebook keeps the final figure. Redraws are spaced so that
    drawing takes at most about a tenth of the time.
    """

    def __init__(self, panels=("training loss",), title: str = "", every_seconds: float = 3.0,
                 window: int = 20):
        self.every_seconds, self.window = every_seconds, window
        self.figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1, 4),
                                         sharey=True, squeeze=False)
        self.axes = dict(zip(panels, axes[0]))
        for panel, axis in self.axes.items():
            axis.set(title=panel, xlabel="training step", yscale="log")
            axis.grid(alpha=0.3, which="both")
            axis.yaxis.set_major_formatter(DistinctLabels())
            axis.yaxis.set_minor_formatter(DistinctLabels(minor=True))
        next(iter(self.axes.values())).set_ylabel(f"training loss (mean of {window} steps)")
        if title:
            self.figure.suptitle(title)
        self.figure.tight_layout()
        self.runs: dict[tuple[str, str], History] = {}  # (panel, name) -> its history
        self.lines: dict[tuple[str, str], plt.Line2D] = {}
        self._next_draw = 0.0
        self._handle = _show(self.figure)

    def track(self, name: str, panel: str | None = None):
        """An `on_step` callback for `fit` that draws run `name` in `panel` (the first by default)."""
        panel = panel if panel is not None else next(iter(self.axes))
        if panel not in self.axes:
            raise ValueError(f"no panel {panel!r}; the panels are {list(self.axes)}")

        def on_step(step: int, history: History) -> None:
            self.runs[panel, name] = history
            if time.perf_counter() >= self._next_draw:
                self.update()

        return on_step

    def update(self) -> None:
        """Redraw every run now."""
        start = time.perf_counter()
        self._draw()
        if self._handle is not None:
            self._handle.update(self.figure)
        took = time.perf_counter() - start
        self._next_draw = time.perf_counter() + max(self.every_seconds, 10 * took)

    def _draw(self) -> None:
        new_lines = False
        for (panel, name), history in self.runs.items():
            if not history.step_loss:
                continue
            steps = np.arange(1, len(history.step_loss) + 1)
            values = smooth(history.step_loss, self.window)
            if (panel, name) not in self.lines:
                self.lines[panel, name], = self.axes[panel].plot(steps, values, label=name)
                new_lines = True
            else:
                self.lines[panel, name].set_data(steps, values)
        for axis in self.axes.values():
            axis.relim()
            axis.autoscale_view()
            if new_lines and axis.lines:
                axis.legend(fontsize=8)
        if new_lines:
            self.figure.tight_layout()

    def __enter__(self) -> "LiveCurves":
        return self

    def __exit__(self, *exc_info) -> None:
        self.update()
