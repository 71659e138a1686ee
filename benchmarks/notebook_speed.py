"""The Session 7 notebook's own training call against the lesson plan's DataLoader loop, on a CPU.

    python benchmarks/notebook_speed.py [--data-root DIR] [--train-size 10000] [--rounds 5]

Each case trains the same two models (the notebook's BaselineCNN and ResidualCNN, each from
set_seed(0)) for one epoch on the same first `--train-size` training images, and tests them on
all 10,000 test images:

* **lesson plan**: the seed's `train_model` as written: torchvision's MNIST with `ToTensor`, a
  `DataLoader` (batch 128, shuffled), Adam 1e-3, a test pass after the epoch;
* **notebook**: the notebook's `train_both` cell as written (`fit(model, mnist, epochs=...,
  batch_size=128, lr=1e-3, seed=0, device=device, name=name)`), on fit's default path;
* **notebook, bf16 off**: the same cell with DEEPNETS_BF16=0;
* **notebook, malloc as is** and **notebook, bf16 off, malloc as is**: the same two with
  DEEPNETS_MALLOC=0, which leaves malloc as glibc sets it (`deepnets.training.keep_freed_memory`);
* **lesson plan, malloc kept**: the lesson plan's loop in a process with fit's malloc setting,
  to show what that setting would give it.

Each run is a fresh Python (so the switches, malloc and the thread pools are its own) and times
the training call alone, data already loaded, with OMP_WAIT_POLICY=PASSIVE in all. The cases
alternate (lesson plan, notebook, bf16 off, ..., lesson plan, ...) for `--rounds` rounds, because
other jobs load a shared machine unevenly; the ratios are per round, and their median is reported.
The targets are judged against the lesson plan's loop as students would run it (no deepnets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see deepnets/__init__.py
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench  # noqa: E402
import session07  # noqa: E402
from deepnets.data import DATA_ROOT_VARIABLE  # noqa: E402
from deepnets.training import BF16_VARIABLE, MALLOC_VARIABLE, has_bf16_units, keep_freed_memory  # noqa: E402

# Fewer paired rounds than this do not show a median through a shared machine's noise.
ROUNDS_TO_JUDGE = 3
CASES = {"lesson plan": {}, "notebook": {}, "notebook, bf16 off": {BF16_VARIABLE: "0"},
         # What fit's malloc setting (keep_freed_memory) gives: the notebook without it, and the
         # lesson plan's loop with it, which it would speed up too in a process that had it.
         "notebook, malloc as is": {MALLOC_VARIABLE: "0"},
         "notebook, bf16 off, malloc as is": {BF16_VARIABLE: "0", MALLOC_VARIABLE: "0"},
         "lesson plan, malloc kept": {}}
# (Which part of the numerics pays, channels-last or bf16, was measured on 3 December with
# cases that turned each off: benchmarks/RESULTS.md.)


def lesson_plan(raw_root: Path, train_size: int, malloc_kept: bool = False) -> dict:
    """The seed's train_model on both models, one epoch; seconds of the training call alone.
    With `malloc_kept`, in a process whose malloc keeps freed memory, as `fit` sets it."""
    if malloc_kept:
        assert keep_freed_memory(), "this platform's malloc cannot be set to keep freed memory"
    import torchvision
    import torchvision.transforms as transforms
    from torch import nn, optim
    from torch.utils.data import DataLoader, Subset

    from deepnets import set_seed

    transform = transforms.Compose([transforms.ToTensor()])
    train_dataset = torchvision.datasets.MNIST(raw_root, train=True, download=False, transform=transform)
    test_dataset = torchvision.datasets.MNIST(raw_root, train=False, download=False, transform=transform)
    train_loader = DataLoader(Subset(train_dataset, range(train_size)), batch_size=128, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=128, shuffle=False)
    device = torch.device("cpu")

    def train_model(model, train_loader, test_loader, num_epochs=5):  # the seed's, verbatim
        model.to(device)
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.Adam(model.parameters(), lr=0.001)

        for epoch in range(num_epochs):
            model.train()
            correct, total = 0, 0

            for data, targets in train_loader:
                data, targets = data.to(device), targets.to(device)
                optimizer.zero_grad()
                outputs = model(data)
                loss = criterion(outputs, targets)
                loss.backward()
                optimizer.step()

                _, predicted = torch.max(outputs.data, 1)
                total += targets.size(0)
                correct += (predicted == targets).sum().item()

            train_acc = 100 * correct / total

            # Test accuracy
            model.eval()
            correct_test, total_test = 0, 0
            with torch.no_grad():
                for data, targets in test_loader:
                    data, targets = data.to(device), targets.to(device)
                    outputs = model(data)
                    _, predicted = torch.max(outputs, 1)
                    total_test += targets.size(0)
                    correct_test += (predicted == targets).sum().item()

            test_acc = 100 * correct_test / total_test
            print(f"Epoch {epoch+1}: Train {train_acc:.1f}%, Test {test_acc:.1f}%", file=sys.stderr)

        return test_acc

    models = session07.models()
    accuracies = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for name, model_class in models.items():
        set_seed(0)
        accuracies[name] = train_model(model_class(), train_loader, test_loader, num_epochs=1)
    return dict(seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu,
                test_accuracy=accuracies, path="fp32, DataLoader" + ", malloc kept" * malloc_kept)


def notebook(data_root: Path, train_size: int) -> dict:
    """The notebook's train_both cell as written, on the same images."""
    from deepnets import count_parameters, fit, load_mnist, pick_device, set_seed

    mnist = load_mnist(data_root, verbose=False).subset(train_size, None)
    namespace = dict(session07.models(), fit=fit, set_seed=set_seed, count_parameters=count_parameters,
                     mnist=mnist, budget=SimpleNamespace(epochs=1), device=pick_device())
    wall, cpu = time.perf_counter(), time.process_time()
    exec(session07.training_call(), namespace)
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    histories = namespace["histories"]
    return dict(seconds=seconds, cpu_seconds=cpu_seconds,
                test_accuracy={name: h.final_test_accuracy for name, h in histories.items()},
                path="; ".join(f"{name}: {h.speed}" for name, h in histories.items())
                + ("; malloc kept" if keep_freed_memory() else "; malloc as is"))


def run(case: str, raw_root: Path, data_root: Path, train_size: int) -> dict:
    """One case in a fresh Python with its environment."""
    environment = {**os.environ, **CASES[case]}
    for variable in {v for extra in CASES.values() for v in extra} - set(CASES[case]):
        environment.pop(variable, None)
    load = os.getloadavg()[0]
    completed = subprocess.run(
        [sys.executable, __file__, "--case", case, "--raw-root", str(raw_root), "--data-root", str(data_root),
         "--train-size", str(train_size)], env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]), case=case, load_average=load)


def report(runs: list[dict], info: dict) -> str:
    """Markdown: every run, the per-round ratios and their medians, each against its target."""
    by = {(r["round"], r["case"]): r for r in runs}
    complete = [i for i in sorted({r["round"] for r in runs}) if all((i, case) in by for case in CASES)]
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores ({info['torch_threads']} torch threads), "
             f"bfloat16 units {'detected' if info['bf16_units'] else 'not detected'}; PyTorch {info['torch']}; "
             f"{info['date']}. Load average (1 min) {info['load_start']:.1f} at the start, "
             f"{info['load_end']:.1f} at the end; {info['train_size']:,} training images, "
             "all 10,000 test images, one epoch, BaselineCNN then ResidualCNN; "
             f"{len(complete)} complete round{'s' * (len(complete) != 1)}.", "",
             "| round | case | path | train s | CPU s | load | test accuracy (Baseline / Residual) |",
             "| ---: | --- | --- | ---: | ---: | ---: | --- |"]
    for r in runs:
        accuracy = " / ".join(f"{value:.2f}%" for value in r.get("test_accuracy", {}).values()) or "-"
        lines.append(f"| {r['round'] + 1} | {r['case']} | {r['path']} | {r['seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | {r['load_average']:.1f} | {accuracy} |")
    lines += ["", "Speed-up of the notebook's call over the lesson plan's loop (lesson plan seconds / "
              "notebook seconds, per round that ran both; median), and of one case over another:", ""]
    # (baseline, case): target. The targets are against the lesson plan's loop as written; the
    # pairs without one say what fit's malloc setting gives each side.
    targets = {("lesson plan", "notebook"): 2.0 if info["bf16_units"] else None,
               ("lesson plan", "notebook, bf16 off"): 1.3,
               ("notebook, malloc as is", "notebook"): None,
               ("notebook, bf16 off, malloc as is", "notebook, bf16 off"): None,
               ("lesson plan", "lesson plan, malloc kept"): None,
               ("lesson plan, malloc kept", "notebook"): None,
               ("lesson plan, malloc kept", "notebook, bf16 off"): None}
    medians = {}
    for (baseline, case), target in targets.items():
        paired = [i for i in sorted({r["round"] for r in runs}) if (i, baseline) in by and (i, case) in by]
        ratios = [by[(i, baseline)]["seconds"] / by[(i, case)]["seconds"] for i in paired]
        cpu_ratios = [by[(i, baseline)]["cpu_seconds"] / by[(i, case)]["cpu_seconds"] for i in paired]
        if not ratios:
            continue
        name = case if baseline == "lesson plan" else f"{case} over {baseline}"
        medians[name] = statistics.median(ratios)
        verdict = ("" if target is None else
                   f"; target {target}x: not judged on {len(ratios)} round{'s' * (len(ratios) != 1)} "
                   f"(at least {ROUNDS_TO_JUDGE} needed)" if len(ratios) < ROUNDS_TO_JUDGE else
                   f"; target {target}x: {'met' if medians[name] >= target else 'NOT met'}")
        lines.append(f"- {name}: median **{medians[name]:.2f}x** (rounds: "
                     + ", ".join(f"{x:.2f}" for x in ratios)
                     + f"; CPU time median {statistics.median(cpu_ratios):.2f}x){verdict}")
    info["median_ratios"] = medians
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=os.environ.get(DATA_ROOT_VARIABLE) or None)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output-dir", type=Path, default=HERE / "results")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case here
    parser.add_argument("--raw-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the runs already in the output's JSON (an interrupted run)")
    arguments = parser.parse_args()
    json_path = arguments.output_dir / "notebook_speed.json"
    if arguments.report_only:
        recorded = json.loads(json_path.read_text())
        write(arguments.output_dir, recorded["runs"], recorded["machine"])
        return
    if arguments.case:
        result = (lesson_plan(arguments.raw_root, arguments.train_size, "malloc kept" in arguments.case)
                  if arguments.case.startswith("lesson plan") else notebook(arguments.data_root, arguments.train_size))
        print(json.dumps(result))
        return

    info = dict(bench.machine("cpu"), bf16_units=has_bf16_units(torch.device("cpu")),
                train_size=arguments.train_size, load_start=os.getloadavg()[0])
    runs = []
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnist-raw-") as folder:
        raw_root, data_root = bench.prepare_raw_root(arguments.data_root, Path(folder))
        for round_ in range(arguments.rounds):
            for case in CASES:
                runs.append(dict(run(case, raw_root, data_root, arguments.train_size), round=round_))
                json_path.write_text(json.dumps(dict(machine=info, runs=runs), indent=1))
                r = runs[-1]
                print(f"round {round_ + 1} {case}: {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} CPU s, "
                      f"load {r['load_average']:.1f}) {r['path']}", flush=True)
    info["load_end"] = os.getloadavg()[0]
    write(arguments.output_dir, runs, info)


def write(folder: Path, runs: list[dict], info: dict) -> None:
    """Print the report and write it with the raw numbers to `folder`/notebook_speed.{md,json}."""
    info.setdefault("load_end", os.getloadavg()[0])
    text = report(runs, info)
    print("\n" + text)
    (folder / "notebook_speed.json").write_text(json.dumps(dict(machine=info, runs=runs), indent=1))
    (folder / "notebook_speed.md").write_text(text + "\n")
    print(f"\nwritten: {folder / 'notebook_speed'}.md and .json")


if __name__ == "__main__":
    main()
