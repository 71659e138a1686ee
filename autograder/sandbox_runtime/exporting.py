"""Inside the sandbox: run the student's answer cells, then export the models the checks need.

This is the only thing the student's process does for a grade. It reads one JSON line,
    {"preamble": code, "cells": [[grade_id, code], ...], "cell_timeout": s, "build_timeout": s,
     "builds": [{"key": k, "class": "ResidualBlock", "args": [8], "example": [2, 8, 10, 10]}, ...]}
and writes JSON lines to the stdout it started with:
    {"cell": grade_id, "ok": true} | {"cell": grade_id, "error": "Type (in your cell c, line n)"}
    {"build": key, "model": base64 of export_model's bytes} | {"build": key, "error": "..."}
Everything it writes is untrusted: the grader rebuilds each model from the description with its
own code (autograder/graphs.py), with its own weights, and decides from what that model computes.
A forged line can only describe some other model, which the checks then test like any other.

`export_model` is also what the notebook's hidden tests use (autograder/assignment.py), so a
check sees the solution through exactly the path it sees a submission through.
"""

import base64
import builtins
import io
import json
import os
import signal
import sys
import time
import traceback

import numpy as np
import torch

FORMAT = "deepnets-graph-1"
# Shape checks torch.export adds to a graph; the rebuilt model's operations fail on a wrong shape anyway.
IGNORED = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default",
           "aten.sym_constrain_range_for_size.default", "aten.sym_constrain_range.default"}


class ExportError(ValueError):
    pass


def export_model(module, example) -> bytes:
    """`module` in train and in eval mode as bytes for autograder.graphs.GraphModel.from_bytes.

    Parameters travel as shapes only (the grader draws its own weights); buffers and constants
    travel as values. The batch dimension, and the image size where the model allows it, stay
    free. The module's train/eval mode is restored.
    """
    from torch.export import Dim, export

    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"expected an nn.Module, got {type(module).__name__}")
    was_training = module.training
    dims = {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO} if example.dim() == 4 else {0: Dim.AUTO}
    programs = {}
    # Without each node's Python stack trace, which nothing here reads: about a tenth of an export.
    emitted = torch.fx.config.do_not_emit_stack_traces
    torch.fx.config.do_not_emit_stack_traces = True
    try:
        for mode in ("train", "eval"):
            module.train(mode == "train")
            programs[mode] = export(module, (example,), dynamic_shapes=(dims,), strict=False)
    finally:
        torch.fx.config.do_not_emit_stack_traces = emitted
        module.train(was_training)
    return serialize(programs)


def serialize(programs) -> bytes:
    tensors, slots, values = [], {}, {}

    def slot(kind, name, value):
        if (kind, name) not in slots:
            slots[(kind, name)] = len(tensors)
            tensors.append([kind, name, [int(n) for n in value.shape]])
            if kind != "parameter":
                values[f"t{len(tensors) - 1}"] = value.detach().cpu().contiguous().numpy()
        return slots[(kind, name)]

    graphs = {}
    for mode, program in programs.items():
        state, constants = program.state_dict, program.constants
        refs = {}
        for spec in program.graph_signature.input_specs:
            kind = spec.kind.name
            if kind == "USER_INPUT":
                refs[spec.arg.name] = {"x": 0}
            elif kind == "PARAMETER":
                refs[spec.arg.name] = {"t": slot("parameter", spec.target, state[spec.target])}
            elif kind == "BUFFER":
                value = state[spec.target] if spec.target in state else constants[spec.target]
                refs[spec.arg.name] = {"t": slot("buffer", spec.target, value)}
            elif kind == "CONSTANT_TENSOR":
                refs[spec.arg.name] = {"t": slot("constant", spec.target, constants[spec.target])}
            else:
                raise ExportError(f"the model takes an input of kind {kind}")
        nodes, index, output = [], {}, None
        for node in program.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                user = [spec.arg.name for spec in program.graph_signature.output_specs
                        if spec.kind.name == "USER_OUTPUT"]
                if len(user) != 1:
                    raise ExportError("the model must return exactly one tensor")
                found = [v for v in (node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]])
                         if getattr(v, "name", None) == user[0]]
                output = encode(found[0] if found else None, refs, index)
                continue
            target = op_name(node.target)
            if target in IGNORED:
                continue
            index[node.name] = len(nodes)
            nodes.append({"op": target, "args": encode(list(node.args), refs, index),
                          "kwargs": {k: encode(v, refs, index) for k, v in node.kwargs.items()}})
        graphs[mode] = {"nodes": nodes, "output": output}
    buffer = io.BytesIO()
    np.savez(buffer, **values)
    header = json.dumps({"format": FORMAT, "tensors": tensors, "graphs": graphs}).encode()
    return len(header).to_bytes(8, "big") + header + buffer.getvalue()


def op_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._schema.name.split('::')[-1]}.{target._overloadname}"
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__name__', '?')}"


def encode(value, refs, index):
    from torch.fx import Node

    if isinstance(value, Node):
        if value.name in refs:
            return refs[value.name]
        if value.name in index:
            return {"v": index[value.name]}
        raise ExportError("an operation reads a value the export does not define")
    if isinstance(value, (list, tuple)):
        return {"list": [encode(v, refs, index) for v in value]}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, (torch.device, torch.memory_format, torch.layout)):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ExportError(f"an argument of type {type(value).__name__} cannot be exported")


def build(namespace, spec):
    """The model `spec` names, built by the student's class with a fixed seed, and its example input."""
    torch.manual_seed(0)
    name, _, method = spec["class"].partition(".")
    factory = namespace.get(name)
    if factory is None:
        raise NameError(f"name '{name}' is not defined")
    if method:      # "ResNet18._make_layer": that method of a ResNet18() built with no arguments
        factory = getattr(factory(), method)
    return factory(*spec["args"]), torch.randn(*spec["example"])


# ------------------------------------------------------------------ the sandbox's worker

def where_in_answers(error) -> str:
    """` (in your cell c, line n)`: the last place in the answer cells the error passed through."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith("<answer "):
            where = f" (in your cell {frame.filename[8:-1]}, line {frame.lineno})"
    return where


def describe_error(error) -> str:
    """`Type: message (in your cell c, line n)`; the grader keeps the type and place only."""
    return f"{type(error).__name__}: {str(error)[:300]}{where_in_answers(error)}"


class CellTimeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise CellTimeout()


def report_error(error, seconds) -> str:
    """describe_error, with a time limit said the way the grader recognises (trusted.TIMEOUT)."""
    if isinstance(error, CellTimeout):
        return f"took longer than {seconds} s{where_in_answers(error)}"
    return describe_error(error)


def main():
    header = json.loads(sys.stdin.buffer.readline())
    results = os.dup(1)          # the report channel; the student's prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    torch.set_num_threads(1)

    def emit(record):
        data = (json.dumps(record) + "\n").encode()
        while data:
            data = data[os.write(results, data):]

    student = {"__name__": "__main__", "__builtins__": builtins}
    # nn.Module's own methods as PyTorch defines them: a cell that patches them (to fool the
    # notebook's count_parameters, say) must not change how its models are exported.
    module_methods = dict(vars(torch.nn.Module))
    exec(compile(header["preamble"], "<preamble>", "exec"), student)
    signal.signal(signal.SIGPROF, on_alarm)
    timeout = int(header.get("cell_timeout", 60))
    for grade_id, source in header["cells"]:
        started = time.monotonic()   # "seconds": for the grading benchmark's breakdown only
        try:
            signal.setitimer(signal.ITIMER_PROF, timeout)  # CPU seconds, not wall time next to a neighbour
            exec(compile(source, f"<answer {grade_id}>", "exec"), student)
            signal.setitimer(signal.ITIMER_PROF, 0)
            emit({"cell": grade_id, "ok": True, "seconds": round(time.monotonic() - started, 3)})
        except BaseException as error:  # noqa: B036 (SystemExit too: it is the student's)
            signal.setitimer(signal.ITIMER_PROF, 0)
            emit({"cell": grade_id, "error": report_error(error, timeout),
                  "seconds": round(time.monotonic() - started, 3)})
    for name, value in module_methods.items():
        if vars(torch.nn.Module).get(name) is not value:
            try:
                setattr(torch.nn.Module, name, value)
            except (AttributeError, TypeError):
                pass
    build_timeout = int(header.get("build_timeout", 20))
    too_slow = set()             # classes that already ran past their time: not tried again
    for spec in header["builds"]:
        if spec["class"] in too_slow:
            emit({"build": spec["key"], "error": f"took longer than {build_timeout} s"})
            continue
        started = time.monotonic()
        try:
            signal.setitimer(signal.ITIMER_PROF, build_timeout)  # CPU seconds, not wall time next to a neighbour
            model, example = build(student, spec)
            blob = export_model(model, example)
            signal.setitimer(signal.ITIMER_PROF, 0)
            emit({"build": spec["key"], "model": base64.b64encode(blob).decode(),
                  "seconds": round(time.monotonic() - started, 3)})
        except BaseException as error:  # noqa: B036
            signal.setitimer(signal.ITIMER_PROF, 0)
            if isinstance(error, CellTimeout):
                too_slow.add(spec["class"])
            emit({"build": spec["key"], "error": report_error(error, build_timeout)})
    emit({"done": True})
    os._exit(0)  # skip interpreter teardown: the student's atexit hooks do not run


if __name__ == "__main__":
    main()
