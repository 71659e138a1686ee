"""Live training curves: one line per run in its panel, redrawn on a timer and when the block ends."""

import pytest

from deepnets.gradients import plot_gradient_norms
from deepnets.live import LiveCurves
from deepnets.plots import plot_training_curves
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


def drawn_log_axis(figure_kind, values):
    """The log axis of a live figure's or plot_training_curves' training loss, or of
    plot_gradient_norms' norms, drawn with `values`."""
    if figure_kind == "live":
        with LiveCurves(every_seconds=0) as live:
            live.track("run")(len(values), history_of(values))
        figure, axis = live.figure, live.axes["training loss"]
    elif figure_kind == "after training":
        figure = plot_training_curves({"run": history_of(values)})
        axis = figure.axes[0]
    else:
        figure = plot_gradient_norms({"run": {f"layer{i}": value for i, value in enumerate(values)}})
        axis = figure.axes[0]
    figure.canvas.draw()
    return axis


def labels_in_view(axis, which: str) -> list[str]:
    """The non-empty labels of the y axis's `which` ("major" or "minor") ticks inside its view."""
    bottom, top = axis.get_ylim()
    ticks = axis.yaxis.get_major_ticks() if which == "major" else axis.yaxis.get_minor_ticks()
    return [tick.label1.get_text() for tick in ticks
            if tick.label1.get_text() and bottom <= tick.get_loc() <= top]


@pytest.mark.parametrize("figure_kind", ["live", "after training", "gradient norms"])
@pytest.mark.parametrize("values", [[2.31, 2.30, 2.29, 2.28, 2.27], [2.3, 1.0, 0.3, 0.05]])
def test_log_axis_tick_labels_are_distinct_plain_numbers(figure_kind, values):
    """A narrow log axis (a run stuck near ln 10) once labelled every tick "2.3", and the figures
    drawn after training (losses, gradient norms) labelled it "2.3×10^0"."""
    axis = drawn_log_axis(figure_kind, values)
    labels = labels_in_view(axis, "major") + labels_in_view(axis, "minor")
    assert len(labels) >= 2, "too few labelled ticks to read the axis"
    assert len(set(labels)) == len(labels), f"repeated tick labels: {labels}"
    assert all(label.replace(".", "").isdigit() for label in labels), f"not plain numbers: {labels}"


def test_a_wide_loss_axis_labels_the_decades_and_only_the_2s_and_5s_between():
    """Over more than a decade, labelling every minor tick ran 0.06, 0.07, 0.08, 0.09 into 0.1."""
    losses = [2.4 * 0.98 ** step for step in range(200)]  # 2.4 to 0.043, smoothed over 20 steps
    with LiveCurves(every_seconds=0) as live:
        live.track("run")(len(losses), history_of(losses))
    axis = live.axes["training loss"]
    live.figure.canvas.draw()
    minor = labels_in_view(axis, "minor")
    assert minor and set(minor) <= {"0.05", "0.2", "0.5", "2"}, minor


def test_an_axis_over_many_decades_labels_only_the_powers_of_ten():
    """VGG's gradient norms at initialisation span 9 decades: their 2s and 5s ran together."""
    axis = drawn_log_axis("gradient norms", [10 ** -exponent for exponent in range(8)] + [5.0])
    minor, major = labels_in_view(axis, "minor"), labels_in_view(axis, "major")
    assert not minor, minor
    assert len(major) >= 4, major
