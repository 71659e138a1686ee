"""Training curves that redraw while the models train, so a live audience sees the runs progress."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np

from deepnets.plots import log_scale, smooth
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
            axis.set(title=panel, xlabel="training step")
            log_scale(axis)
            axis.grid(alpha=0.3, which="both")
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
