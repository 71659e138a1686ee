"""Time-to-accuracy and throughput of the course's training against the lesson plan's own recipe.

    python benchmarks/bench.py [--data-root DIR] [--device cpu|cuda] [--quick] [--compile]

Two ways to train the same model from the same initial weights, on the same machine, in one run:

* **seed recipe**, the `train_model` of the Session 7 lesson plan (seed 000): torchvision's MNIST
  dataset with a per-image `ToTensor`, a `DataLoader` (batch 128, shuffled), Adam at 1e-3,
  every batch moved to the device inside the loop, fp32;
* **course**, `deepnets.fit`: the data set as tensors on the device, batched by indexing,
  channels-last memory format, bfloat16 autocast (on CUDA, and on CPUs with bfloat16 units:
  AMX or AVX-512 BF16), optionally `torch.compile`, with the same batch size, optimizer and
  learning rate. One more case, "course fp32", trains without bfloat16 to separate the two.

Both are tested on the full test set every 1/`--evals-per-epoch` of an epoch with the clock
stopped, and stop at the first test at or above the target accuracy (98.5% on a CPU, 99.0% on
CUDA), though not before one whole epoch. Then one epoch on 10k and 30k images shows how the
time grows with the data. On CUDA, the course trains a third time without CUDA graphs (fit's
default there records each step as one), ResNet-18 trains to 99.5% once for each
`--resnet18-epochs`, and achieved TFLOP/s are set against the card's bf16 matrix-multiply peak
measured in the same run. Each case runs in a fresh
subprocess, so its peak memory (RSS on a CPU, `max_memory_allocated` on CUDA) is its own.

The report is printed as Markdown and written with the raw numbers to `--output-dir`.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see deepnets/__init__.py
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from deepnets import Speed, evaluate, fit, load_mnist, set_seed  # noqa: E402
from deepnets.data import DATA_ROOT_VARIABLE, RAW_FILES  # noqa: E402
from deepnets.training import has_bf16_units  # noqa: E402


# --- the models --------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """The lesson plan's block: ReLU(BN(conv(ReLU(BN(conv(x))))) + x)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class ResidualCNN(nn.Module):
    """The lesson plan's ResidualCNN, with flatten instead of view so that it runs channels-last."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.res1 = ResidualBlock(32)
        self.pool = nn.MaxPool2d(2, 2)
        self.res2 = ResidualBlock(32)
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):                       # (N, 1, 28, 28)
        x = F.relu(self.bn1(self.conv1(x)))     # (N, 32, 28, 28)
        x = self.pool(self.res1(x))             # (N, 32, 14, 14)
        return self.fc(self.res2(x).flatten(1))  # (N, 10)


class BasicBlock(nn.Module):
    """ResNet's basic block, with a 1x1 projection on the skip path when the shape changes."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 28x28 MNIST as in the Day 13 plan: a 3x3 stem, stages [2, 2, 2, 2], 64-512 channels."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, in_channels = [], 64
        for out_channels, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            stages += [BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)]
            in_channels = out_channels
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))          # (N, 512, 4, 4)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))     # (N, 10)


MODELS = {"ResidualCNN": ResidualCNN, "ResNet18": ResNet18}


# --- measuring ---------------------------------------------------------------------------------

class TargetReached(Exception):
    """Raised from a training callback to stop at the target accuracy."""


class Clock:
    """Training time with the tests taken out: wall and CPU seconds, and the test results so far."""

    def __init__(self, device: torch.device):
        self.device = device
        self.wall = self.cpu = 0.0
        self.tests: list[dict] = []
        self.epoch_seconds: list[float] = []

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def start(self):
        self.sync()
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self):
        self.sync()
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu

    def record(self, images: int, accuracy: float) -> float:
        self.tests.append(dict(images=images, seconds=round(self.wall, 3), cpu_seconds=round(self.cpu, 3),
                               test_accuracy=accuracy))
        return accuracy


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def resident_memory_mb() -> float | None:
    """This process's resident memory now (Linux), to tell the libraries' share from the data's."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    line = next(line for line in status.read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def flops_per_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
    """Floating-point operations of one training step (forward and backward), as PyTorch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.device.type == "cuda"):
        F.cross_entropy(model(images), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, size: int) -> float:
    """Achieved TFLOP/s of a large square matrix multiply: the practical peak of this device."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    repeats = 20 if device.type == "cuda" else 5
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


# --- the two recipes ---------------------------------------------------------------------------

def seed_recipe(case: dict, raw_root: Path, device: torch.device, clock: Clock) -> None:
    """The lesson plan's train_model, with a stop-the-clock test every `test_every` steps."""
    import torchvision
    import torchvision.transforms as transforms
    from torch.utils.data import DataLoader, Subset

    transform = transforms.Compose([transforms.ToTensor()])
    train_dataset = torchvision.datasets.MNIST(raw_root, train=True, download=False, transform=transform)
    test_dataset = torchvision.datasets.MNIST(raw_root, train=False, download=False, transform=transform)
    train_dataset = Subset(train_dataset, range(case["train_size"] or len(train_dataset)))
    test_dataset = Subset(test_dataset, range(case["test_size"] or len(test_dataset)))
    train_loader = DataLoader(train_dataset, batch_size=case["batch_size"], shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=128, shuffle=False)

    set_seed(case["seed"])
    model = MODELS[case["model"]]().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=case["lr"])

    def test() -> float:
        model.eval()
        correct_test, total_test = 0, 0
        with torch.no_grad():
            for data, targets in test_loader:
                data, targets = data.to(device), targets.to(device)
                _, predicted = torch.max(model(data), 1)
                total_test += targets.size(0)
                correct_test += (predicted == targets).sum().item()
        model.train()
        return 100 * correct_test / total_test

    images, reached = 0, False
    for epoch in range(case["max_epochs"]):
        model.train()
        epoch_start = clock.wall
        clock.start()
        for batch, (data, targets) in enumerate(train_loader, start=1):
            data, targets = data.to(device), targets.to(device)
            optimizer.zero_grad()
            outputs = model(data)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            _, predicted = torch.max(outputs, 1)
            (predicted == targets).sum().item()   # the recipe counts correct predictions every step
            images += targets.size(0)
            if case["test_every"] and batch % case["test_every"] == 0 and batch < len(train_loader):
                clock.stop()
                reached |= clock.record(images, test()) >= case["target"]
                if reached and epoch >= 1:
                    return
                clock.start()
        clock.stop()
        clock.epoch_seconds.append(round(clock.wall - epoch_start, 3))
        reached |= clock.record(images, test()) >= (case["target"] or 0)
        if reached:
            return


def course_recipe(case: dict, data_root: Path, device: torch.device, clock: Clock) -> dict:
    """deepnets.fit as the notebooks call it, with the same batch size, optimizer and learning rate."""
    data = load_mnist(data_root, verbose=False).subset(case["train_size"], case["test_size"])
    set_seed(case["seed"])
    model = MODELS[case["model"]]()
    num_train = len(data.train_labels)
    steps_per_epoch = -(-num_train // case["batch_size"])
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device)
    state = dict(images=0, epoch_start=0.0, reached=False)
    speed = Speed(bf16=case["bf16"], channels_last=True, compile=case.get("compile", False),
                  cuda_graphs=case.get("cuda_graphs"))

    def on_step(step: int, history) -> None:
        epoch, step_in_epoch = divmod(step - 1, steps_per_epoch)
        state["images"] = epoch * num_train + min((step_in_epoch + 1) * case["batch_size"], num_train)
        if step_in_epoch + 1 == steps_per_epoch:
            clock.stop()   # fit tests the model now; on_epoch restarts the clock
            clock.epoch_seconds.append(round(clock.wall - state["epoch_start"], 3))
        elif case["test_every"] and (step_in_epoch + 1) % case["test_every"] == 0:
            clock.stop()
            accuracy = evaluate(model, test_images, test_labels, speed=speed)
            state["reached"] |= clock.record(state["images"], accuracy) >= case["target"]
            if state["reached"] and epoch >= 1:
                raise TargetReached
            clock.start()

    def on_epoch(epoch: int, history) -> None:
        state["reached"] |= clock.record(state["images"], history.test_accuracy[-1]) >= (case["target"] or 0)
        if state["reached"]:
            raise TargetReached
        state["epoch_start"] = clock.wall
        clock.start()

    model.to(device, memory_format=torch.channels_last)
    sample = data.train_images[:case["batch_size"]].to(device, memory_format=torch.channels_last)
    flops = flops_per_step(copy.deepcopy(model), sample, data.train_labels[:case["batch_size"]].to(device))
    clock.start()
    try:
        fit(model, data, epochs=case["max_epochs"], batch_size=case["batch_size"], lr=case["lr"],
            seed=case["seed"], device=device, progress=False, on_step=on_step, on_epoch=on_epoch,
            decay_lr=case.get("decay_lr", False), speed=speed)
    except TargetReached:
        pass
    return dict(flops_per_step=flops)


def run_case(case: dict) -> dict:
    """One measurement, in this process: train until the target (or one epoch), report the clock."""
    device = torch.device(case["device"])
    torch.backends.cudnn.benchmark = bool(case.get("cudnn_benchmark"))  # an experiment: fit leaves it off
    import torchvision  # noqa: F401 (in both recipes, so that their baselines are alike)

    torch.zeros(1, device=device)  # initialise the device before the baseline
    baseline = resident_memory_mb() if device.type == "cpu" else 0.0
    clock = Clock(device)
    extra = {}
    if case["recipe"] == "seed":
        seed_recipe(case, Path(case["raw_root"]), device, clock)
    else:
        extra = course_recipe(case, Path(case["data_root"]), device, clock)
    trained = clock.tests[-1]["images"] if clock.tests else 0
    reached = next((t for t in clock.tests if t["test_accuracy"] >= case["target"]), None) \
        if case["target"] else None
    result = dict(case, images=trained, seconds=round(clock.wall, 3), cpu_seconds=round(clock.cpu, 3),
                  images_per_second=round(trained / clock.wall, 1) if clock.wall else None,
                  epoch_seconds=clock.epoch_seconds, tests=clock.tests,
                  seconds_to_target=reached["seconds"] if reached else None,
                  cpu_seconds_to_target=reached["cpu_seconds"] if reached else None,
                  peak_memory_mb=round(peak_memory_mb(device), 1),
                  baseline_memory_mb=round(baseline, 1) if baseline is not None else None, **extra)
    if "flops_per_step" in result and clock.wall:
        steps = trained / case["batch_size"]
        result["achieved_tflops"] = round(result["flops_per_step"] * steps / clock.wall / 1e12, 4)
    return result


# --- orchestration -----------------------------------------------------------------------------

def prepare_raw_root(data_root: Path | None, folder: Path) -> tuple[Path, Path]:
    """A torchvision-readable copy of MNIST (unpacked IDX files) and the data root `load_mnist` reads."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    if data_root is not None:
        source = data_root / "MNIST" / "raw"
        for name in [n for pair in RAW_FILES.values() for n in pair]:
            if (source / name).is_file():
                shutil.copy(source / name, raw / name)
            else:
                with gzip.open(source / f"{name}.gz", "rb") as packed, open(raw / name, "wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
        return folder, data_root
    # No data root: write whatever load_mnist finds (download cache or the offline sample) as IDX.
    data = load_mnist(verbose=True)
    for split, (images_name, labels_name) in RAW_FILES.items():
        images = getattr(data, f"{split}_images").mul(255).round().to(torch.uint8).squeeze(1).numpy()
        labels = getattr(data, f"{split}_labels").to(torch.uint8).numpy()
        (raw / images_name).write_bytes(np.array([2051, *images.shape], ">i4").tobytes() + images.tobytes())
        (raw / labels_name).write_bytes(np.array([2049, len(labels)], ">i4").tobytes() + labels.tobytes())
    return folder, folder


def in_subprocess(case: dict) -> dict:
    """Run one case in a fresh Python, so that its peak memory and thread pools are its own."""
    completed = subprocess.run([sys.executable, __file__, "--case", "-"], input=json.dumps(case),
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"case {case['name']} failed with exit status {completed.returncode} "
                           f"(negative: killed by that signal):\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def plan(arguments, raw_root: Path, data_root: Path) -> list[dict]:
    """The cases to run, in order: time-to-accuracy pairs first, then the data-size sweep."""
    cuda = arguments.device == "cuda"
    quick = arguments.quick
    bf16 = has_bf16_units(torch.device(arguments.device))  # fit's own default
    base = dict(device=arguments.device, seed=0, lr=1e-3, batch_size=128, raw_root=str(raw_root),
                data_root=str(data_root), test_size=1_000 if quick else None,
                compile=arguments.compile, bf16=bf16)
    target = 80.0 if quick else (99.0 if cuda else 98.5)
    train_size = 2_000 if quick else None
    timed = dict(base, model="ResidualCNN", target=target, train_size=train_size,
                 max_epochs=2 if quick else 5, test_every=None)
    steps_per_epoch = -(-(train_size or 60_000) // 128)
    timed["test_every"] = max(1, steps_per_epoch // arguments.evals_per_epoch)
    cases = [dict(timed, name="seed", recipe="seed"), dict(timed, name="course", recipe="course")]
    if cuda:
        # fit's default on CUDA records each step as a CUDA graph; the same run without shows what that buys.
        cases.append(dict(timed, name="course without CUDA graphs", recipe="course", cuda_graphs=False))
        for epochs in arguments.resnet18_epochs:  # the learning rate decays to 0 over `epochs`
            cases.append(dict(base, name=f"course ResNet18 {epochs} epochs", recipe="course", model="ResNet18",
                              target=99.5, train_size=None, max_epochs=epochs,
                              batch_size=arguments.resnet18_batch, lr=arguments.resnet18_lr,
                              decay_lr=True, test_every=max(1, 60_000 // arguments.resnet18_batch
                                                            // arguments.evals_per_epoch)))
    sizes = [500, 1_000] if quick else [10_000, 30_000]
    for size in sizes:
        for recipe in ("seed", "course"):
            cases.append(dict(base, name=f"{recipe} {size:,}", recipe=recipe, model="ResidualCNN",
                              target=None, train_size=size, max_epochs=1, test_every=None))
    if bf16:
        cases.append(dict(base, name=f"course fp32 {sizes[0]:,}", recipe="course", model="ResidualCNN",
                          target=None, train_size=sizes[0], max_epochs=1, test_every=None, bf16=False))
    return cases


def machine(device: str) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    info = dict(date=datetime.datetime.now().isoformat(timespec="minutes"), cpu=cpu,
                cores=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), platform=platform.platform())
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def report(results: list[dict], info: dict, peaks: dict) -> str:
    """The results as Markdown: the comparison, the raw cases, the data-size sweep."""
    by_name = {r["name"]: r for r in results}
    seed, course = by_name["seed"], by_name["course"]
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores ({info['torch_threads']} torch threads, "
             f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})"
             + (f", {info['gpu']}" if "gpu" in info else "") + f"; PyTorch {info['torch']}; {info['date']}.",
             f"Load average (1 min) at start {info['load_start']:.1f}, at end {info['load_end']:.1f}. "
             f"Course: channels-last, bfloat16 autocast {'on' if course['bf16'] else 'off'}"
             f"{', torch.compile' if course.get('compile') else ''}.", "",
             "| case | model | images | train s | CPU s | images/s | time to target | peak memory MB (before data) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        target = (f"{r['seconds_to_target']:.1f} s to {r['target']}%" if r.get("seconds_to_target") is not None
                  else (f"not reached ({max(t['test_accuracy'] for t in r['tests']):.2f}% best)"
                        if r.get("target") else "-"))
        lines.append(f"| {r['name']} | {r['model']} | {r['images']:,} | {r['seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | {r['images_per_second']:.0f} | {target} | "
                     f"{r['peak_memory_mb']:.0f}"
                     + (f" ({r['baseline_memory_mb']:.0f})" if r.get("baseline_memory_mb") else "") + " |")
    lines += ["", "Test accuracy along the way (images trained: accuracy, seconds):"]
    timed = [r for r in results if r["model"] == "ResidualCNN" and r.get("target") and r["tests"]]
    for r in timed:
        lines.append(f"- {r['name']}: " + "; ".join(
            f"{t['images']:,}: {t['test_accuracy']:.2f}% at {t['seconds']:.1f} s" for t in r["tests"]))
    lines += ["", "Ratios (seed recipe / course):"]
    if seed.get("seconds_to_target") and course.get("seconds_to_target"):
        lines.append(f"- time to {seed['target']}%: {seed['seconds_to_target'] / course['seconds_to_target']:.2f}x "
                     f"(CPU time: {seed['cpu_seconds_to_target'] / course['cpu_seconds_to_target']:.2f}x)")
    lines.append(f"- throughput (images/s, course / seed): "
                 f"{course['images_per_second'] / seed['images_per_second']:.2f}x")
    for r in timed:
        if r["name"] not in ("seed", "course") and seed.get("seconds_to_target") and r.get("seconds_to_target"):
            lines.append(f"- time to {seed['target']}%, {r['name']}: "
                         f"{seed['seconds_to_target'] / r['seconds_to_target']:.2f}x")
    sweep = [r for r in results if r["target"] is None and r["name"].split()[1] != "fp32"]
    if sweep:
        lines += ["", "Data-size sweep, one epoch (seconds; the full-data row is the first epoch above):",
                  "", "| images | seed s | course s | seed / course |", "| ---: | ---: | ---: | ---: |"]
        sizes = sorted({r["train_size"] for r in sweep})
        rows = [(size, by_name[f"seed {size:,}"]["seconds"], by_name[f"course {size:,}"]["seconds"])
                for size in sizes]
        if seed["epoch_seconds"] and course["epoch_seconds"]:
            rows.append((60_000 if not seed["train_size"] else seed["train_size"],
                         seed["epoch_seconds"][0], course["epoch_seconds"][0]))
        for size, s, c in rows:
            lines.append(f"| {size:,} | {s:.1f} | {c:.1f} | {s / c:.2f}x |")
    lines += ["", "Achieved FLOP rate of the course's training (FLOPs as PyTorch's FlopCounterMode counts "
              "them, forward and backward) against a large matrix multiply measured in the same run:"]
    for r in results:
        if r.get("achieved_tflops") is not None:
            kind = "bf16" if r["bf16"] else "fp32"
            peak = peaks.get(kind)
            lines.append(f"- {r['name']}: {r['achieved_tflops'] * 1000:.1f} GFLOP/s"
                         + (f", {100 * r['achieved_tflops'] / peak:.1f}% of the {kind} matmul's "
                            f"{peak * 1000:.0f} GFLOP/s" if peak else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=os.environ.get(DATA_ROOT_VARIABLE) or None,
                        help=f"MNIST in torchvision's layout (default: ${DATA_ROOT_VARIABLE})")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2,000 images, a low target")
    parser.add_argument("--compile", action="store_true", help="train the course's model through torch.compile")
    parser.add_argument("--evals-per-epoch", type=int, default=4)
    parser.add_argument("--resnet18-batch", type=int, default=512)
    parser.add_argument("--resnet18-lr", type=float, default=2e-3)
    parser.add_argument("--resnet18-epochs", type=int, nargs="+", default=[3],
                        help="one ResNet-18 run for each number of epochs (its cosine schedule's length)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case as JSON (- for stdin)
    arguments = parser.parse_args()
    if arguments.case:
        case = sys.stdin.read() if arguments.case == "-" else arguments.case
        print(json.dumps(run_case(json.loads(case))))
        return

    info = machine(arguments.device)
    info["load_start"] = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="mnist-raw-") as folder:
        raw_root, data_root = prepare_raw_root(arguments.data_root, Path(folder))
        for case in plan(arguments, raw_root, data_root):
            print(f"running {case['name']} ...", flush=True)
            results.append(in_subprocess(case))
            r = results[-1]
            print(f"  {r['images']:,} images in {r['seconds']:.1f} s ({r['images_per_second']:.0f}/s), "
                  f"to target: {r['seconds_to_target']}", flush=True)
    device = torch.device(arguments.device)
    size = 8192 if device.type == "cuda" else (1024 if arguments.quick else 2048)
    peaks = {"fp32": matmul_peak_tflops(device, torch.float32, size)}
    if has_bf16_units(device):
        peaks["bf16"] = matmul_peak_tflops(device, torch.bfloat16, size)
    info["load_end"] = os.getloadavg()[0]
    info["matmul_peak_tflops"] = peaks
    text = report(results, info, peaks)
    print("\n" + text)
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{arguments.device}{'-quick' if arguments.quick else ''}"
    (arguments.output_dir / f"{stem}.json").write_text(json.dumps(dict(machine=info, results=results), indent=1))
    (arguments.output_dir / f"{stem}.md").write_text(text + "\n")
    print(f"\nwritten: {arguments.output_dir / stem}.md and .json")


if __name__ == "__main__":
    main()
