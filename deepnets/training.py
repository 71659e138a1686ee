"""A small, fast training loop: data stays on the device as tensors and is batched by indexing."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import sys
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnets.data import MNIST


def pick_device() -> torch.device:
    """CUDA if there is a GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class History:
    """What a run measured: per-step training loss and accuracy, per-epoch accuracies (in %)."""

    step_loss: list[float] = field(default_factory=list)
    step_accuracy: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    # Test accuracy measured several times an epoch (on at most CURVE_TEST_IMAGES test images),
    # so that even a one-epoch run draws a curve: eval_accuracy[i] was measured after eval_steps[i].
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    speed: str = ""  # how the run computed, as Speed.describe() says: "bf16, channels-last", "fp32"

    @property
    def final_test_accuracy(self) -> float:
        return self.test_accuracy[-1]


# The test images the in-epoch curve is measured on: enough for a readable curve (one image is
# 0.05 points), few enough that four measurements an epoch add about a tenth to a run's time.
CURVE_TEST_IMAGES = 2000

# Steps between copies of the losses to the host: every step on the CPU, where copying costs
# nothing; on an accelerator every 25, so that the device never waits for Python.
SYNC_EVERY = {"cpu": 1}
ACCELERATOR_SYNC_EVERY = 25

# Test images per forward pass. On a CPU, batches of 1,000 ran 2 to 4 times slower per image than
# batches of 128 (ResidualCNN and BaselineCNN, fp32 and bf16, on a 2-core AMD EPYC), most of it
# page faults: with malloc keeping freed memory (keep_freed_memory) ResidualCNN's fp32 test pass
# ran at 4,130 images/s in batches of 128 and 3,920 in batches of 1,000 (2,770 and 1,820 without).
# An accelerator wants large ones. In eval mode BatchNorm uses its running statistics, so the
# batch size changes the speed, not the answer.
EVAL_BATCH_SIZE = {"cpu": 128}
ACCELERATOR_EVAL_BATCH_SIZE = 1000


def eval_batch_size(device: torch.device) -> int:
    return EVAL_BATCH_SIZE.get(device.type, ACCELERATOR_EVAL_BATCH_SIZE)


# Set any of these to 0 to turn that part of the fast path off (e.g. DEEPNETS_BF16=0 for fp32).
BF16_VARIABLE = "DEEPNETS_BF16"
CHANNELS_LAST_VARIABLE = "DEEPNETS_CHANNELS_LAST"
CUDA_GRAPHS_VARIABLE = "DEEPNETS_CUDA_GRAPHS"
MALLOC_VARIABLE = "DEEPNETS_MALLOC"


@dataclass(frozen=True)
class Speed:
    """How `fit` and `evaluate` compute; None lets them decide for the model and the machine.

    bf16: bfloat16 autocast. It needs no loss scaling and runs at full speed on tensor cores and
    on CPUs with bfloat16 units (AMX, AVX-512 BF16); elsewhere it is slower than fp32, so by
    default it is on exactly there. channels_last: the (N, H, W, C) memory layout, faster for
    convolutions on tensor-core GPUs and most CPUs; by default on when the model runs in it (a
    forward that calls x.view(N, -1) on a convolution's output does not). compile: train through
    torch.compile. cuda_graphs: on a CUDA GPU, record one training step (forward, loss, backward,
    Adam) as a CUDA graph after a few ordinary steps and replay it for every full batch, so that
    the CPU launches one graph instead of hundreds of kernels; by default on with CUDA, unless
    compiled. A small network at batch 128 spends most of its step waiting for those launches.
    A replayed step does not run the model's Python code again: a `print` in `forward` prints
    during the first steps only, and forward hooks fire then too. `fit` falls back to ordinary
    steps, and says so, when the step cannot be recorded (a forward that reads a value back to
    the CPU, `.item()`, cannot).
    """

    bf16: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    cuda_graphs: bool | None = None

    def describe(self) -> str:
        parts = ["bf16" if self.bf16 else "fp32"] + ["channels-last"] * bool(self.channels_last)
        return ", ".join(parts + ["compiled"] * self.compile + ["CUDA graphs"] * bool(self.cuda_graphs))


def turned_off(variable: str) -> bool:
    """Whether the environment variable `variable` says 0, false, off or no."""
    return os.environ.get(variable, "").strip().lower() in ("0", "false", "off", "no")


def default_speed() -> Speed:
    """The fast path, less what DEEPNETS_BF16=0, DEEPNETS_CHANNELS_LAST=0 or DEEPNETS_CUDA_GRAPHS=0
    turns off."""
    return Speed(bf16=False if turned_off(BF16_VARIABLE) else None,
                 channels_last=False if turned_off(CHANNELS_LAST_VARIABLE) else None,
                 cuda_graphs=False if turned_off(CUDA_GRAPHS_VARIABLE) else None)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16), where autocast pays."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if any(checks):
        return any(check() for check in checks if check is not None)
    cpuinfo = Path("/proc/cpuinfo")  # older PyTorch: ask the kernel (Linux only)
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return "amx_bf16" in flags or "avx512_bf16" in flags


def has_bf16_units(device: torch.device) -> bool:
    """Whether bfloat16 autocast is faster than fp32 on `device`."""
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # PyTorch before 2.3 has no emulation to exclude
            return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def runs_channels_last(model: nn.Module, image_shape=(1, 28, 28)) -> bool:
    """Whether `model` accepts channels-last input (a forward that calls x.view(N, -1) does not).

    Probed once per model, image shape and device, on two blank images in eval mode without
    gradients, so BatchNorm's running statistics do not change; the model is left in the default
    layout and its modes. A forward that fails for another reason also answers False, and then
    fails again, with its own error, when it trains.
    """
    device = next(model.parameters(), torch.zeros(())).device
    known = _CHANNELS_LAST_PROBED.setdefault(model, {})
    key = (tuple(image_shape), str(device))
    if key not in known:
        probe = torch.zeros(2, *image_shape, device=device).contiguous(memory_format=torch.channels_last)
        try:
            with torch.no_grad(), measured_as_is(model, train_mode=False):
                model.to(memory_format=torch.channels_last)(probe)
            known[key] = True
        except Exception:
            known[key] = False
        finally:
            model.to(memory_format=torch.contiguous_format)
    return known[key]


# runs_channels_last's answers, by model (forgotten with the model).
_CHANNELS_LAST_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def choose_speed(speed: Speed | None, model: nn.Module, device: torch.device,
                 image_shape: tuple[int, ...]) -> Speed:
    """`speed` (default: `default_speed()`) with every None decided for `model` on `device`."""
    speed = speed or default_speed()
    bf16 = has_bf16_units(device) if speed.bf16 is None else speed.bf16
    channels_last = speed.channels_last
    if channels_last is None:
        channels_last = device.type in ("cpu", "cuda") and runs_channels_last(model, image_shape)
    cuda_graphs = not speed.compile if speed.cuda_graphs is None else speed.cuda_graphs
    return replace(speed, bf16=bf16 and device.type in ("cpu", "cuda"), channels_last=channels_last,
                   cuda_graphs=cuda_graphs and device.type == "cuda")


# glibc's malloc hands a freed block of more than its mmap threshold (at first 128 kB), and a
# free heap top of more than its trim threshold, straight back to the kernel. A CPU training step
# frees every activation it made (12.8 MB each for ResidualCNN at batch 128), so the next step
# asked the kernel for them again and took a page fault, and a page zeroed, for every 4 kB it wrote.
# Keeping blocks below KEEP_BLOCKS_BELOW on the heap, and up to KEEP_FREED freed bytes in the
# process, made ResidualCNN's fp32 training step 1.15x and its test pass 1.5x faster on a 2-core
# AMD EPYC, and the Session 7 notebook's training call 1.08x (bf16) to 1.10x (fp32)
# (benchmarks/RESULTS.md); the numbers computed are the same.
KEEP_BLOCKS_BELOW = 256 << 20
KEEP_FREED = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h


@functools.cache
def keep_freed_memory() -> bool:
    """Have this process's malloc keep freed memory for reuse (once; see KEEP_FREED); whether it does.

    Called by `fit` and `correct_answers`, so the whole kernel of a notebook that trains with
    deepnets gets it. Only with glibc (Linux); DEEPNETS_MALLOC=0 leaves malloc as it is. The
    process then keeps up to KEEP_FREED of freed memory instead of returning it to the system.
    """
    if turned_off(MALLOC_VARIABLE) or not runs_on_glibc():
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this Python runs on
        # A glibc that refuses so high an mmap threshold gets 32 MB, as high as its own moving one goes.
        kept = libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BLOCKS_BELOW) or libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        return bool(kept and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED))
    except (AttributeError, OSError):  # no mallopt to call
        return False


def runs_on_glibc() -> bool:
    """Whether this Python runs on GNU libc (most Linux), whose malloc keep_freed_memory sets."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), or no such name (macOS, musl)
        return False


def _memory_format(speed: Speed) -> torch.memory_format:
    return torch.channels_last if speed.channels_last else torch.contiguous_format


def _autocast(device: torch.device, speed: Speed):
    # Autocast's cache of cast weights cannot live inside a CUDA graph (PyTorch's CUDA graph notes).
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu",
                          dtype=torch.bfloat16, enabled=bool(speed.bf16),
                          cache_enabled=not speed.cuda_graphs)


# Images a train-mode measurement normalizes together (see correct_answers).
TRAIN_MODE_BATCH_SIZE = 1000


@contextlib.contextmanager
def measured_as_is(model: nn.Module, train_mode: bool, dropout: bool = True):
    """Measure `model` in train or eval mode and leave it as it was: each module's mode is put
    back, and after a train-mode measurement every buffer too (BatchNorm's running statistics
    and batch count). Without this, a measurement's batch is folded into the running
    statistics, and every eval-mode result after it changes. `dropout=False` keeps dropout off
    in train mode, for a measurement whose noise must come from the input alone."""
    modes = {module: module.training for module in model.modules()}
    saved = {name: buffer.clone() for name, buffer in model.named_buffers()} if train_mode else {}
    model.train(train_mode)
    if not dropout:
        for module in model.modules():
            if isinstance(module, nn.modules.dropout._DropoutNd):
                module.eval()
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved:
                    buffer.copy_(saved[name])
        for module, training in modes.items():
            module.training = training


@torch.no_grad()
def correct_answers(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                    train_mode: bool = False, batch_size: int | None = None,
                    speed: Speed | None = None) -> torch.Tensor:
    """Which images `model` classifies correctly (bool, one per image, on the CPU).

    Computed as `fit` and `evaluate` compute (`speed`, default: the fast path), so a paired
    verdict and the accuracy `fit` reports are one measurement, not two that can differ by an
    image or two of rounding.

    `train_mode=True` normalizes with each batch's own statistics instead of BatchNorm's running
    ones, which tells a model that learned apart from running statistics that lag behind it.
    Then the batch is part of the measurement, and is TRAIN_MODE_BATCH_SIZE images on every
    device; in eval mode it changes only the speed (`eval_batch_size`). Either way the model is
    left as it was: a train-mode pass would otherwise fold the test images into BatchNorm's
    running statistics, and every eval-mode result after it would be measured with statistics
    of the test set.
    """
    keep_freed_memory()
    device = next(model.parameters()).device
    speed = choose_speed(speed, model, device, tuple(images.shape[1:]))
    batch_size = batch_size or (TRAIN_MODE_BATCH_SIZE if train_mode else eval_batch_size(device))
    right = []
    with measured_as_is(model, train_mode):
        for start in range(0, len(labels), batch_size):
            batch = images[start:start + batch_size].to(device, memory_format=_memory_format(speed))
            with _autocast(device, speed):
                predicted = model(batch).argmax(dim=1)
            right.append(predicted == labels[start:start + batch_size].to(device))
    return torch.cat(right).cpu()  # one host sync for the whole test set


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int | None = None, speed: Speed | None = None) -> float:
    """Accuracy in % of `model` (in eval mode) on `images`, `labels`, computed as `speed` says,
    `batch_size` images at a time (default: the device's, `eval_batch_size`)."""
    right = correct_answers(model, images, labels, batch_size=batch_size, speed=speed)
    return 100.0 * right.sum().item() / len(labels)


def progress_bar(total: int, description: str, enabled: bool = True):
    """A tqdm bar: a widget in JupyterLab, plain text on stdout in CI and under nbgrader."""
    plain = bool(os.environ.get("CI") or os.environ.get("NBGRADER_EXECUTION"))
    if plain:
        from tqdm import tqdm

        # stdout, not stderr: nbgrader treats any stderr output in a graded cell as a failure.
        return tqdm(total=total, desc=description, disable=not enabled, file=sys.stdout,
                    mininterval=5, ascii=True)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=not enabled)


def fit(model: nn.Module, data: MNIST, *, epochs: int = 1, batch_size: int = 128,
        lr: float = 1e-3, seed: int = 0, device: torch.device | str | None = None,
        optimizer: torch.optim.Optimizer | None = None, progress: bool = True,
        name: str | None = None, on_epoch=None, on_step=None, decay_lr: bool = False,
        evals_per_epoch: int = 4, speed: Speed | None = None) -> History:
    """Train `model` on `data` with Adam and cross-entropy; test after every epoch.

    The data is moved to the device once and shuffled by a seeded permutation, so two models
    trained with the same seed see exactly the same batches in the same order. With
    `decay_lr`, the learning rate falls along a cosine to zero by the last step, which makes
    the final accuracy far less dependent on where the last few noisy steps happened to land.

    Test accuracy is also measured `evals_per_epoch` times an epoch, evenly spaced, on the first
    CURVE_TEST_IMAGES test images (`history.eval_steps`, `history.eval_accuracy`); the last one
    of each epoch is the full test set's, the same number as `history.test_accuracy`.

    Callbacks: `on_epoch(epoch, history)` after each epoch's test, `on_step(step, history)`
    after every optimizer step (`step` counts from 1); `history.step_loss` is complete at the
    end of every epoch. The run takes the fast path its hardware and model allow (see `Speed`;
    DEEPNETS_BF16=0 and DEEPNETS_CHANNELS_LAST=0 turn its parts off) unless `speed` says
    otherwise; the progress bar names it, `history.speed` records it, and the model is handed
    back in the default memory layout.
    """
    keep_freed_memory()
    device = torch.device(device) if device is not None else pick_device()
    sync_every = SYNC_EVERY.get(device.type, ACCELERATOR_SYNC_EVERY)
    model.to(device)
    speed = choose_speed(speed, model, device, tuple(data.train_images.shape[1:]))
    memory_format = _memory_format(speed)
    model.to(memory_format=memory_format)
    step_model = torch.compile(model) if speed.compile else model
    data = data.to(device)
    # A recorded step replays the optimizer too: only fit's own Adam, with its state kept on the
    # GPU (capturable), and a learning rate that does not change (no decay_lr) can be recorded.
    speed = replace(speed, cuda_graphs=speed.cuda_graphs and optimizer is None and not decay_lr)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, capturable=bool(speed.cuda_graphs))
    order_generator = torch.Generator().manual_seed(seed)
    num_train = len(data.train_labels)
    steps_per_epoch = (num_train + batch_size - 1) // batch_size
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
                if decay_lr else None)

    def eager_step(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step on the images at `index`: (loss, number right), both on the device."""
        images = data.train_images[index].contiguous(memory_format=memory_format)
        labels = data.train_labels[index]
        with _autocast(device, speed):
            logits = step_model(images)
            loss = F.cross_entropy(logits, labels)
        # A recorded step writes into the same gradient tensors every time, so they are zeroed, not freed.
        optimizer.zero_grad(set_to_none=not speed.cuda_graphs)
        loss.backward()
        optimizer.step()
        return loss.detach().float(), (logits.argmax(dim=1) == labels).sum()

    train_step = CudaGraphStep(eager_step, batch_size, device) if speed.cuda_graphs else eager_step
    history = History(speed=speed.describe())
    label = f"{name or type(model).__name__} ({speed.describe()})"
    bar = progress_bar(epochs * steps_per_epoch, label, enabled=progress)
    # Steps (counted within an epoch, from 1) after which the curve is measured; the last is the epoch's end.
    curve_points = {round(steps_per_epoch * (i + 1) / evals_per_epoch)
                    for i in range(max(0, evals_per_epoch - 1))} - {0, steps_per_epoch}
    curve_images = data.test_images[:CURVE_TEST_IMAGES]
    curve_labels = data.test_labels[:CURVE_TEST_IMAGES]
    step = 0
    start_time = time.perf_counter()
    try:
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(num_train, generator=order_generator).to(device)
            pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # per-step results not yet on the host
            total_loss = 0.0
            correct = torch.zeros((), dtype=torch.long, device=device)
            for start in range(0, num_train, batch_size):
                index = order[start:start + batch_size]
                loss, batch_correct = train_step(index)
                if schedule is not None:
                    schedule.step()
                pending.append((loss, batch_correct, len(index)))
                correct += batch_correct
                step += 1
                bar.update(1)
                if len(pending) >= sync_every or start + batch_size >= num_train:
                    total_loss += _flush(pending, history)
                    bar.set_postfix(loss=f"{history.step_loss[-1]:.3f}", refresh=False)
                if step - epoch * steps_per_epoch in curve_points:
                    history.eval_steps.append(step)
                    history.eval_accuracy.append(evaluate(model, curve_images, curve_labels, speed=speed))
                if on_step is not None:
                    on_step(step, history)
            history.epoch_loss.append(total_loss / num_train)
            history.train_accuracy.append(100.0 * correct.item() / num_train)
            history.test_accuracy.append(evaluate(model, data.test_images, data.test_labels, speed=speed))
            if evals_per_epoch > 0:
                history.eval_steps.append(step)
                history.eval_accuracy.append(history.test_accuracy[-1])
            bar.set_postfix(loss=f"{history.epoch_loss[-1]:.3f}",
                            test_acc=f"{history.test_accuracy[-1]:.1f}%")
            if on_epoch is not None:
                on_epoch(epoch, history)
    finally:
        if speed.cuda_graphs and train_step.failure:
            history.speed = replace(speed, cuda_graphs=False).describe()
        # Code that runs the model afterwards (gradient plots, a weight's .view) expects the default layout.
        model.to(memory_format=torch.contiguous_format)
        history.seconds = time.perf_counter() - start_time
        bar.close()
    return history


class CudaGraphStep:
    """`eager_step(index)` recorded once as a CUDA graph and replayed for every full batch.

    The first WARMUP_STEPS steps run as written, on a side stream, as PyTorch's CUDA graph notes
    require (they initialise the optimizer's state and the libraries' workspaces); they are real
    training steps, so the run sees the same batches in the same order as without a graph.
    Recording does not execute anything; the step that triggers it is then replayed. A batch of
    another size (the last, short one) runs as written. If the step cannot be recorded, every
    later step runs as written and `failure` says why.
    """

    WARMUP_STEPS = 3

    def __init__(self, eager_step, batch_size: int, device: torch.device):
        self.eager_step = eager_step
        self.index = torch.zeros(batch_size, dtype=torch.long, device=device)  # the graph's input
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.failure: str | None = None
        self.steps_before_graph = 0

    def __call__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full_batch = len(index) == len(self.index)
        if self.graph is None and self.failure is None and full_batch:
            if self.steps_before_graph < self.WARMUP_STEPS:
                self.steps_before_graph += 1
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    outputs = self.eager_step(index)
                torch.cuda.current_stream().wait_stream(side)
                return outputs
            self._record()
        if self.graph is None or not full_batch:
            return self.eager_step(index)
        self.index.copy_(index)
        self.graph.replay()
        loss, correct = self.outputs
        return loss.clone(), correct.clone()  # the next replay overwrites the graph's outputs

    def _record(self) -> None:
        graph, stream = torch.cuda.CUDAGraph(), torch.cuda.current_stream()
        try:
            with torch.cuda.graph(graph):
                self.outputs = self.eager_step(self.index)
            self.graph = graph
        except Exception as error:  # e.g. a forward that calls .item(): train on without the graph
            # A failed capture can leave its own stream current (torch.cuda.graph's exit stops at
            # the failed capture_end); nothing was executed, so the model and optimizer are as before.
            torch.cuda.set_stream(stream)
            self.outputs = None
            self.failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            print(f"The training step could not be recorded as a CUDA graph ({self.failure[:200]}); "
                  f"training on with ordinary steps.")


def _flush(pending: list[tuple[torch.Tensor, torch.Tensor, int]], history: History) -> float:
    """Copy the pending (loss, correct, batch size) triples to the host in one go.

    Records each step's loss and accuracy in `history`; returns their loss summed over images.
    """
    losses = torch.stack([loss for loss, _, _ in pending]).tolist()
    correct = torch.stack([right for _, right, _ in pending]).tolist()
    sizes = [size for _, _, size in pending]
    history.step_loss.extend(losses)
    history.step_accuracy.extend(100.0 * right / size for right, size in zip(correct, sizes))
    total = sum(loss * size for loss, size in zip(losses, sizes))
    pending.clear()
    return total
