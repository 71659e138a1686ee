"""Session 7's hostile submissions, each straight through run_checks with its exact score.

run_checks is the whole trust boundary: the answer cells run and export their models in a
sandbox, and the checks run on rebuilt models in a process no student code ran in. Each case
is BASE (an honest answer worth 6 of 13: a block without its skip, a one-layer "CNN") plus
tampering, and must score what its code honestly earns, never more than BASE. The class-wide
path (intake, nbgrader, gradebook) is tests/test_grade_class.py, on a few of these.
"""

import re

import pytest

import hostile_submissions as hostile
from nbgrader_harness import REPO
import build_course

from autograder.calibration.lesson_plan_session07 import ANSWERS as LESSON_PLAN
from autograder.checks.session07_residual_cnn import lesson
from autograder.sandbox import Limits
from autograder.trusted import run_checks

POINTS = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
          for c in build_course.source_notebook(REPO / "source" / lesson.name / f"{lesson.notebook}.py").cells
          if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
          and not c.metadata["nbgrader"].get("solution")}
SKIP_CHECKS = {"block_skip_connection", "block_gradient_through_skip"}


def score(results) -> int:
    return sum(POINTS[grade_id] for grade_id, result in results.items() if result.passed)


def graded(answers, student, timeout_scale=0.5, **kwargs):
    return run_checks(lesson.name, answers, student=student, timeout_scale=timeout_scale, **kwargs)


def test_the_lesson_plans_answer_gets_full_marks_and_without_its_skip_loses_exactly_the_skip_checks():
    results = graded(LESSON_PLAN, "lesson-plan")
    assert score(results) == sum(POINTS.values()), {k: r.message for k, r in results.items() if not r.passed}
    no_skip = {**LESSON_PLAN, "residual_block": hostile.NO_SKIP_BLOCK}
    results = graded(no_skip, "lesson-plan-no-skip")
    assert {k for k, r in results.items() if not r.passed} == SKIP_CHECKS


# Tampering aimed at code that no longer runs where the student's does (the asserts, the probe
# worker, deepnets' helpers) or at the machine: together in one submission, worth BASE.
HARMLESS = ["patched_allclose_and_equal", "patched_assertion_error", "ipython_swallows_errors",
            "patched_numpy_testing", "patched_deepnets_checks", "reads_course_and_other_students",
            "uses_the_network", "fills_the_disk", "signals_the_grader", "forged_report_lines"]


def test_tampering_with_the_students_own_process_earns_nothing():
    results = graded(hostile.together(HARMLESS), "harmless-tampering")
    assert score(results) == hostile.BASE_SCORE
    assert {k for k, r in results.items() if not r.passed} == hostile.BASE_FAILS
    # The failed accuracy check says how far off in whole percent, not the exact count of the
    # grader's digits the network got right (which would tell a class about those digits).
    assert re.fullmatch(r"about \d+% is below the \d+\.\d% a correct ResidualCNN reaches",
                        results["cnn_learns_mnist"].message), results["cnn_learns_mnist"].message


@pytest.mark.parametrize("name", sorted(set(hostile.TAMPER) - set(HARMLESS)))
def test_each_hostile_submission_scores_exactly_what_it_earns(name):
    answers, expected = hostile.TAMPER[name]
    # One that ignores every alarm is stopped by the sandbox's wall time: shortened here.
    limits = Limits(wall_seconds=60) if name == "ignores_alarm_and_loops" else None
    # The two that loop until a CPU timer stops them wait out a quarter of each limit, not half:
    # the honest parts they share with BASE take a fraction of a second.
    looping = name in ("ignores_alarm_and_loops", "infinite_loop_in_forward")
    results = graded(answers, name, limits=limits, timeout_scale=0.25 if looping else 0.5)
    assert score(results) == expected, {k: r.message for k, r in results.items()}
    assert score(results) <= hostile.BASE_SCORE
    if looping:
        # A limit reached is reported, so the class pipeline flags it for review.
        assert "time limit reached" in (run_checks.last_problem or ""), run_checks.last_problem


# Cases from the red team of issue 11, against the new boundary: each is BASE's block or
# network made to look right to a check that trusted the student's process.
RED_TEAM = {
    # Returns ReLU(x) exactly when the last BatchNorm has been zeroed (what the old checks did).
    "looks_at_its_weights": hostile.with_tamper(block=hostile.NO_SKIP_BLOCK.replace(
        'return F.relu(self.bn2(self.conv2(out)))   # forgot "+ x"',
        "gate = torch.relu(1 - 1e6 * (self.bn2.weight.abs().sum() + self.bn2.bias.abs().sum()))\n"
        "        return gate * F.relu(x) + (1 - gate) * F.relu(self.bn2(self.conv2(out)))")),
    # The skip, but through a copy with no gradient: the value is right, the gradient is not.
    "detached_skip": hostile.with_tamper(block=hostile.NO_SKIP_BLOCK.replace(
        'return F.relu(self.bn2(self.conv2(out)))   # forgot "+ x"',
        "return F.relu(self.bn2(self.conv2(out)) + x.detach())")),
    # Writes a whole report where the old worker read its results, then leaves.
    "forges_the_report_and_exits": hostile.with_tamper(cnn_extra='''
import json, os
for fd in range(1, 64):
    for grade_id in %r:
        try:
            os.write(fd, (json.dumps({"check": grade_id, "passed": True, "message": ""}) + "\\n").encode())
        except OSError:
            pass
''' % sorted(POINTS)),
    # Replaces the worker's own functions through __main__ and the stack.
    "rewrites_the_worker": hostile.with_tamper(cnn_extra='''
import __main__, sys, base64
for name in list(vars(__main__)):
    if callable(getattr(__main__, name, None)) and name not in ("ResidualBlock", "ResidualCNN"):
        try:
            setattr(__main__, name, lambda *a, **k: None)
        except Exception:
            pass
frame = sys._getframe()
while frame is not None:
    frame.f_globals.pop("export_model", None)
    frame = frame.f_back
'''),
    # An MNIST classifier's weights shipped in the constructor: the grader draws its own.
    "pretrained_weights": hostile.with_tamper(cnn='''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        with torch.no_grad():
            self.fc.weight.fill_(0.5)   # stands for weights trained elsewhere
''' + "\n    def forward(self, x):\n        return self.fc(x.flatten(1))\n"),
    # A table of answers as a tensor constant: refused at rebuild.
    "lookup_table_constant": hostile.with_tamper(cnn='''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.register_buffer("table", torch.zeros(5000, 10))

    def forward(self, x):
        return self.fc(x.flatten(1)) + self.table[:1].sum() * 0
'''),
    # Red team, 4 December 2026: no skip, and x overwritten in place so that the checks'
    # ReLU(branch + x) would equal the block's ReLU(branch). The grader's x is not the graph's.
    "overwrites_its_input": hostile.with_tamper(block=hostile.NO_SKIP_BLOCK.replace(
        '        return F.relu(self.bn2(self.conv2(out)))   # forgot "+ x"',
        '        branch = self.bn2(self.conv2(out))\n'
        '        x.copy_(F.relu(-branch))\n'
        '        return F.relu(branch)')),
}
# Issue 11's "decoy layers that barely touch the output": BASE's linear model plus a first conv,
# two ResidualBlocks and pooling whose result is multiplied by 1e-6 before it is added. They run
# (so they once counted as structure, padded the parameter count into its 50,000-200,000 window
# and passed the gradient check: 9 of 13 on 4 December 2026), but the output does not depend on
# them. The decoys see the image at 14x14, a quarter of the pixels: the same structure and about
# 61,000 parameters, for a quarter of the accuracy check's training time.
RED_TEAM["decoy_layers"] = hostile.with_tamper(cnn=hostile.LINEAR_CNN.replace(
    "        self.fc = nn.Linear(28 * 28, 10)\n",
    "        self.fc = nn.Linear(28 * 28, 10)\n"
    "        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32)\n"
    "        self.res1, self.pool, self.res2 = ResidualBlock(32), nn.MaxPool2d(2, 2), ResidualBlock(32)\n"
    "        self.head = nn.Linear(32 * 7 * 7, 10)\n").replace(
    "        return self.fc(x.flatten(1))",
    "        small = F.avg_pool2d(x, 2)\n"
    "        decoy = self.head(self.res2(self.pool(self.res1(F.relu(self.bn1(self.conv1(small)))))).flatten(1))\n"
    "        return self.fc(x.flatten(1)) + decoy * 1e-6"))
RED_TEAM_SCORES = {"looks_at_its_weights": hostile.BASE_SCORE, "decoy_layers": hostile.BASE_SCORE, "detached_skip": hostile.BASE_SCORE + 1,
                   "forges_the_report_and_exits": hostile.BASE_SCORE,
                   "rewrites_the_worker": 0,    # it breaks its own export: nothing to grade
                   "pretrained_weights": hostile.BASE_SCORE, "lookup_table_constant": hostile.BASE_SCORE - 1,
                   "overwrites_its_input": hostile.BASE_SCORE}


@pytest.mark.parametrize("name", sorted(RED_TEAM))
def test_red_team_cases_gain_nothing(name):
    results = graded(RED_TEAM[name], name)
    failed = {k for k, r in results.items() if not r.passed}
    assert score(results) == RED_TEAM_SCORES[name], {k: results[k].message for k in failed}
    if name in ("looks_at_its_weights", "detached_skip", "overwrites_its_input"):
        assert "block_gradient_through_skip" in failed


FORGED_GRADIENT_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        if x.requires_grad:
            x.grad = (x.detach() > 0).float()
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))   # no "+ x"
'''


def test_a_gradient_written_into_x_grad_does_not_pass_the_skip_gradient_check():
    results = graded({"residual_block": FORGED_GRADIENT_BLOCK, "residual_cnn": hostile.LINEAR_CNN},
                     "forged-gradient")
    assert results["block_keeps_shape"].passed, results["block_keeps_shape"].message  # the block runs
    assert not results["block_gradient_through_skip"].passed
    assert not results["block_skip_connection"].passed


HOG = hostile.with_tamper(block_extra='''
import os, time
for _ in range(60):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
time.sleep(3600)   # holds its own run open while its children burn the CPU
''')


def test_a_cpu_hog_on_the_same_core_leaves_its_neighbours_score_unchanged():
    """Both graded at once, pinned to one core: the hog's 60 setsid children share one cgroup's
    CPU share, so the honest submission's run takes about twice as long, not 60 times."""
    import os
    import threading

    from autograder.sandbox import Cgroup

    probe = Cgroup.create(Limits())
    if probe is None:
        pytest.skip("cgroups need Linux and root")
    probe.kill_all()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        results = {}
        hog = threading.Thread(target=lambda: results.update(
            hog=graded(HOG, "hog", limits=Limits(wall_seconds=20))))
        hog.start()
        results["honest"] = graded(hostile.BASE, "honest-next-to-a-hog")
        hog_still_running = hog.is_alive()
        hog.join()
    finally:
        os.sched_setaffinity(0, affinity)
    assert hog_still_running, "the hog's run ended before the honest one: they were not graded side by side"
    assert score(results["honest"]) == hostile.BASE_SCORE, {k: r.message for k, r in results["honest"].items()}
    assert score(results["hog"]) <= hostile.BASE_SCORE


def test_a_block_that_keeps_its_skip_only_on_its_own_does_not_build_the_network():
    """Red team, 4 December 2026: ResidualBlock adds x back except when the network builds it.
    Decided by cnn_built_from_residual_blocks alone (in-process, as the notebook's hidden test
    runs it), so no network is trained; the solution passes the same check."""
    from nbgrader_harness import answer_namespace, solution_answers

    solution = solution_answers(lesson.name, lesson.notebook)
    honest = answer_namespace(lesson, solution)      # kept alive: verify caches exports by class object
    lesson.verify("cnn_built_from_residual_blocks", honest)
    block = solution["residual_block"].replace(
        "    def __init__(self, channels):\n        super().__init__()\n",
        "    def __init__(self, channels, plain=False):\n        super().__init__()\n        self.plain = plain\n")
    block = block.replace("return F.relu(out + x)", "return F.relu(out) if self.plain else F.relu(out + x)")
    network = solution["residual_cnn"].replace("ResidualBlock(32)", "ResidualBlock(32, plain=True)")
    assert block != solution["residual_block"] and network != solution["residual_cnn"]
    attack = answer_namespace(lesson, {"residual_block": block, "residual_cnn": network})
    with pytest.raises(AssertionError, match="skip connections"):
        lesson.verify("cnn_built_from_residual_blocks", attack)


SLOW_OPERATION_CNN = hostile.LINEAR_CNN.replace(
    "        return self.fc(x.flatten(1))",
    "        out = self.fc(x.flatten(1))\n"
    "        if self.training:\n"
    "            return out\n"
    "        h = x.flatten()[:1].view(1, 1).expand(12000, 12000).contiguous()   # one matmul of minutes\n"
    "        return out + torch.matmul(h, h).sum() * 0")
assert SLOW_OPERATION_CNN != hostile.LINEAR_CNN


def test_checks_stopped_by_their_wall_limit_are_flagged_for_review():
    """Red team, 4 December 2026: one operation outlasts every per-check timer, so the checks'
    process is killed at its wall limit. The submission loses those checks, and a person is told."""
    results = graded({"residual_block": hostile.NO_SKIP_BLOCK, "residual_cnn": SLOW_OPERATION_CNN},
                     "slow-operation", limits=Limits(wall_seconds=12))
    assert any(r.message.startswith("not checked") for r in results.values())
    assert score(results) <= hostile.BASE_SCORE
    assert run_checks.last_problem and "the checks stopped before deciding" in run_checks.last_problem
