"""Subtly wrong Day 13 submissions, made by editing the course solution's answer cells.

Each mutation names the checks it must fail; every other autograded check must still pass.
The end-to-end grading test submits them, and the calibration runs their networks through the
learning checks, to confirm that the grader's seed gives the expected result with a margin.
"""

# name -> (answer cell, [(solution text, replacement), ...], checks it must fail)
MUTATIONS = {
    "projection_everywhere": (
        "residual_block",
        [("if stride != 1 or in_channels != out_channels:", "if True:  # a projection even when shapes match")],
        {"block_identity_shortcut", "block_gradient_through_skip", "block_parameter_count",
         "resnet18_parameter_count", "deep_resnet_parameter_count"},
    ),
    "stride_on_conv2": (
        "residual_block",
        [("nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)",
          "nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)"),
         ("nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)",
          "nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False)")],
        {"block_downsamples_in_first_conv"},
    ),
    "no_skip": (
        "residual_block",
        [("return F.relu(out + self.shortcut(x))", "return F.relu(out)")],
        # Without skips the 34-layer network no longer fits the grader's batch in 8 steps (the
        # degradation the lesson is about); at 18 layers it still does.
        {"block_skip_connection", "block_gradient_through_skip", "deep_resnet_learns"},
    ),
}


def mutate(answers: dict[str, str], name: str) -> dict[str, str]:
    """`answers` (grade_id -> source) with mutation `name` applied; fails loudly if it does not apply."""
    cell, edits, _ = MUTATIONS[name]
    source = answers[cell]
    for old, new in edits:
        assert source.count(old) == 1, f"mutation {name}: {old!r} is not in the solution exactly once"
        source = source.replace(old, new)
    return {**answers, cell: source}


def must_fail(name: str) -> set[str]:
    return MUTATIONS[name][2]
