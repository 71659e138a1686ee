"""Day 13 submissions against the checks (autograder/checks/day13_vgg_resnet.py), exact scores.

Each case goes straight to run_checks (the sandboxed export, then the checks' own process), not
through nbgrader and the class pipeline, which tests/test_grade_class.py covers once.

* The lesson plan's own answer passes every check; each subtly wrong submission of
  autograder/calibration/day13_mutants.py fails exactly the checks it names.
* BASE is an honest but imperfect answer: a ResidualBlock that forgets to add its shortcut, and
  ResNet18 and DeepResNet left as the release's stubs. It passes the 8 block checks that do not
  need the skip connection, and the bottleneck check, which passes when the bottleneck (an
  option of the open part) is not attempted. Tampering added to BASE must never pass a check
  BASE fails.
"""

import sys

import pytest

from autograder.trusted import run_checks
from nbgrader_harness import REPO, answer_namespace, solution_answers

sys.path.insert(0, str(REPO / "autograder" / "calibration"))
import day13_mutants  # noqa: E402  (subtly wrong submissions, and the checks each must fail)
import lesson_plan_day13  # noqa: E402  (the lesson plan's own answer, written independently)

ASSIGNMENT = "day13_vgg_resnet"


def failed(answers, student: str) -> set[str]:
    return {grade_id for grade_id, result in run_checks(ASSIGNMENT, answers, student=student).items()
            if not result.passed}


def test_lesson_plan_answer_written_independently_passes_every_check():
    from autograder.checks.day13_vgg_resnet import lesson

    assert failed(lesson_plan_day13.ANSWERS, "lesson-plan") == set()
    # Where the seconds went (the grading benchmark's breakdown): every check, inside its process.
    timings = run_checks.last_timings
    assert {f"check {grade_id}" for grade_id in lesson.checks} <= set(timings)
    assert 0 < timings["export sandbox: models built and exported"] <= timings["export sandbox"]
    assert 0 < sum(timings[f"check {grade_id}"] for grade_id in lesson.checks) <= timings["checks process"]


@pytest.mark.parametrize("mutation", sorted(day13_mutants.MUTATIONS))
def test_subtly_wrong_submission_fails_exactly_its_checks(mutation):
    from autograder.checks.day13_vgg_resnet import lesson

    expected = day13_mutants.must_fail(mutation)
    assert expected <= set(lesson.checks), "a mutation names a check that does not exist"
    answers = day13_mutants.mutate(solution_answers(ASSIGNMENT, "resnet"), mutation)
    assert failed(answers, f"mutant-{mutation}") == expected

NO_SKIP_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))   # forgot "+ self.shortcut(x)"
'''


def stub(name: str) -> str:
    return (f"class {name}(nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
            f"        # YOUR CODE HERE\n        raise NotImplementedError()\n")


BASE = {"residual_block": NO_SKIP_BLOCK, "resnet18": stub("ResNet18"), "deep_resnet": stub("DeepResNet")}
BASE_PASSES = {"block_keeps_shape", "block_changes_channels", "block_stride_halves_size",
               "block_identity_shortcut", "block_projection_shortcut", "block_downsamples_in_first_conv",
               "block_relu_after_addition", "block_parameter_count", "bottleneck_block_if_attempted"}


def with_tamper(extra: str = "", block: str = NO_SKIP_BLOCK) -> dict[str, str]:
    return {**BASE, "residual_block": block + "\n" + extra}


def returning(expression: str, prelude: str = "") -> str:
    """NO_SKIP_BLOCK whose forward returns `expression` (of `out`, the residual branch before ReLU)."""
    return prelude + NO_SKIP_BLOCK.replace(
        "return F.relu(self.bn2(self.conv2(out)))   # forgot \"+ self.shortcut(x)\"",
        f"out = self.bn2(self.conv2(out))\n        return {expression}")


# name -> (answers, the checks it must pass: exactly these)
TAMPER = {
    # The notebook's asserts compare with torch and numpy: make every comparison say yes.
    "patched_comparisons": (with_tamper('''
import numpy
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)
torch.Tensor.__ge__ = lambda self, other: torch.tensor(True)
torch.Tensor.all = lambda self, *args, **kwargs: torch.tensor(True)
numpy.allclose = lambda *args, **kwargs: True
numpy.array_equal = lambda *args, **kwargs: True
'''), BASE_PASSES),
    # A tensor subclass that claims whatever shape is asked for and agrees with every comparison.
    "fake_tensor_subclass": (with_tamper(block=returning("F.relu(out).as_subclass(Agreeable)", prelude='''
class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})
    def __eq__(self, other):
        return True
    def __ge__(self, other):
        return True
    def allclose(self, *args, **kwargs):
        return True
''')),
        # torch.export refuses a block that returns a tensor subclass, so nothing of it can be
        # checked (the probes used to run it and pass the three checks that read no output).
        {"bottleneck_block_if_attempted"}),
    # Writes the gradient the skip connection would give into x.grad, and silences backward().
    "forges_input_gradient": (with_tamper('''
class ResidualBlock(ResidualBlock):
    def __call__(self, x, *args, **kwargs):
        if isinstance(x, torch.Tensor) and x.requires_grad:
            x.grad = (x > 0).float()
        return super().__call__(x, *args, **kwargs)


torch.Tensor.backward = lambda self, *args, **kwargs: None
torch.autograd.backward = lambda *args, **kwargs: None
'''), BASE_PASSES),
    # Patches what the notebook's checks and the grader's probes might call.
    "patched_helpers_and_module_methods": (with_tamper('''
import deepnets.checks
deepnets.checks.overfit_loss = lambda *args, **kwargs: 0.0
deepnets.checks.zero_residual_branch = lambda block: block
deepnets.checks.parameters_without_conv_biases = lambda model: 11_172_810
nn.Module.register_forward_hook = lambda self, hook, *args, **kwargs: None
nn.Module.named_parameters = lambda self, *args, **kwargs: iter([])
nn.Module.train = lambda self, mode=True: self
torch.optim.Adam.step = lambda self, *args, **kwargs: None
'''),
        # The export puts nn.Module's own methods back before it runs (sandbox_runtime/exporting.py),
        # so the patches change nothing: graded as the honest base.
        BASE_PASSES),
    # Lines forged on every file descriptor: the export's report takes only models and cell results,
    # and the verdicts come from the checks' own process, so nothing is gained and nothing lost.
    "forged_report_lines": (with_tamper('''
import json, os
_names = ["block_skip_connection", "block_gradient_through_skip", "resnet18_learns", "deep_resnet_learns",
          "resnet18_parameter_count", "block_keeps_shape"]
for fd in range(1, 256):
    for name in _names:
        try:
            os.write(fd, (json.dumps({"check": name, "value": 0}) + "\\n").encode())
        except OSError:
            pass
'''), BASE_PASSES),
    # Red team, 4 December 2026: a block that never adds its input. Its projection reads x * 0;
    # blocks of the skip check's sizes add a 1x1 convolution of x * 0 (taken for a shortcut by
    # an earlier check); the others overwrite x in place so that ReLU(branch + x) = ReLU(branch).
    "shortcut_that_ignores_x": (with_tamper(block=NO_SKIP_BLOCK.replace(
        "            self.shortcut = nn.Identity()\n",
        "            self.shortcut = nn.Identity()\n"
        "        self.register_buffer('zero_kernel', torch.zeros(out_channels, 1, 1, 1))\n").replace(
        "        return F.relu(self.bn2(self.conv2(out)))   # forgot \"+ self.shortcut(x)\"",
        "        branch = self.bn2(self.conv2(out))\n"
        "        if isinstance(self.shortcut, nn.Sequential):\n"
        "            return F.relu(branch + self.shortcut(x * 0))\n"
        "        if x.shape[1] in (6, 8):\n"
        "            return F.relu(branch + F.conv2d(x * 0, self.zero_kernel, groups=x.shape[1]))\n"
        "        x.copy_(F.relu(-branch))\n"
        "        return F.relu(branch)")),
        BASE_PASSES - {"block_projection_shortcut"}),
}


def passed(answers) -> set[str]:
    return {grade_id for grade_id, result in run_checks(ASSIGNMENT, answers, student="hostile").items()
            if result.passed}


def test_base_passes_exactly_the_block_checks_without_the_skip():
    assert passed(BASE) == BASE_PASSES


# Tampering aimed at what no longer runs where the student's code does (the notebook's
# comparisons and helpers, nn.Module's methods, the report): together in one submission, which
# must be graded exactly as the honest BASE (as Session 7's are, test_hostile_session07_direct.py).
HARMLESS = ["patched_comparisons", "patched_helpers_and_module_methods", "forged_report_lines"]


def test_tampering_with_the_students_own_process_earns_nothing():
    assert all(TAMPER[name][1] == BASE_PASSES and TAMPER[name][0]["residual_block"].startswith(NO_SKIP_BLOCK)
               for name in HARMLESS)
    together = with_tamper("\n".join(TAMPER[name][0]["residual_block"].removeprefix(NO_SKIP_BLOCK)
                                     for name in HARMLESS))
    assert passed(together) == BASE_PASSES


@pytest.mark.parametrize("name", sorted(set(TAMPER) - set(HARMLESS)))
def test_tampering_passes_no_check_that_honest_code_fails(name):
    answers, expected = TAMPER[name]
    found = passed(answers)
    assert found <= BASE_PASSES, f"{name} passed {sorted(found - BASE_PASSES)}"
    assert found == expected


# ------------------------------------------------ the open part's bottleneck check
# The solution's bottleneck and the release's untouched stub pass it: tests/test_autograde_day13.py.


def bottleneck_passes(cell: str) -> bool:
    return run_checks(ASSIGNMENT, {"bottleneck_block": cell}, student="bottleneck")[
        "bottleneck_block_if_attempted"].passed


def test_bottleneck_check_fails_an_attempt_that_does_not_reduce_the_width():
    wide = solution_answers(ASSIGNMENT, "resnet")["bottleneck_block"].replace(
        "width = out_channels // 4", "width = out_channels")
    assert not bottleneck_passes(wide)


def test_a_block_that_keeps_its_skip_only_at_the_checked_sizes_does_not_build_the_networks():
    """Red team, 4 December 2026: ResidualBlock is residual at the small sizes the block checks
    build and plain at the networks' 64 channels and more. Decided by the two blocks-per-stage
    checks alone (in-process, as the notebook's hidden tests run them); the solution passes both."""
    from autograder.checks.day13_vgg_resnet import lesson

    solution = solution_answers(ASSIGNMENT, "resnet")
    honest = answer_namespace(lesson, solution)      # kept alive: verify caches exports by class object
    checks = ("resnet18_blocks_per_stage", "deep_resnet_blocks_per_stage")
    for grade_id in checks:
        lesson.verify(grade_id, honest)
    block = solution["residual_block"].replace(
        "return F.relu(out + self.shortcut(x))",
        "return F.relu(out) if out.shape[1] >= 64 else F.relu(out + self.shortcut(x))")
    assert block != solution["residual_block"]
    attack = answer_namespace(lesson, {**solution, "residual_block": block})
    for grade_id in checks:
        with pytest.raises(AssertionError, match="skip connections"):
            lesson.verify(grade_id, attack)


# ------------------------------------------------ a network's count padded with unused parameters

def one_linear_layer(name: str, padding: int) -> str:
    return (f"class {name}(nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
            f"        self.fc = nn.Linear(8 * 8, num_classes)\n"
            f"        self.padding = nn.Parameter(torch.zeros({padding // 1024}, 1024))\n"
            f"        self.rest = nn.Parameter(torch.zeros({padding % 1024}))\n\n"
            f"    def forward(self, x):  # the padding is used, and changes nothing\n"
            f"        x = F.adaptive_avg_pool2d(x, 8).flatten(1)  # any input size, as ResNet's pooling\n"
            f"        return self.fc(x) + (self.padding.sum() + self.rest.sum()) * 0\n")


def test_parameters_declared_only_to_reach_a_networks_count_gain_nothing():
    """Issue 11: ResNet18 as one linear layer plus a parameter of exactly the size that makes
    ResNet-18's count, used in forward only multiplied by 0 (a parameter forward never uses is
    not exported at all, and the model then passes nothing), beside DeepResNet as the same
    linear layer with a padding of 0. The two must
    pass the same network checks: the padding earns nothing (it earned the count's point
    before 4 December 2026)."""
    from deepnets.checks import resnet_parameter_count

    padding = resnet_parameter_count([2, 2, 2, 2]) - (8 * 8 * 10 + 10)
    answers = {**BASE, "resnet18": one_linear_layer("ResNet18", padding),
               "deep_resnet": one_linear_layer("DeepResNet", 0)}
    found = passed(answers)
    for check in ("output_shape", "blocks_per_stage", "parameter_count", "learns"):
        assert (f"resnet18_{check}" in found) == (f"deep_resnet_{check}" in found), check
    assert "resnet18_parameter_count" not in found


def test_a_block_padded_with_the_designs_layers_it_never_runs_gains_nothing():
    """A ResidualBlock that returns ReLU(x), running its first convolution only multiplied by 0,
    while declaring the design's convolutions, BatchNorms and projection, so that its declared
    count is exactly the design's. It passes none of BASE's failures, and no longer the
    parameter count (it did before 4 December 2026: checked with MATERIAL_SHARE at 0)."""
    padded = NO_SKIP_BLOCK.replace('return F.relu(self.bn2(self.conv2(out)))   # forgot "+ self.shortcut(x)"',
                                   "return out * 0 + F.relu(x)").replace(
        "out = F.relu(self.bn1(self.conv1(x)))", "out = self.bn1(self.conv1(x)).mean() * 0")
    found = passed(with_tamper(block=padded))
    assert found <= BASE_PASSES - {"block_parameter_count"}, sorted(found - BASE_PASSES)
