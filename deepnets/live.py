"""Training curves that redraw while the models train, so a live audience sees the runs progress."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np

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


class LiveCurves:
    """A figure of training loss per step, one line per run, redrawn every few seconds while training.

        with LiveCurves(panels=["plain", "residual"]) as live:
            fit(model, data, on_step=live.track("depth 20", panel="plain"))

    Each panel is one axis (shared log-scale loss axis); the last redraw happens when the
    `with` block ends, so the notebook keeps the final figure.
    """

    def __init__(self, panels=("training loss",), title: str = "", every_seconds: float = 3.0,
                 window: int = 20, ylim: tuple[float, float] | None = None):
        self.every_seconds, self.window, self.ylim = every_seconds, window, ylim
        self.figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1, 4),
                                         sharey=True, squeeze=False)
        self.axes = dict(zip(panels, axes[0]))
        self.runs: dict[str, tuple[str, History]] = {}
        if title:
            self.figure.suptitle(title)
        self._last_draw = 0.0
        self._draw()
        self._handle = _show(self.figure)

    def track(self, name: str, panel: str | None = None):
        """An `on_step` callback for `fit` that draws run `name` in `panel` (the first by default)."""
        panel = panel if panel is not None else next(iter(self.axes))
        if panel not in self.axes:
            raise ValueError(f"no panel {panel!r}; the panels are {list(self.axes)}")

        def on_step(step: int, history: History) -> None:
            self.runs[name] = (panel, history)
            if time.perf_counter() - self._last_draw >= self.every_seconds:
                self.update()

        return on_step

    def update(self) -> None:
        """Redraw every run now."""
        self._draw()
        if self._handle is not None:
            self._handle.update(self.figure)

    def _draw(self) -> None:
        for panel, axis in self.axes.items():
            axis.clear()
            for name, (run_panel, history) in self.runs.items():
                if run_panel == panel and history.step_loss:
                    steps = np.arange(1, len(history.step_loss) + 1)
                    axis.plot(steps, smooth(history.step_loss, self.window), label=name)
            axis.set(title=panel, xlabel="training step", yscale="log")
            axis.grid(alpha=0.3, which="both")
            if axis.lines:
                axis.legend(fontsize=8)
        first = next(iter(self.axes.values()))
        first.set_ylabel(f"training loss (mean of {self.window} steps)")
        if self.ylim:
            first.set_ylim(*self.ylim)
        self.figure.tight_layout()
        self._last_draw = time.perf_counter()

    def __enter__(self) -> "LiveCurves":
        return self

    def __exit__(self, *exc_info) -> None:
        self.update()
