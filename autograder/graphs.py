"""A student's model as plain data: exported where the student's code runs, rebuilt and run by us.

This is the trust boundary of grading (README, "How grading is kept honest"). The student's
process does one thing that counts: it builds the models its classes define and exports each one
with `torch.export`, once in train and once in eval mode, as a list of tensor operations and the
tensors they read. Whatever that process does to itself, all that leaves it is this description.

The checks never see the student's Python. They rebuild each model here with `GraphModel`, from
our own code: every operation must be on the short list of `OPERATIONS` (convolutions,
BatchNorm, pooling, linear layers, activations, shape changes), every argument must be a number,
a list of numbers or another operation's result, and tensors other than parameters and
BatchNorm statistics are capped at `MAX_CONSTANT_ELEMENTS` numbers, so no lookup table fits. A
model rebuilt like this computes the same thing as the student's module did when exported, and
nothing else: it cannot look at its inputs' values to decide what to do (export refuses
data-dependent branches, and the list has no branching operation), cannot read a file, cannot
know what the checks will feed it, and cannot report a value of its own choosing. The checks
pick the inputs and weights after the export, and compute every verdict from what the rebuilt
model returns.

    blob = export_model(ResidualBlock(8), example)       # in the student's process (exporting.py)
    model = GraphModel.from_bytes(blob, seed=1)           # in the grader's, no student code
    model.train(); model(x); model.eval(); model(x)       # an nn.Module, trainable
"""

from __future__ import annotations

import io
import json
import math
import operator
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autograder.sandbox_runtime.exporting import FORMAT

# What a model may carry besides its architecture. A table of answers needs room: one number per
# memorised test image at least. Tensors that are neither parameters nor BatchNorm statistics
# may hold MAX_CONSTANT_ELEMENTS numbers, and the operations' arguments MAX_LITERALS distinct
# numbers (a correct ResNet-34 uses 4 besides 0, 1, -1 and 2: strides, paddings, BatchNorm's eps and momentum,
# flattened sizes). Parameters carry nothing: the grader draws them (reinitialize).
MAX_CONSTANT_ELEMENTS = 256
MAX_LITERALS = 32
MAX_NODES = 2000                  # operations in one graph (a ResNet-34's training graph has about 300)
MAX_TENSORS = 2000
MAX_PARAMETERS = 200_000_000      # numbers in the parameters of one model (VGG-16 has 15 million)
MAX_BYTES = 64 * 2**20            # one exported model (parameters travel as shapes only)

aten = torch.ops.aten
# The operations a rebuilt model may run, by the name torch.export gives them. None of them reads
# a file, draws random numbers the checks did not seed, or branches on data.
OPERATIONS = {
    "aten.conv2d.default": aten.conv2d.default,
    "aten.conv2d.padding": aten.conv2d.padding,
    "aten.batch_norm.default": aten.batch_norm.default,
    "aten.linear.default": aten.linear.default,
    "aten.relu.default": aten.relu.default,
    "aten.relu_.default": aten.relu_.default,
    "aten.leaky_relu.default": aten.leaky_relu.default,
    "aten.sigmoid.default": aten.sigmoid.default,
    "aten.tanh.default": aten.tanh.default,
    "aten.gelu.default": aten.gelu.default,
    "aten.add.Tensor": aten.add.Tensor,
    "aten.add_.Tensor": aten.add_.Tensor,
    "aten.sub.Tensor": aten.sub.Tensor,
    "aten.rsub.Scalar": aten.rsub.Scalar,
    "aten.rsub.Tensor": aten.rsub.Tensor,
    "aten.add.Scalar": aten.add.Scalar,
    "aten.sub.Scalar": aten.sub.Scalar,
    "aten.mul.Tensor": aten.mul.Tensor,
    "aten.mul.Scalar": aten.mul.Scalar,
    "aten.div.Tensor": aten.div.Tensor,
    "aten.max_pool2d.default": aten.max_pool2d.default,
    "aten.avg_pool2d.default": aten.avg_pool2d.default,
    "aten.adaptive_avg_pool2d.default": aten.adaptive_avg_pool2d.default,
    "aten.mean.dim": aten.mean.dim,
    # A view runs as reshape: the same tensor wherever a view is possible (reshape then returns
    # that view), and it also takes channels-last input, in which the grader trains 1.2x faster
    # (autograder/policy.py); a student's `x.view(N, -1)` would otherwise keep the grader's
    # training of that network in the slower layout.
    "aten.view.default": aten.reshape.default,
    "aten.reshape.default": aten.reshape.default,
    "aten.flatten.using_ints": aten.flatten.using_ints,
    "aten.squeeze.dims": aten.squeeze.dims,
    "aten.unsqueeze.default": aten.unsqueeze.default,
    "aten.cat.default": aten.cat.default,
    "aten.clone.default": aten.clone.default,
    "aten.contiguous.default": aten.contiguous.default,
    "aten.dropout.default": aten.dropout.default,
    "aten.alias.default": aten.alias.default,
    "aten.detach.default": aten.detach.default,
    "aten.detach_.default": aten.detach_.default,
    "aten.lift_fresh_copy.default": aten.lift_fresh_copy.default,
    "aten.fill_.Tensor": aten.fill_.Tensor,
    "aten.fill_.Scalar": aten.fill_.Scalar,
    "aten.slice.Tensor": aten.slice.Tensor,
    "aten.select.int": aten.select.int,
    "aten.amax.default": aten.amax.default,
    "aten.log_softmax.int": aten.log_softmax.int,
    "aten.softmax.int": aten.softmax.int,
    "aten.sum.dim_IntList": aten.sum.dim_IntList,
    "aten.sum.default": aten.sum.default,
    "aten.mean.default": aten.mean.default,
    "aten.permute.default": aten.permute.default,
    "aten.t.default": aten.t.default,
    "aten.transpose.int": aten.transpose.int,
    "aten.silu.default": aten.silu.default,
    "aten.silu_.default": aten.silu_.default,
    "aten.hardtanh.default": aten.hardtanh.default,
    "aten.hardtanh_.default": aten.hardtanh_.default,
    "aten.elu.default": aten.elu.default,
    "aten.hardswish.default": aten.hardswish.default,
    "aten.neg.default": aten.neg.default,
    "aten.abs.default": aten.abs.default,
    "aten.pow.Tensor_Scalar": aten.pow.Tensor_Scalar,
    "aten.sqrt.default": aten.sqrt.default,
    "aten.rsqrt.default": aten.rsqrt.default,
    "aten.exp.default": aten.exp.default,
    "aten.log.default": aten.log.default,
    "aten.matmul.default": aten.matmul.default,
    "aten.mm.default": aten.mm.default,
    "aten.addmm.default": aten.addmm.default,
    "aten.bmm.default": aten.bmm.default,
    "aten.div.Scalar": aten.div.Scalar,
    "aten.expand.default": aten.expand.default,
    "aten.zeros_like.default": aten.zeros_like.default,
    "aten.ones_like.default": aten.ones_like.default,
    "aten.copy_.default": aten.copy_.default,
    "aten.mul_.Tensor": aten.mul_.Tensor,
    "aten.clamp.default": aten.clamp.default,
    "aten.clamp_min.default": aten.clamp_min.default,
    "aten.split.Tensor": aten.split.Tensor,
    "aten.split_with_sizes.default": aten.split_with_sizes.default,
    "aten.chunk.default": aten.chunk.default,
    "aten.stack.default": aten.stack.default,
    "aten.max_pool2d_with_indices.default": aten.max_pool2d_with_indices.default,
    "aten.leaky_relu_.default": aten.leaky_relu_.default,
    "aten.adaptive_max_pool2d.default": aten.adaptive_max_pool2d.default,
    "aten.unflatten.int": aten.unflatten.int,
    "aten.squeeze.dim": aten.squeeze.dim,
    "aten.squeeze.default": aten.squeeze.default,
    "aten.sym_size.int": aten.sym_size.int,
    "_operator.getitem": operator.getitem,
    "_operator.mul": operator.mul,
    "_operator.add": operator.add,
    "_operator.sub": operator.sub,
    "_operator.floordiv": operator.floordiv,
}
SYMBOLIC = {"aten.sym_size.int", "_operator.mul", "_operator.add", "_operator.sub", "_operator.floordiv"}
DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.]{1,200}$")
NORM_STATISTICS = (3, 4)          # batch_norm's running_mean and running_var arguments
# A layer is part of the model when noise of INFLUENCE_STEP of its output's norm moves the output
# by at least MATERIAL_INFLUENCE of that step (GraphModel.influence). Layers on an honest model's
# path measure about 0.1 to 1 (the course's solutions: tests/test_graphs.py); a decoy multiplied
# by 1e-6 measures about 1e-6.
INFLUENCE_STEP = 1e-3
MATERIAL_INFLUENCE = 1e-2
WEIGHED_LAYERS = ("conv", "bn", "linear", "maxpool", "avgpool")


class BadGraph(ValueError):
    """The exported description is not a model the grader can run (its message is ours, not the student's)."""


# ------------------------------------------------------------------ rebuild (the grader's process)

@dataclass
class Node:
    op: str
    function: object
    args: list
    kwargs: dict


class GraphModel(nn.Module):
    """A model rebuilt from export_model's bytes: an nn.Module the checks can train and probe.

    `parameters()` are the student's parameters (in the order the model first uses them);
    `layers()` describes what the model really computes, operation by operation.
    """

    def __init__(self, tensors: list[tuple[str, str, torch.Tensor]], graphs: dict[str, tuple[list, object]]):
        super().__init__()
        self._refs = []
        self.names = []           # the student's names for the tensors (for our messages only)
        for i, (kind, name, value) in enumerate(tensors):
            key = f"t{i}"
            if kind == "parameter":
                self.register_parameter(key, nn.Parameter(value.clone(), requires_grad=value.is_floating_point()))
            else:
                self.register_buffer(key, value.clone())
            self._refs.append((kind, key))
            self.names.append(name)
        self.graphs = graphs

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, blob: bytes, seed: int) -> "GraphModel":
        """Rebuild and validate an exported model; its weights are drawn here from `seed`."""
        if not isinstance(blob, (bytes, bytearray)) or len(blob) < 8 or len(blob) > MAX_BYTES:
            raise BadGraph("the exported model is missing or too large")
        length = int.from_bytes(blob[:8], "big")
        try:
            header = json.loads(blob[8:8 + length])
            with np.load(io.BytesIO(blob[8 + length:]), allow_pickle=False) as arrays:
                data = {key: arrays[key] for key in arrays.files}
        except (ValueError, OSError, EOFError, RecursionError):
            raise BadGraph("the exported model cannot be read") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BadGraph("the exported model has an unknown format")
        kinds = header.get("tensors")
        if not isinstance(kinds, list) or len(kinds) > MAX_TENSORS:
            raise BadGraph("the exported model's tensor list is malformed")
        tensors, parameters = [], 0
        for i, entry in enumerate(kinds):
            if not (isinstance(entry, list) and len(entry) == 3 and entry[0] in ("parameter", "buffer", "constant")
                    and isinstance(entry[1], str) and isinstance(entry[2], list) and len(entry[2]) <= 8
                    and all(isinstance(n, int) and 0 <= n <= 2**20 for n in entry[2])):
                raise BadGraph("the exported model's tensor list is malformed")
            shape = tuple(entry[2])
            if entry[0] == "parameter":
                parameters += math.prod(shape)
                if parameters > MAX_PARAMETERS:
                    raise BadGraph("the exported model has too many parameters")
                value = torch.zeros(shape)          # drawn by reinitialize below, never the student's
            else:
                array = data.get(f"t{i}")
                if array is None or tuple(array.shape) != shape or array.dtype.kind not in "fiub" \
                        or array.dtype.itemsize > 8:
                    raise BadGraph("a tensor of the exported model is malformed")
                value = torch.from_numpy(np.array(array))
            name = entry[1] if SAFE_NAME.match(entry[1]) else f"tensor{i}"
            tensors.append((entry[0], name, value))
        graphs = {}
        for mode in ("train", "eval"):
            graph = (header.get("graphs") or {}).get(mode)
            if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
                raise BadGraph(f"the exported model has no {mode}-mode graph")
            if len(graph["nodes"]) > MAX_NODES:
                raise BadGraph("the exported model has too many operations")
            nodes = []
            for node in graph["nodes"]:
                if not isinstance(node, dict) or node.get("op") not in OPERATIONS:
                    op = node.get("op") if isinstance(node, dict) else None
                    shown = op if isinstance(op, str) and SAFE_NAME.match(op) else "an unknown operation"
                    raise BadGraph(f"the model uses {shown}, which the grader does not run")
                args = _decode(node.get("args", []), len(nodes), len(tensors))
                kwargs = node.get("kwargs", {})
                if not isinstance(args, list) or not isinstance(kwargs, dict) or \
                        not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
                    raise BadGraph("an operation's arguments are malformed")
                kwargs = {k: _decode(v, len(nodes), len(tensors)) for k, v in kwargs.items()}
                nodes.append(Node(node["op"], OPERATIONS[node["op"]], args, kwargs))
            graphs[mode] = (nodes, _decode(graph.get("output"), len(nodes), len(tensors)))
        model = cls(tensors, graphs)
        model._check_constants()
        model.reinitialize(seed)
        return model

    def _check_constants(self):
        """Tensors the model carries besides its parameters and BatchNorm statistics stay tiny."""
        statistics = self._statistics()
        used = {ref.index for nodes, _ in self.graphs.values() for node in nodes
                for ref in _refs_in(node.args, node.kwargs)}
        # A tensor no operation reads (the buffers of a layer defined but never run) carries nothing.
        # Every other one counts, a 0-d tensor too, in 32-bit words: a float64 or int64 number
        # counts twice, since it can hold two numbers' worth of bits.
        loose = sum(_words(self._tensor(i)) for i, (kind, _) in enumerate(self._refs)
                    if kind != "parameter" and i in used and i not in statistics)
        if loose > MAX_CONSTANT_ELEMENTS:
            raise BadGraph(f"the model carries {loose:,} numbers besides its parameters and "
                           f"BatchNorm statistics (at most {MAX_CONSTANT_ELEMENTS:,} are allowed)")
        literals = {value for nodes, _ in self.graphs.values() for node in nodes
                    for value in _literals_in(node.args, node.kwargs)} - {0, 1, -1, 2}
        if len(literals) > MAX_LITERALS:
            raise BadGraph(f"the model's operations use {len(literals)} different numbers "
                           f"(at most {MAX_LITERALS} are allowed)")
        self._used = used

    def _statistics(self) -> set[int]:
        """Tensors that every operation of both graphs reads as a BatchNorm's running statistics.

        Only those are exempt from the cap, and reinitialize resets them: a tensor that one graph
        names as statistics and another operation reads as anything else is a loose tensor.
        """
        statistics, other = set(), set()
        for nodes, output in self.graphs.values():
            for node in nodes:
                for position, arg in enumerate(node.args):
                    is_statistic = node.op == "aten.batch_norm.default" and position in NORM_STATISTICS \
                        and isinstance(arg, Ref)
                    (statistics if is_statistic else other).update(ref.index for ref in _refs_in([arg], {}))
                other.update(ref.index for ref in _refs_in([], node.kwargs))
            other.update(ref.index for ref in _refs_in([output], {}))
        return statistics - other

    def _tensor(self, index: int) -> torch.Tensor:
        return getattr(self, self._refs[index][1])

    # -- running ----------------------------------------------------------------------------
    def forward(self, x, *, record=None, perturb=None):
        """`perturb`: (node index, argument position or None for its output, generator, step):
        that one value gets random noise of `step` times its own norm (see `influence`)."""
        nodes, output = self.graphs["train" if self.training else "eval"]
        # The graph works on a copy: an in-place operation on its input (x.mul_(0)) must not
        # change the tensor the checks compare the output with. The copy passes gradients on.
        x = x.clone()
        values = []
        for i, node in enumerate(nodes):
            args = self._resolve(node.args, x, values)
            kwargs = {k: self._resolve(v, x, values) for k, v in node.kwargs.items()}
            if perturb is not None and perturb[0] == i and perturb[1] is not None:
                args = list(args)
                args[perturb[1]] = _noisy(args[perturb[1]], *perturb[2:])
            if node.op in SYMBOLIC and not all(isinstance(a, (int, torch.Tensor)) for a in args):
                raise BadGraph("a shape computation got something that is not a shape")
            value = node.function(*args, **kwargs)
            if perturb is not None and perturb[0] == i and perturb[1] is None:
                value = _noisy(value, *perturb[2:])
            values.append(value)
            if record is not None and isinstance(value, torch.Tensor):
                record.append((node, value.clone()))  # a copy: a later in-place op (out += x) must not change it
        return self._resolve(output, x, values)

    def _resolve(self, value, x, values):
        if isinstance(value, Ref):
            return self._tensor(value.index)
        if isinstance(value, Value):
            return values[value.index]
        if isinstance(value, Input):
            return x
        if isinstance(value, list):
            return [self._resolve(v, x, values) for v in value]
        return value

    # -- what the model is ------------------------------------------------------------------
    def layers(self, mode: str = "eval", inputs: torch.Tensor | None = None) -> list[dict]:
        """The layers the model runs, in order: conv, bn, linear, maxpool, avgpool, relu and add.

        Read from the operations themselves, so a layer that is defined but never used is not
        here, and one that is used is here whatever it is called. With `inputs`, a conv, bn,
        linear or pooling layer is here only if the output depends on it (`influence` at least
        MATERIAL_INFLUENCE on those inputs): a decoy layer whose result is multiplied by 0 or
        1e-6 before it reaches the output runs, but is not part of the model.
        """
        described = self._layers(mode)
        if inputs is None:
            return described
        weighed = [layer["node"] for layer in described if layer["kind"] in WEIGHED_LAYERS]
        weights = self.influence(inputs, mode, [(index, None) for index in weighed])
        return [layer for layer in described if layer["kind"] not in WEIGHED_LAYERS
                or weights[(layer["node"], None)] >= MATERIAL_INFLUENCE]

    def influence(self, inputs: torch.Tensor, mode: str, sites: list[tuple[int, int | None]], *,
                  order: list[int] | None = None, stop=None) -> dict:
        """How much the output depends on each site: a node's output (position None) or one of
        its arguments. Noise of a small fraction of the value's own norm is added there; the
        influence is how far the output moves, as a fraction of its own norm, per that fraction.

        About 1 for a layer on the model's path (scale-free: a vanishing signal does not lower it),
        about the multiplier for a decoy whose result is scaled before it is added. Outputs of
        shape (N, classes) are centred per image first, so adding one number to every class
        score (which changes no prediction) is no influence. Measured without gradients, and
        BatchNorm's running statistics are put back afterwards.

        `order`: the positions in `sites` to measure, in that order (each site's noise is drawn
        from its position, so the order changes no weight); `stop(weights)`, called after each,
        ends the measuring early when it returns true: the sites not yet measured are left out.
        """
        saved = [buffer.clone() for buffer in self.buffers()]
        was_training = self.training
        self.train(mode == "train")
        weights = {}
        try:
            with torch.no_grad():
                base = _centred(self(inputs))
                scale = float(base.norm()) if base is not None else 0.0
                for number in (range(len(sites)) if order is None else order):
                    site = sites[number]
                    if stop is not None and weights and stop(weights):
                        break
                    if not (scale > 0 and math.isfinite(scale)):   # no output to move: nothing counts
                        weights[site] = 0.0
                        continue
                    generator = torch.Generator().manual_seed(number)
                    if site[0] == "tensor":   # a parameter of no layer: the noise goes into it
                        tensor = self._tensor(site[1])
                        kept = tensor.clone()
                        tensor.copy_(_noisy(tensor, generator, INFLUENCE_STEP))
                        moved = _centred(self(inputs))
                        tensor.copy_(kept)
                    else:
                        moved = _centred(self(inputs, perturb=(*site, generator, INFLUENCE_STEP)))
                    change = float((moved - base).norm()) if moved is not None and moved.shape == base.shape \
                        else float("nan")
                    weights[site] = change / (INFLUENCE_STEP * scale) if math.isfinite(change) else 0.0
        finally:
            self.train(was_training)
            with torch.no_grad():
                for buffer, value in zip(self.buffers(), saved):
                    buffer.copy_(value)
        return weights

    def parameter_count(self, mode: str = "eval", inputs: torch.Tensor | None = None,
                        enough: int | None = None) -> int:
        """The number of parameters; with `inputs`, only those the output depends on: the
        weights of the layers whose `influence` is material (those `layers(mode, inputs)` keeps),
        and any other parameter whose own noise moves the output. Decoy weights are not counted.

        With `enough`, the largest layers are measured first and the count stops as soon as it
        reaches `enough` (one forward pass a layer: a network that passes needs only its largest
        layers measured); below `enough`, the count is exact. So `count >= enough` is decided as
        the whole count would decide it."""
        if inputs is None:
            return sum(p.numel() for p in self.parameters())
        nodes = self.graphs[mode][0]
        parameters = {i for i, (kind, _) in enumerate(self._refs) if kind == "parameter"}
        owners = {}   # each weighed layer's operation -> the tensors it reads
        for layer in self._layers(mode):
            if layer["kind"] in WEIGHED_LAYERS:
                node = nodes[layer["node"]]
                owners[layer["node"]] = {ref.index for ref in _refs_in(node.args, node.kwargs)}
        loose = sorted(parameters - set().union(*owners.values()))
        sites = [(node, None) for node in owners] + [("tensor", i) for i in loose]
        reads = {**{(node, None): refs for node, refs in owners.items()}, **{("tensor", i): {i} for i in loose}}

        def counted(weights) -> int:
            material = {i for site, weight in weights.items() if weight >= MATERIAL_INFLUENCE for i in reads[site]}
            return sum(self._tensor(i).numel() for i in material & parameters)

        size = [sum(self._tensor(i).numel() for i in reads[site] & parameters) for site in sites]
        order = sorted(range(len(sites)), key=lambda k: -size[k]) if enough is not None else None
        # The layers and loose parameters in one pass.
        weights = self.influence(inputs, mode, sites, order=order,
                                 stop=None if enough is None else (lambda weights: counted(weights) >= enough))
        return counted(weights)

    def _layers(self, mode: str) -> list[dict]:
        described = []
        for index, node in enumerate(self.graphs[mode][0]):
            a = node.args
            kind = node.op.split(".")[1]
            if kind == "conv2d":
                weight = self._tensor(a[1].index) if isinstance(a[1], Ref) else None
                shape = tuple(weight.shape) if weight is not None else None
                described.append({"kind": "conv", "out": shape and shape[0], "in": shape and shape[1],
                                  "kernel": shape and shape[2:], "stride": _pair(a, 3, 1),
                                  "bias": len(a) > 2 and a[2] is not None,
                                  "weight": a[1].index if isinstance(a[1], Ref) else None})
            elif kind == "batch_norm":
                weight = self._tensor(a[1].index) if isinstance(a[1], Ref) else None
                described.append({"kind": "bn", "features": None if weight is None else int(weight.numel()),
                                  "weight": a[1].index if isinstance(a[1], Ref) else None,
                                  "bias": a[2].index if isinstance(a[2], Ref) else None})
            elif kind == "linear":
                weight = self._tensor(a[1].index) if isinstance(a[1], Ref) else None
                described.append({"kind": "linear", "in": None if weight is None else int(weight.shape[1]),
                                  "out": None if weight is None else int(weight.shape[0])})
            elif kind in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"):
                described.append({"kind": "maxpool" if kind == "max_pool2d" else "avgpool"})
            elif kind in ("relu", "relu_"):
                described.append({"kind": "relu"})
            elif kind in ("add", "add_") and node.op != "_operator.add":
                described.append({"kind": "add"})
            else:
                continue
            described[-1]["node"] = index
        return described

    def skip_connections(self, mode: str = "eval", inputs: torch.Tensor | None = None) -> int:
        """How many additions the output depends on that add a block's input v, or v through a
        projection (a convolution of v and the operations after it up to the next convolution),
        to a branch computed from v through a convolution: x + branch(x) or proj(x) + branch(x).

        Read from the operations that run, so a block that keeps its skip only when built on its
        own (and drops it inside the network) is counted by what the network runs. With `inputs`,
        an addition counts only if the output depends on what it carries (`influence`): a skip
        multiplied by 0 before it is added is no skip.
        """
        nodes, output = self.graphs[mode]

        def is_conv(i) -> bool:
            return nodes[i].op.startswith("aten.conv2d") and bool(nodes[i].args)

        def ancestors(indices, through_convs=True) -> set:
            seen, stack = set(), list(indices)
            while stack:
                i = stack.pop()
                if i not in seen:
                    seen.add(i)
                    if through_convs or not is_conv(i):
                        stack.extend(_values_index(nodes[i]))
            return seen

        def conv_inputs(indices) -> list:
            return [nodes[i].args[0] for i in indices if is_conv(i)]

        skips = []   # (the addition, the position of what it carries), one per addition
        for i in sorted(ancestors([v.index for v in _values_in([output])])):
            node = nodes[i]
            if node.op not in ("aten.add.Tensor", "aten.add_.Tensor") or len(node.args) < 2:
                continue
            for position, (carried, branch) in enumerate(((node.args[0], node.args[1]),
                                                          (node.args[1], node.args[0]))):
                if not isinstance(carried, (Value, Input)) or not isinstance(branch, Value):
                    continue
                starts = conv_inputs(ancestors([branch.index]))
                projected = conv_inputs(ancestors([carried.index], through_convs=False)) \
                    if isinstance(carried, Value) else []
                if carried in starts or any(v in starts for v in projected):
                    skips.append((i, position))
                    break
        if inputs is None or not skips:
            return len(skips)
        weights = self.influence(inputs, mode, skips)
        return sum(1 for site in skips if weights[site] >= MATERIAL_INFLUENCE)

    def tensor(self, index: int) -> torch.Tensor:
        """The parameter or buffer that layers() names by its index."""
        return self._tensor(index)

    def statistics(self) -> list[torch.Tensor]:
        """The BatchNorm running means, in the order the model uses them."""
        means = []
        for node in self.graphs["train"][0]:
            if node.op == "aten.batch_norm.default" and isinstance(node.args[3], Ref):
                means.append(self._tensor(node.args[3].index))
        return means

    def reinitialize(self, seed: int) -> None:
        """Fresh weights as PyTorch's layers draw them: the checks never use the student's.

        Convolution and linear weights: Kaiming-uniform (a=sqrt(5)); their biases uniform in
        +-1/sqrt(fan_in); BatchNorm scale 1, shift 0, statistics 0 and 1; any other parameter
        uniform in +-1/sqrt(its size). So nothing learned elsewhere (or a table of answers) can
        ride in on the weights.
        """
        generator = torch.Generator().manual_seed(seed)
        roles = {}
        # Both graphs: a tensor that only the eval graph reads as a layer's weight or statistics
        # is drawn or reset like the train graph's.
        for node in [node for nodes, _ in self.graphs.values() for node in nodes]:
            a = node.args
            kind = node.op.split(".")[1]
            if kind in ("conv2d", "linear") and isinstance(a[1], Ref):
                roles[a[1].index] = ("weight", None)
                if len(a) > 2 and isinstance(a[2], Ref):
                    roles[a[2].index] = ("bias", a[1].index)
            elif kind == "batch_norm":
                for position, role in ((1, "one"), (2, "zero"), (3, "zero"), (4, "one")):
                    if position < len(a) and isinstance(a[position], Ref):
                        roles[a[position].index] = (role, None)
        with torch.no_grad():
            for i, (kind, key) in enumerate(self._refs):
                tensor = self._tensor(i)
                role, weight = roles.get(i, ("other" if kind == "parameter" else None, None))
                if role == "weight":
                    fan_in = tensor[0].numel()
                    bound = math.sqrt(6.0 / ((1 + 5) * fan_in))  # kaiming_uniform_(a=sqrt(5))
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 * bound - bound)
                elif role == "bias":
                    bound = 1 / math.sqrt(self._tensor(weight)[0].numel())
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 * bound - bound)
                elif role == "one":
                    tensor.fill_(1)
                elif role == "zero":
                    tensor.zero_()
                elif role == "other":   # a parameter outside conv, linear and BatchNorm layers
                    bound = 1 / math.sqrt(max(1, tensor.numel()))
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 * bound - bound)


def _noisy(value, generator: torch.Generator, step: float):
    """`value` plus random noise whose norm is `step` times the value's own (influence's probe)."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
        return value
    noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
    return value + noise * (step * value.norm() / noise.norm().clamp_min(1e-30))


def _centred(output):
    """Class scores centred per image (a shift of every score changes no prediction); else as is."""
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return None
    return output - output.mean(1, keepdim=True) if output.dim() == 2 else output


def _words(tensor: torch.Tensor) -> int:
    """How many 32-bit words of information `tensor` can hold (at least one per element)."""
    return tensor.numel() * max(1, tensor.element_size() // 4)


def _pair(args, position, default):
    value = args[position] if len(args) > position else default
    return tuple(value) if isinstance(value, list) else (value, value)


@dataclass(frozen=True)
class Ref:
    index: int     # a parameter, buffer or constant


@dataclass(frozen=True)
class Value:
    index: int     # an earlier operation's result


@dataclass(frozen=True)
class Input:
    pass


def _decode(value, nodes_so_far: int, tensors: int, depth: int = 0):
    if depth > 8:
        raise BadGraph("an operation's arguments are nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > 2**63:  # slice ends are sys.maxsize
            raise BadGraph("an operation has an out-of-range number")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "list" and isinstance(inner, list) and len(inner) <= 4096:
            return [_decode(v, nodes_so_far, tensors, depth + 1) for v in inner]
        if key == "v" and isinstance(inner, int) and 0 <= inner < nodes_so_far:
            return Value(inner)
        if key == "t" and isinstance(inner, int) and 0 <= inner < tensors:
            return Ref(inner)
        if key == "x" and inner == 0:
            return Input()
        if key == "dtype" and inner in DTYPES:
            return DTYPES[inner]
    raise BadGraph("an operation's arguments are malformed")


def _found_in(items, kind):
    """Every `kind` (Ref or Value) in `items`, lists searched through."""
    stack = list(items)
    while stack:
        value = stack.pop()
        if isinstance(value, kind):
            yield value
        elif isinstance(value, list):
            stack.extend(value)


def _values_in(items):
    return _found_in(items, Value)


def _values_index(node) -> list[int]:
    return [v.index for v in _values_in(list(node.args) + list(node.kwargs.values()))]


def _refs_in(args, kwargs):
    return _found_in(list(args) + list(kwargs.values()), Ref)


def _literals_in(args, kwargs):
    stack = list(args) + list(kwargs.values())
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield value
