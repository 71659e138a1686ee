"""Day 13 Exercise 1 (day13_vgg): its checks on the solution, the lesson plan's own answer, the
untouched release, wrong answers and tampering. Straight to run_checks (the sandboxed export, then
the checks' own process: about 10 s each), not through nbgrader: the checks alone decide the points."""

import sys

import pytest
import torch
from torch import nn

from nbgrader_harness import REPO
import build_course

from autograder.checks import day13_vgg
from autograder.trusted import run_checks

sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import lesson_plan_day13  # noqa: E402

ASSIGNMENT = "day13_vgg"
LESSON = REPO / "source" / ASSIGNMENT / "vgg.py"
lesson = day13_vgg.lesson
ALL = set(lesson.checks)
BLOCK_CHECKS = {"vgg_block_output_shape", "vgg_block_layers", "vgg_block_parameter_count"}
SOLUTION = build_course.solution_cells(LESSON)

STUB_BLOCK = "def vgg_block(num_convs, in_channels, out_channels):\n    raise NotImplementedError()\n"
STUB_VGG = ("class VGG16_MNIST(nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
            "        raise NotImplementedError()\n")


def passed(answers) -> set[str]:
    return {grade_id for grade_id, result in run_checks(ASSIGNMENT, answers, student="test").items()
            if result.passed}


def test_every_autograded_cell_is_decided_by_its_check():
    """One check per autograded test cell, and each cell's hidden part is exactly its verify call."""
    cells = {cell.metadata["nbgrader"]["grade_id"]: cell.source
             for cell in build_course.source_notebook(LESSON).cells
             if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
             and not cell.metadata["nbgrader"].get("solution")}
    assert set(cells) == ALL
    for grade_id, source in cells.items():
        hidden = source.split("### BEGIN HIDDEN TESTS\n", 1)[1].split("### END HIDDEN TESTS", 1)[0]
        assert hidden == f'from autograder.checks.{ASSIGNMENT} import lesson\n\nlesson.verify("{grade_id}", globals())\n'
    assert lesson.name == ASSIGNMENT and set(lesson.answer_cells) <= set(SOLUTION)


def test_lesson_plan_answer_passes_every_check_in_the_notebook():
    """lesson.verify, the hidden tests' path: the lesson plan's classes exported and rebuilt in-process."""
    namespace = {"torch": torch, "nn": nn}
    exec(lesson_plan_day13.VGG_ANSWERS["vgg_block"] + "\n" + lesson_plan_day13.VGG_ANSWERS["vgg16"], namespace)
    for grade_id in sorted(ALL):
        lesson.verify(grade_id, namespace)


def test_solution_passes_every_check():
    assert passed(SOLUTION) == ALL


def test_lesson_plan_answer_written_independently_passes_every_check():
    assert passed(lesson_plan_day13.VGG_ANSWERS) == ALL


def test_untouched_release_passes_nothing():
    assert passed({"vgg_block": STUB_BLOCK, "vgg16": STUB_VGG}) == set()


WRONG = {
    # No padding: every convolution shrinks the picture, so VGG-16 runs out of pixels. Its blocks
    # still have the right parameters; VGG-16 itself cannot run on 32x32 images, so nothing of it
    # is exported and none of its checks (its parameter count included) can pass.
    "no_padding": ({"vgg_block": SOLUTION["vgg_block"].replace(", padding=1", "")},
                   {"vgg_block_parameter_count"}),
    # ReLU forgotten: shapes and parameters right, negative outputs.
    "no_relu": ({"vgg_block": SOLUTION["vgg_block"].replace(
        "        layers.append(nn.ReLU(inplace=True))\n", "")},
                {"vgg_block_output_shape", "vgg_block_parameter_count", "vgg16_output_shape", "vgg16_blocks",
                 "vgg16_parameter_count"}),
    # One ReLU after the last convolution only: the output is still >= 0, but the convolutions
    # before it are not followed by one.
    "one_relu_at_the_end": ({"vgg_block": SOLUTION["vgg_block"].replace(
        "        layers.append(nn.ReLU(inplace=True))\n", "").replace(
        "    layers.append(nn.MaxPool2d", "    layers.append(nn.ReLU())\n    layers.append(nn.MaxPool2d")},
        ALL - {"vgg_block_layers"}),
    # Every convolution reads in_channels (the loop does not update it): fails where the block has
    # more than one convolution and the channels change.
    "channels_not_updated": ({"vgg_block": SOLUTION["vgg_block"].replace(
        "        in_channels = out_channels  # the next convolution reads this one's output\n", "")}, set()),
    # The ImageNet head (512 * 7 * 7 inputs) on 32x32 digits.
    "imagenet_head": ({"vgg16": SOLUTION["vgg16"].replace("nn.Linear(512 * 1 * 1, 4096)",
                                                          "nn.Linear(512 * 7 * 7, 4096)")},
                      BLOCK_CHECKS),  # vgg16_blocks runs the network, which fails at the head
    # Tampering: the counts and shapes the notebook reads are patched to say yes (the export uses
    # nn.Module as PyTorch defines it, so its models are graded as what they are).
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
    namespace = {"nn": nn}
    exec(SOLUTION["vgg_block"] + "\n" + SOLUTION["vgg16"], namespace)
    model = namespace["VGG16_MNIST"]()
    assert sum(p.numel() for p in model.parameters()) == day13_vgg.vgg16_parameters()
