"""The benchmark's two recipes run, stop the clock for tests and report what they measured."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench  # noqa: E402


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """MNIST files for both recipes: the offline sample, written in torchvision's layout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DEEPNETS_DATA_ROOT", raising=False)
        patch.setenv("DEEPNETS_OFFLINE", "1")
        return bench.prepare_raw_root(None, tmp_path_factory.mktemp("bench"))


@pytest.mark.parametrize("recipe", ["seed", "course"])
def test_a_recipe_trains_and_reports(roots, recipe):
    raw_root, data_root = roots
    case = dict(name=recipe, recipe=recipe, model="ResidualCNN", device="cpu", seed=0, lr=1e-3,
                batch_size=32, raw_root=str(raw_root), data_root=str(data_root), train_size=128,
                test_size=64, target=1.0, max_epochs=2, test_every=2, bf16=False)
    result = bench.run_case(case)
    # 4 steps an epoch, a test every 2 and at the end: the target is met at the first test,
    # but the run goes on to the end of the first epoch.
    assert [t["images"] for t in result["tests"]] == [64, 128]
    assert result["seconds_to_target"] == result["tests"][0]["seconds"] > 0
    assert len(result["epoch_seconds"]) == 1 and result["images"] == 128
    # The peak (getrusage) and the baseline (/proc's VmRSS) read the kernel's per-CPU RSS
    # counters, which lag by up to a few hundred kB each: a peak 0.1 MB under the baseline
    # was seen once (5 December 2026), so the two are compared within 1 MB.
    assert result["peak_memory_mb"] >= result["baseline_memory_mb"] - 1 > 0


def test_report_has_the_ratios():
    def result(name, recipe, seconds, target=98.5, size=None):
        return dict(name=name, recipe=recipe, model="ResidualCNN", device="cpu", images=1000,
                    seconds=seconds, cpu_seconds=seconds, images_per_second=1000 / seconds,
                    target=target, train_size=size, epoch_seconds=[seconds],
                    seconds_to_target=seconds if target else None,
                    cpu_seconds_to_target=seconds if target else None,
                    tests=[dict(images=1000, seconds=seconds, test_accuracy=99.0)],
                    peak_memory_mb=900.0, baseline_memory_mb=500.0, bf16=False)

    info = dict(cpu="a CPU", cores=2, torch_threads=2, torch="2", date="today", load_start=1.0, load_end=2.0)
    text = bench.report([result("seed", "seed", 100.0), result("course", "course", 40.0),
                         result("seed 10,000", "seed", 20.0, None, 10_000),
                         result("course 10,000", "course", 10.0, None, 10_000)], info, {})
    assert "time to 98.5%: 2.50x" in text
    assert "| 10,000 | 20.0 | 10.0 | 2.00x |" in text


def test_the_cuda_plan_runs_the_gpu_targets(tmp_path, monkeypatch):
    """`--device cuda` times ResidualCNN to 99.0% against the seed recipe and ResNet-18 to 99.5%, in bf16."""
    monkeypatch.setattr(bench, "has_bf16_units", lambda device: device.type == "cuda")
    arguments = argparse.Namespace(device="cuda", quick=False, compile=False, evals_per_epoch=4,
                                   resnet18_batch=512, resnet18_lr=2e-3, resnet18_epochs=[4, 5])
    cases = {case["name"]: case for case in bench.plan(arguments, tmp_path, tmp_path)}
    assert cases["seed"]["target"] == cases["course"]["target"] == 99.0
    assert cases["seed"]["model"] == cases["course"]["model"] == "ResidualCNN"
    assert cases["course"].get("cuda_graphs") is None, "fit's own default"
    assert cases["course without CUDA graphs"]["cuda_graphs"] is False
    for epochs in (4, 5):
        resnet = cases[f"course ResNet18 {epochs} epochs"]
        assert (resnet["model"], resnet["target"], resnet["train_size"]) == ("ResNet18", 99.5, None)
        assert resnet["max_epochs"] == epochs and resnet["decay_lr"]
    assert all(case["bf16"] for name, case in cases.items() if "fp32" not in name)
    assert not cases["course fp32 10,000"]["bf16"]


def test_report_gives_the_share_of_the_bf16_matmul_peak():
    def result(name, recipe, model="ResidualCNN", target=99.0, tflops=None):
        return dict(name=name, recipe=recipe, model=model, device="cuda", images=60_000, seconds=10.0,
                    cpu_seconds=10.0, images_per_second=6000.0, target=target, train_size=None,
                    epoch_seconds=[10.0], seconds_to_target=10.0, cpu_seconds_to_target=10.0,
                    tests=[dict(images=60_000, seconds=10.0, test_accuracy=99.6)], peak_memory_mb=900.0,
                    baseline_memory_mb=None, bf16=recipe == "course", achieved_tflops=tflops)

    info = dict(cpu="a CPU", cores=16, torch_threads=16, torch="2", date="today", load_start=0.0,
                load_end=0.0, gpu="a GPU")
    text = bench.report([result("seed", "seed"), result("course", "course", tflops=5.0),
                         result("course ResNet18", "course", "ResNet18", 99.5, tflops=50.0)],
                        info, {"bf16": 500.0, "fp32": 50.0})
    assert "course ResNet18: 50000.0 GFLOP/s, 10.0% of the bf16 matmul's 500000 GFLOP/s" in text
    assert "| course ResNet18 | ResNet18 | 60,000 | 10.0 |" in text and "10.0 s to 99.5%" in text


def test_notebook_speed_reports_the_median_of_complete_rounds():
    import notebook_speed

    def run(round_, case, seconds):
        return dict(round=round_, case=case, seconds=seconds, cpu_seconds=seconds, load_average=1.0,
                    path="fp32", test_accuracy={"BaselineCNN": 97.0, "ResidualCNN": 98.0})

    runs = [run(0, "lesson plan", 30.0), run(0, "notebook", 10.0), run(0, "notebook, bf16 off", 20.0),
            run(1, "lesson plan", 40.0), run(1, "notebook", 25.0), run(1, "notebook, bf16 off", 40.0),
            run(2, "lesson plan", 50.0), run(2, "notebook", 10.0), run(3, "lesson plan", 1.0)]
    # The cases that only show which part of the fast path pays (no target): rounds 0 and 1 have them.
    diagnostic = set(notebook_speed.CASES) - {"lesson plan", "notebook", "notebook, bf16 off"}
    runs += [run(round_, case, 20.0) for round_ in (0, 1) for case in sorted(diagnostic)]
    info = dict(cpu="a CPU", cores=2, torch_threads=2, torch="2", date="today", bf16_units=True,
                train_size=10_000, load_start=1.0, load_end=2.0)
    text = notebook_speed.report(runs, info)
    assert "2 complete rounds" in text
    assert "- notebook: median **3.00x** (rounds: 3.00, 1.60, 5.00; CPU time median 3.00x); target 2.0x: met" in text
    assert ("- notebook, bf16 off: median **1.25x** (rounds: 1.50, 1.00; CPU time median 1.25x); "
            "target 1.3x: not judged on 2 rounds (at least 3 needed)") in text
    runs.append(run(2, "notebook, bf16 off", 50.0))
    assert "target 1.3x: NOT met" in notebook_speed.report(runs, info)  # medians 1.5, 1.0, 1.0


def test_fast_path_accuracy_pairs_the_difference_by_seed():
    import fast_path_accuracy

    runs = [dict(model="M", seed=seed, path=path, test_accuracy=[acc, acc + 0.5, acc + 1.0])
            for seed, fp32, default in [(0, 90.0, 91.0), (1, 92.0, 92.0), (2, 94.0, 95.0)]
            for path, acc in (("fp32", fp32), ("default", default))]
    one_epoch, three_epochs = fast_path_accuracy.summary(runs)
    assert (one_epoch["epochs"], one_epoch["seeds"], three_epochs["epochs"]) == (1, 3, 3)
    assert one_epoch["difference"] == pytest.approx(2 / 3)
    assert one_epoch["standard_error"] == pytest.approx((1 / 3) ** 0.5 / 3 ** 0.5)
    assert one_epoch["fp32_sd"] == pytest.approx(2.0) and one_epoch["within_noise"]
