"""Day 13 Exercise 1 (day13_vgg): its trusted checks on the solution, the lesson plan's own answer,
the untouched release, wrong answers and tampering. Straight to run_checks (one sandboxed probe run
each, a few seconds), not through nbgrader: the checks alone decide the points."""

import sys

import pytest

from nbgrader_harness import REPO
import build_course

from autograder.checks import day13_vgg
from autograder.trusted import run_checks

sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import lesson_plan_day13  # noqa: E402

ASSIGNMENT = "day13_vgg"
LESSON = REPO / "source" / ASSIGNMENT / "vgg.py"
ALL = {check.grade_id for check in day13_vgg.CHECKS}
BLOCK_CHECKS = {"vgg_block_output_shape", "vgg_block_layers", "vgg_block_parameter_count"}
SOLUTION = build_course.solution_cells(LESSON)

STUB_BLOCK = "def vgg_block(num_convs, in_channels, out_channels):\n    raise NotImplementedError()\n"
STUB_VGG = ("class VGG16_MNIST(nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
            "        raise NotImplementedError()\n")


def passed(answers) -> set[str]:
    return {grade_id for grade_id, result in run_checks(ASSIGNMENT, answers, student="test").items()
            if result.passed}


def test_solution_passes_every_check():
    assert passed(SOLUTION) == ALL


def test_lesson_plan_answer_written_independently_passes_every_check():
    assert passed(lesson_plan_day13.VGG_ANSWERS) == ALL


def test_untouched_release_passes_nothing():
    assert passed({"vgg_block": STUB_BLOCK, "vgg16": STUB_VGG}) == set()


WRONG = {
    # No padding: every convolution shrinks the picture, so VGG-16 runs out of pixels.
    "no_padding": ({"vgg_block": SOLUTION["vgg_block"].replace(", padding=1", "")},
                   {"vgg_block_parameter_count", "vgg16_parameter_count"}),
    # ReLU forgotten: shapes and parameters right, negative outputs.
    "no_relu": ({"vgg_block": SOLUTION["vgg_block"].replace(
        "        layers.append(nn.ReLU(inplace=True))\n", "")},
                {"vgg_block_output_shape", "vgg_block_parameter_count", "vgg16_output_shape", "vgg16_blocks",
                 "vgg16_parameter_count"}),
    # Every convolution reads in_channels (the loop does not update it): fails where the block has
    # more than one convolution and the channels change.
    "channels_not_updated": ({"vgg_block": SOLUTION["vgg_block"].replace(
        "        in_channels = out_channels  # the next convolution reads this one's output\n", "")}, set()),
    # The ImageNet head (512 * 7 * 7 inputs) on 32x32 digits.
    "imagenet_head": ({"vgg16": SOLUTION["vgg16"].replace("nn.Linear(512 * 1 * 1, 4096)",
                                                          "nn.Linear(512 * 7 * 7, 4096)")},
                      BLOCK_CHECKS),  # vgg16_blocks runs the network, which fails at the head
    # Tampering: the counts and shapes the notebook reads are patched to say yes.
    "patched_counting": ({"vgg16": SOLUTION["vgg16"].replace("nn.Linear(4096, 4096)", "nn.Linear(4096, 4000)")
                          .replace("nn.Linear(4096, num_classes)", "nn.Linear(4000, num_classes)") + '''
import deepnets
deepnets.count_parameters = lambda model: 33_646_666
nn.Module.parameters = lambda self, recurse=True: iter([])
nn.Module.named_parameters = lambda self, *args, **kwargs: iter([])
'''}, BLOCK_CHECKS | {"vgg16_output_shape", "vgg16_blocks"}),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_answer_fails_exactly_its_checks(name):
    changes, expected = WRONG[name]
    assert passed({**SOLUTION, **changes}) == expected


def test_expected_parameter_count_is_the_solutions():
    import torch  # noqa: F401  (the solution cells use torch and nn)
    from torch import nn

    namespace = {"nn": nn}
    exec(SOLUTION["vgg_block"] + "\n" + SOLUTION["vgg16"], namespace)
    model = namespace["VGG16_MNIST"]()
    assert sum(p.numel() for p in model.parameters()) == day13_vgg.vgg16_parameters()
