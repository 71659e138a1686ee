"""Live training curves: one line per run in its panel, redrawn on a timer and when the block ends."""

import pytest

from deepnets.live import LiveCurves
from deepnets.training import History


def history_of(losses):
    history = History()
    history.step_loss.extend(losses)
    return history


def test_runs_are_drawn_in_their_panels():
    with LiveCurves(panels=["plain", "residual"], every_seconds=0) as live:
        live.track("depth 8", panel="plain")(3, history_of([2.3, 2.0, 1.5]))
        live.track("depth 56", panel="plain")(2, history_of([2.3, 2.3]))
        live.track("depth 8", panel="residual")(2, history_of([2.3, 1.0]))  # same name, other panel
        live.track("depth 56", panel="residual")  # a callback that never ran draws nothing
    assert [len(axis.lines) for axis in live.axes.values()] == [2, 1]
    assert [text.get_text() for text in live.axes["plain"].get_legend().get_texts()] == \
        ["depth 8", "depth 56"]


def test_redraws_wait_for_the_timer_and_the_end_of_the_block():
    live = LiveCurves(every_seconds=3600)
    on_step = live.track("run")
    history = history_of([1.0])
    on_step(1, history)  # the first step draws at once
    history.step_loss.extend([0.5, 0.25])
    on_step(3, history)
    (line,) = live.axes["training loss"].lines
    assert len(line.get_xdata()) == 1, "redrew before its timer"
    live.__exit__(None, None, None)
    assert len(line.get_xdata()) == 3


def test_unknown_panel_is_a_clear_error():
    with pytest.raises(ValueError, match="no panel 'deep'"):
        LiveCurves(panels=["plain"]).track("x", panel="deep")
