"""Does fit's fast path change the Session 7 results? Test accuracy, fp32 against the default, over seeds.

    python benchmarks/fast_path_accuracy.py [--data-root DIR] [--seeds 5] [--train-size 10000]

For each seed and each of the notebook's two models (BaselineCNN, the solution's ResidualCNN),
trains twice with everything else equal (set_seed(seed) before building the model, fit's seed,
Adam 1e-3, batch 128, 3 epochs, the first `--train-size` training images, all 10,000 test images):

* **fp32**: `Speed(bf16=False, channels_last=False)`, fit's path before the fast path was the default;
* **default**: fit's default path on this machine (`history.speed` says which).

fit measures the full test set after every epoch, and without a learning-rate schedule the first
epoch of a 3-epoch run is exactly a 1-epoch run, so each run gives both the 1- and 3-epoch
accuracy. The difference default - fp32 is paired by seed: its mean, its standard error over
seeds, and a paired t-test; next to it, the seed-to-seed spread of each path's accuracy.
Runs go to `--workers` processes of one thread each, which lose far less to a busy machine than
one process whose threads wait for each other; accuracy does not depend on the thread count
beyond rounding, and both paths of a (model, seed) pair run in the same worker.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see deepnets/__init__.py
import torch  # noqa: E402
from scipy import stats  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench  # noqa: E402
import session07  # noqa: E402
from deepnets import Speed, fit, load_mnist, set_seed  # noqa: E402
from deepnets.data import DATA_ROOT_VARIABLE  # noqa: E402
from deepnets.training import has_bf16_units  # noqa: E402

EPOCHS = (1, 3)
PATHS = {"fp32": Speed(bf16=False, channels_last=False), "default": None}


def summary(runs: list[dict]) -> list[dict]:
    """Per model and epoch count: the paired difference default - fp32 and each path's spread."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        for epochs in EPOCHS:
            accuracy = {path: {r["seed"]: r["test_accuracy"][epochs - 1] for r in runs
                               if r["model"] == model and r["path"] == path} for path in PATHS}
            seeds = sorted(set(accuracy["fp32"]) & set(accuracy["default"]))
            if len(seeds) < 2:  # an interrupted run: no spread to compare with yet
                continue
            differences = [accuracy["default"][s] - accuracy["fp32"][s] for s in seeds]
            mean = statistics.mean(differences)
            error = statistics.stdev(differences) / len(differences) ** 0.5
            p_value = stats.ttest_rel([accuracy["default"][s] for s in seeds],
                                      [accuracy["fp32"][s] for s in seeds]).pvalue
            rows.append(dict(model=model, epochs=epochs, seeds=len(seeds),
                             fp32_mean=statistics.mean(accuracy["fp32"][s] for s in seeds),
                             fp32_sd=statistics.stdev(accuracy["fp32"][s] for s in seeds),
                             default_mean=statistics.mean(accuracy["default"][s] for s in seeds),
                             default_sd=statistics.stdev(accuracy["default"][s] for s in seeds),
                             difference=mean, standard_error=error, p_value=float(p_value),
                             within_noise=abs(mean) <= 2 * error))
    return rows


def report(runs: list[dict], info: dict) -> str:
    paths = sorted({r["speed"] for r in runs if r["path"] == "default"})
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores; bfloat16 units "
             f"{'detected' if info['bf16_units'] else 'not detected'}; PyTorch {info['torch']}; {info['date']}. "
             f"Default path taken: {'; '.join(paths)}. A fixed subset: the first {info['train_size']:,} "
             "training images (not all 60,000), all 10,000 test images; batch 128, Adam 1e-3. "
             f"Load average (1 min) {info['load_start']:.1f} at the start, "
             + (f"{info['load_end']:.1f} at the end." if "load_end" in info else
                "not recorded at the end: the run was stopped before it finished."), "",
             "| model | epochs | seeds | fp32 mean (sd) | default mean (sd) | default - fp32 (standard error) "
             "| paired t-test p | within 2 standard errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    rows = summary(runs)
    for row in rows:
        lines.append(f"| {row['model']} | {row['epochs']} | {row['seeds']} | {row['fp32_mean']:.2f}% "
                     f"({row['fp32_sd']:.2f}) | {row['default_mean']:.2f}% ({row['default_sd']:.2f}) | "
                     f"{row['difference']:+.2f} ({row['standard_error']:.2f}) | {row['p_value']:.2f} | "
                     f"{'yes' if row['within_noise'] else 'NO'} |")
    for model in sorted(set(session07.models()) - {row["model"] for row in rows}):
        lines.append(f"| {model} | - | fewer than 2 | not measured: the run stopped before two seeds "
                     "had both paths | | | | |")
    lines += ["", "Every run (test accuracy after 1 and 3 epochs, training seconds, one thread):", ""]
    for r in runs:
        lines.append(f"- {r['model']} seed {r['seed']} {r['path']} ({r['speed']}): "
                     f"{r['test_accuracy'][0]:.2f}%, {r['test_accuracy'][-1]:.2f}%; {r['seconds']:.0f} s")
    return "\n".join(lines)


def train_pair(task: tuple) -> list[dict]:
    """Both paths for one (model, seed), in a worker process of one thread."""
    model_name, seed, data_root, train_size = task
    torch.set_num_threads(1)
    mnist = load_mnist(data_root, verbose=False).subset(train_size, None)
    model_class = session07.models()[model_name]
    runs = []
    for path, speed in PATHS.items():
        set_seed(seed)
        history = fit(model_class(), mnist, epochs=max(EPOCHS), batch_size=128, lr=1e-3, seed=seed,
                      device="cpu", progress=False, evals_per_epoch=1, speed=speed)
        runs.append(dict(model=model_name, seed=seed, path=path, speed=history.speed,
                         test_accuracy=history.test_accuracy, seconds=history.seconds))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=os.environ.get(DATA_ROOT_VARIABLE) or None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=HERE / "results")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the runs already in the output's JSON (an interrupted run)")
    arguments = parser.parse_args()
    json_path = arguments.output_dir / "fast_path_accuracy.json"
    if arguments.report_only:
        recorded = json.loads(json_path.read_text())
        info, runs = recorded["machine"], sorted(recorded["runs"], key=lambda r: (r["model"], r["seed"], r["path"]))
        text = report(runs, info)
        (arguments.output_dir / "fast_path_accuracy.md").write_text(text + "\n")
        print(text)
        return

    load_mnist(arguments.data_root)  # prints where the images come from; fails early on a bad root
    info = dict(bench.machine("cpu"), bf16_units=has_bf16_units(torch.device("cpu")), workers=arguments.workers,
                train_size=arguments.train_size, load_start=os.getloadavg()[0])
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    # The cheaper model first, so that a run cut short (a busy machine) has all its seeds.
    tasks = [(model, seed, arguments.data_root, arguments.train_size)
             for model in ("BaselineCNN", "ResidualCNN") for seed in range(arguments.seeds)]
    runs = []
    with multiprocessing.get_context("spawn").Pool(arguments.workers) as pool:
        for pair in pool.imap_unordered(train_pair, tasks):
            runs += pair
            for r in pair:
                print(f"{r['model']} seed {r['seed']} {r['path']} ({r['speed']}): "
                      f"{r['test_accuracy']} in {r['seconds']:.0f} s", flush=True)
            json_path.write_text(json.dumps(dict(machine=info, runs=runs), indent=1))
    runs.sort(key=lambda r: (r["model"], r["seed"], r["path"]))
    info["load_end"] = os.getloadavg()[0]
    text = report(runs, info)
    print("\n" + text)
    json_path.write_text(json.dumps(dict(machine=info, runs=runs, summary=summary(runs)), indent=1))
    (arguments.output_dir / "fast_path_accuracy.md").write_text(text + "\n")
    print(f"\nwritten: {arguments.output_dir / 'fast_path_accuracy'}.md and .json")


if __name__ == "__main__":
    main()
