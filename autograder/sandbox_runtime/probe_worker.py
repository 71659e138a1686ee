"""Inside the sandbox: define the student's answer cells, run the grader's probes, report plain data.

Reads from stdin one JSON header line, then an .npz of input arrays (header["arrays"] bytes):
    {"preamble": code, "cells": [[grade_id, code], ...], "probes_source": code,
     "probes": [{"check": grade_id, "function": name, "timeout": seconds}], "arrays": n}
Writes JSON lines to the stdout it started with, one per answer cell and one per probe:
    {"cell": grade_id, "ok": true} | {"cell": grade_id, "error": "..."}
    {"check": grade_id, "value": plain data} | {"check": grade_id, "error": "..."}
What the student's code prints goes to stderr. Nothing here decides a grade: the grader compares
these values with the reference in its own process, so a lie told here can at most claim what
honest code could have done on the same inputs.
"""

import builtins
import io
import json
import os
import signal
import sys
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepnets.training import fit as _fit
from deepnets.data import MNIST as _MNIST
from deepnets.checks import GRADER_RECIPE as _GRADER_RECIPE

# Captured before any student code runs: later monkeypatching of torch, numpy or builtins does
# not change what these names refer to. TensorBase is an immutable C type.
_TensorBase, _Tensor, _ndarray = torch._C.TensorBase, torch.Tensor, np.ndarray
_type, _isinstance, _len, _float, _int, _bool, _str = type, isinstance, len, float, int, bool, str
_list, _dict, _tuple, _sorted, _repr = list, dict, tuple, sorted, repr
_from_numpy, _no_grad, _manual_seed = torch.from_numpy, torch.no_grad, torch.manual_seed
_DisableTorchFunction = torch._C.DisableTorchFunction
_dumps, _write, _alarm, _signal = json.dumps, os.write, signal.alarm, signal.signal
_Module, _Conv2d, _BatchNorm2d, _MaxPool2d = nn.Module, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d
_module_modules, _module_parameters = nn.Module.modules, nn.Module.named_parameters
_module_train = nn.Module.train
_module_children, _module_named_children = nn.Module.children, nn.Module.named_children
_register_forward_hook = nn.Module.register_forward_hook
_Adam, _autograd_backward, _autograd_grad = torch.optim.Adam, torch.autograd.backward, torch.autograd.grad
_relu, _cross_entropy = F.relu, F.cross_entropy
_exc_info, _extract_tb = sys.exc_info, traceback.extract_tb
_RECIPE = dict(_GRADER_RECIPE)
_BUILTINS = dict(vars(builtins))  # the probes' builtins: a copy the student's code never sees


class ProbeTimeout(BaseException):
    """Raised in the student's code when a probe runs past its time."""


class Tools:
    """What probes use instead of the (possibly monkeypatched) library names."""

    nn_Module, Conv2d, BatchNorm2d, MaxPool2d = _Module, _Conv2d, _BatchNorm2d, _MaxPool2d
    no_grad, MNIST = _no_grad, _MNIST
    manual_seed, relu, cross_entropy = (staticmethod(f) for f in (_manual_seed, _relu, _cross_entropy))
    isinstance, len, type, fit = (staticmethod(f) for f in (_isinstance, _len, _type, _fit))
    Adam = _Adam

    @staticmethod
    def recipe():
        """The grader's training recipe (deepnets.checks.GRADER_RECIPE), as captured at start."""
        return _dict(_RECIPE)

    def __init__(self, arrays):
        self._arrays = arrays

    def tensor(self, name, requires_grad=False):
        """A fresh tensor of the grader's input array `name`."""
        value = _from_numpy(self._arrays[name].copy())
        return value.requires_grad_(True) if requires_grad else value

    def array(self, name):
        return self._arrays[name].copy()

    @staticmethod
    def is_tensor(value):
        return _type(value) is _Tensor or _type(value) is torch.nn.Parameter

    def modules(self, module):
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        return _list(_module_modules(module))

    def parameters(self, module):
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        return _list(_module_parameters(module))

    def set_train(self, module, mode=True):
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        _module_train(module, mode)
        return module

    def children(self, module):
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        return _list(_module_children(module))

    def named_children(self, module):
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        return _list(_module_named_children(module))

    def forward_hook(self, module, hook):
        """module.register_forward_hook(hook), unpatched; returns the handle to remove it."""
        if not _isinstance(module, _Module):
            raise TypeError(f"expected an nn.Module, got {_type(module).__name__}")
        return _register_forward_hook(module, hook)

    def backward(self, tensor):
        """tensor.backward() for a real tensor, without the tensor's own (patchable) methods."""
        if not self.is_tensor(tensor):
            raise TypeError(f"a {_type(tensor).__name__} where a tensor was expected")
        _autograd_backward(tensor)

    def input_gradient(self, output, inputs):
        """d sum(output) / d inputs, computed afresh (None where no gradient reaches `inputs`).

        Unlike inputs.grad after a backward pass, a value the student's code stored in .grad
        does not count.
        """
        if not self.is_tensor(output):
            raise TypeError(f"a {_type(output).__name__} where a tensor was expected")
        with _DisableTorchFunction():
            total = _TensorBase.sum(output)
            if not _TensorBase.requires_grad.__get__(total):
                return None
        return _autograd_grad([total], [inputs], allow_unused=True)[0]

    def shape(self, tensor):
        """The shape of a real tensor as a list, read through the unpatchable C type."""
        with _DisableTorchFunction():
            return [_int(n) for n in _TensorBase.size(tensor)]

    def numel(self, tensor):
        with _DisableTorchFunction():
            return _int(_TensorBase.numel(tensor))

    def requires_grad(self, tensor):
        with _DisableTorchFunction():
            return _bool(_TensorBase.requires_grad.__get__(tensor))

    def grad(self, tensor):
        """The .grad of a real tensor (None when there is none)."""
        with _DisableTorchFunction():
            return _TensorBase.grad.__get__(tensor)


def plain(value, depth=0):
    """JSON-able data: real tensors become {"array": nested lists, "shape": [...]}; fakes fail."""
    if depth > 20:
        raise ValueError("value nested too deeply")
    kind = _type(value)
    if value is None or kind in (_bool, _int, _float, _str):
        if kind is _float and not np.isfinite(value):
            return {"float": _repr(value)}
        return value
    if kind is _Tensor or kind is torch.nn.Parameter:
        with _DisableTorchFunction():
            detached = _TensorBase.detach(value)
            as_double = _TensorBase.to(_TensorBase.cpu(detached), torch.float64)
            shape = [_int(n) for n in _TensorBase.size(as_double)]
            array = _TensorBase.numpy(as_double)
        finite = _bool(np.isfinite(array).all())  # NaN and inf become 0; `finite` says so
        return {"array": _ndarray.tolist(np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)),
                "shape": shape, "finite": finite}
    if kind in (_list, _tuple):
        return [plain(item, depth + 1) for item in value]
    if kind is _dict:
        return {_str(key): plain(item, depth + 1) for key, item in value.items()}
    raise TypeError(f"a {kind.__name__} where a tensor or a number was expected")


def emit(record):
    data = (_dumps(record, allow_nan=False) + "\n").encode()
    while data:
        written = _write(RESULTS, data)
        data = data[written:]


def describe_error(error):
    """`Type: message`, and where in the student's answer cells it happened (never grader code)."""
    where = ""
    for frame in _extract_tb(error.__traceback__):
        if frame.filename.startswith("<answer "):
            where = f" (in your cell {frame.filename[8:-1]}, line {frame.lineno})"
    message = _str(error)
    if _type(error) is KeyError and not where:  # a probe looked up a class the cells never defined
        return f"NameError: {message.strip(chr(39))} is not defined"
    if _len(message) > 300:
        message = message[:300] + "..."
    return f"{_type(error).__name__}: {message}{where}"


def on_alarm(signum, frame):
    raise ProbeTimeout("took too long")


def main():
    global RESULTS
    header = json.loads(sys.stdin.buffer.readline())
    arrays = dict(np.load(io.BytesIO(sys.stdin.buffer.read(header["arrays"])))) if header["arrays"] else {}
    RESULTS = os.dup(1)          # the report channel; the student's prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    torch.set_num_threads(1)
    grader = {"__name__": "grader_probes", "__builtins__": _BUILTINS}
    exec(compile(header["probes_source"], "<grader>", "exec"), grader)
    student = {"__name__": "__main__", "__builtins__": builtins}
    exec(compile(header["preamble"], "<preamble>", "exec"), student)
    _signal(signal.SIGALRM, on_alarm)
    for grade_id, source in header["cells"]:
        try:
            _alarm(_int(header.get("cell_timeout", 60)))
            exec(compile(source, f"<answer {grade_id}>", "exec"), student)
            _alarm(0)
            emit({"cell": grade_id, "ok": True})
        except BaseException as error:  # noqa: B036 (SystemExit too: it is the student's)
            _alarm(0)
            emit({"cell": grade_id, "error": describe_error(error)})
    tools = Tools(arrays)
    for probe in header["probes"]:
        try:
            _alarm(_int(probe["timeout"]))
            value = grader[probe["function"]](student, tools)
            _alarm(0)
            emit({"check": probe["check"], "value": plain(value)})
        except ProbeTimeout:
            emit({"check": probe["check"], "error": f"took longer than {probe['timeout']} s"})
        except BaseException as error:  # noqa: B036
            _alarm(0)
            emit({"check": probe["check"], "error": describe_error(error)})
    emit({"done": True})
    os._exit(0)  # skip interpreter teardown: the student's atexit hooks do not run


if __name__ == "__main__":
    main()
