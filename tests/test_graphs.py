"""The trust boundary's rebuild: exported models run as they did, and nothing else gets through."""

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.calibration.lesson_plan_session07 import ANSWERS
from autograder.graphs import MAX_CONSTANT_ELEMENTS, BadGraph, GraphModel
from autograder.sandbox_runtime.exporting import export_model, serialize


@pytest.fixture(scope="module")
def lesson_plan():
    namespace = {"nn": nn, "F": F, "torch": torch}
    for source in ANSWERS.values():
        exec(source, namespace)
    return namespace


def copy_weights_into(module: nn.Module, model: GraphModel) -> None:
    """The rebuilt model's weights into `module`, matched by the student's own names."""
    state = dict(module.state_dict())
    for index, name in enumerate(model.names):
        if name in state:
            state[name] = model.tensor(index).detach().clone()
    module.load_state_dict(state)


@pytest.mark.parametrize("build, shape", [(("ResidualBlock", 8), (4, 8, 10, 10)),
                                          (("ResidualCNN",), (4, 1, 28, 28))])
def test_a_rebuilt_model_computes_what_the_module_computes_in_both_modes(lesson_plan, build, shape):
    module = lesson_plan[build[0]](*build[1:])
    model = GraphModel.from_bytes(export_model(module, torch.randn(*shape)), seed=3)
    copy_weights_into(module, model)
    x = torch.randn(3, *shape[1:])          # another batch size than the export's
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), module.eval()(x), atol=1e-5)
        assert torch.allclose(model.train()(x), module.train()(x), atol=1e-5)
    for ours, theirs in zip(model.statistics(), [b for n, b in module.named_buffers() if n.endswith("running_mean")]):
        assert torch.allclose(ours, theirs)   # BatchNorm's running statistics moved alike


def test_a_view_based_model_trains_in_channels_last_and_computes_the_same(lesson_plan):
    """The lesson plan's ResidualCNN flattens with x.view(N, -1), which channels-last input
    refuses; rebuilt, its view runs as reshape, so the grader trains it in the faster layout, and
    it computes the same there as the module does in the default one."""
    from deepnets.training import runs_channels_last

    module = lesson_plan["ResidualCNN"]()
    assert not runs_channels_last(module), "the lesson plan's ResidualCNN no longer uses view"
    model = GraphModel.from_bytes(export_model(module, torch.randn(2, 1, 28, 28)), seed=3)
    assert any(node.op == "aten.view.default" for node in model.graphs["train"][0])
    assert runs_channels_last(model)
    copy_weights_into(module, model)
    x = torch.randn(3, 1, 28, 28)
    channels_last = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = module.eval()(x)
        assert torch.allclose(channels_last.eval()(x.contiguous(memory_format=torch.channels_last)), expected, atol=1e-5)
        assert torch.allclose(model.to(memory_format=torch.contiguous_format)(x), expected, atol=1e-5)


def test_weights_never_come_from_the_student(lesson_plan):
    module = lesson_plan["ResidualBlock"](4)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.fill_(7.0)
    blob = export_model(module, torch.randn(2, 4, 6, 6))
    assert np.float32(7.0).tobytes() * 4 not in blob              # parameters travel as shapes only
    first, again, other = (GraphModel.from_bytes(blob, seed=s) for s in (1, 1, 2))
    assert not any((p == 7).any() for p in first.parameters())
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


def test_layers_are_what_runs_not_what_is_declared():
    class Decoys(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.unused = nn.ModuleList([nn.Conv2d(3, 3, 3) for _ in range(5)])
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)) + x)

    layers = GraphModel.from_bytes(export_model(Decoys(), torch.randn(2, 3, 5, 5)), seed=0).layers()
    assert [layer["kind"] for layer in layers] == ["conv", "bn", "add", "relu"]


def test_a_branch_on_the_weights_cannot_be_exported():
    class LooksAtItsWeights(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            if self.bn.weight.abs().sum() == 0:
                return F.relu(x)
            return F.relu(self.bn(x))

    with pytest.raises(Exception):
        export_model(LooksAtItsWeights(), torch.randn(2, 3, 4, 4))


def test_operations_off_the_list_are_refused_by_name():
    class Sorts(nn.Module):
        def forward(self, x):
            return x.sort(dim=1).values

    with pytest.raises(BadGraph, match="aten.sort.default, which the grader does not run"):
        GraphModel.from_bytes(export_model(Sorts(), torch.randn(2, 3, 4, 4)), seed=0)


def test_a_table_carried_as_a_constant_is_refused():
    class Table(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 10)
            self.register_buffer("answers", torch.zeros(MAX_CONSTANT_ELEMENTS + 1))

        def forward(self, x):
            return self.fc(x) + self.answers[:10]

    with pytest.raises(BadGraph, match="numbers besides its parameters"):
        GraphModel.from_bytes(export_model(Table(), torch.randn(2, 4)), seed=0)


def header_and_arrays(blob: bytes):
    length = int.from_bytes(blob[:8], "big")
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def with_header(header, arrays: bytes) -> bytes:
    data = json.dumps(header).encode()
    return len(data).to_bytes(8, "big") + data + arrays


def test_hand_written_descriptions_are_checked_before_anything_runs(lesson_plan):
    blob = export_model(lesson_plan["ResidualBlock"](2), torch.randn(2, 2, 4, 4))
    header, arrays = header_and_arrays(blob)

    def tampered(change):
        copy = json.loads(json.dumps(header))
        change(copy)
        return with_header(copy, arrays)

    def python_call(h):
        h["graphs"]["eval"]["nodes"][0]["op"] = "builtins.eval"

    def reads_later_value(h):
        h["graphs"]["eval"]["nodes"][0]["args"] = [{"v": 5}]

    def pickled_tensor(h):
        h["tensors"][0][2] = [2**21, 2**21]

    def huge_parameter(h):
        h["tensors"] = [["parameter", "w", [2**20, 2**20, 2**20]]] + h["tensors"][1:]

    def weird_name(h):
        h["graphs"]["eval"]["nodes"][0]["kwargs"] = {"__import__('os')": 1}

    cases = [b"", b"\x00" * 7, b"garbage" * 10, blob[:len(blob) // 2], tampered(python_call),
             tampered(reads_later_value), tampered(pickled_tensor), tampered(huge_parameter),
             tampered(weird_name), tampered(lambda h: h.update(format="pickle"))]
    for case in cases:
        with pytest.raises(BadGraph):
            GraphModel.from_bytes(case, seed=0)


def test_an_object_array_is_never_unpickled():
    header = {"format": "deepnets-graph-1", "tensors": [["buffer", "b", [1]]],
              "graphs": {m: {"nodes": [], "output": {"x": 0}} for m in ("train", "eval")}}
    arrays = io.BytesIO()
    np.savez(arrays, t0=np.array([object()], dtype=object))
    with pytest.raises(BadGraph):
        GraphModel.from_bytes(with_header(header, arrays.getvalue()), seed=0)


def test_serialize_is_what_export_model_writes(lesson_plan):
    """The one format: export_model is torch.export plus serialize, nothing else."""
    from torch.export import Dim, export

    module = lesson_plan["ResidualBlock"](2)
    x = torch.randn(2, 2, 4, 4)
    dims = ({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO},)
    programs = {}
    for mode in ("train", "eval"):
        module.train(mode == "train")
        programs[mode] = export(module, (x,), dynamic_shapes=dims, strict=False)
    assert header_and_arrays(serialize(programs))[0] == header_and_arrays(export_model(module, x))[0]


# ------------------------------------------------ the red team of 4 December 2026
# Each of these got a memorised table or a missing skip past an earlier version of graphs.py.

def test_numbers_in_0_d_tensors_and_wide_dtypes_count_against_the_cap():
    class Scalars(nn.Module):      # a table spread over 0-d buffers, stacked back in forward
        def __init__(self, count):
            super().__init__()
            self.fc = nn.Linear(4, 10)
            self.count = count
            for i in range(count):
                self.register_buffer(f"s{i}", torch.tensor(float(i)))

        def forward(self, x):
            table = torch.stack([getattr(self, f"s{i}") for i in range(self.count)])
            return self.fc(x) + table.sum() * 0

    GraphModel.from_bytes(export_model(Scalars(8), torch.randn(2, 4)), seed=0)    # a few are fine
    with pytest.raises(BadGraph, match="numbers besides its parameters"):
        GraphModel.from_bytes(export_model(Scalars(MAX_CONSTANT_ELEMENTS + 1), torch.randn(2, 4)), seed=0)

    class Wide(nn.Module):         # float64 holds two float32s' worth of bits: it counts twice
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 10)
            self.register_buffer("table", torch.zeros(MAX_CONSTANT_ELEMENTS // 2 + 1, dtype=torch.float64))

        def forward(self, x):
            return self.fc(x) + self.table.sum() * 0

    with pytest.raises(BadGraph, match="numbers besides its parameters"):
        GraphModel.from_bytes(export_model(Wide(), torch.randn(2, 4)), seed=0)


class EvalOnlyStatistics(nn.Module):
    """A table that the eval graph names as a BatchNorm's running statistics (exempt from the cap),
    and that `use_in_train` also reads as data."""

    def __init__(self, use_in_train: bool):
        super().__init__()
        self.fc = nn.Linear(4, 10)
        self.use_in_train = use_in_train
        self.register_buffer("stats", torch.arange(1.0, 1001.0))

    def forward(self, x):
        out = self.fc(x)
        if self.training:
            return out + self.stats[:10] if self.use_in_train else out
        return out + F.batch_norm(out[:, :1].expand(-1, 1000), self.stats, self.stats, training=False).sum() * 0


def test_a_table_named_as_statistics_in_one_graph_gets_no_exemption_and_no_values():
    # Read as data in the train graph: a loose tensor, over the cap.
    with pytest.raises(BadGraph, match="numbers besides its parameters"):
        GraphModel.from_bytes(export_model(EvalOnlyStatistics(True), torch.randn(2, 4)), seed=0)
    # Read only as statistics, only by the eval graph: exempt, and reset like the train graph's.
    model = GraphModel.from_bytes(export_model(EvalOnlyStatistics(False), torch.randn(2, 4)), seed=0)
    stats = [i for i, name in enumerate(model.names) if name == "stats"]
    assert stats and all(set(model.tensor(i).unique().tolist()) <= {0.0, 1.0} for i in stats)


def test_an_in_place_operation_on_the_input_does_not_change_the_callers_tensor():
    class ZeroesItsInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            out = F.relu(self.conv(x))
            x.mul_(0)                   # a check comparing with ReLU(branch + x) would see x = 0
            return out

    model = GraphModel.from_bytes(export_model(ZeroesItsInput(), torch.randn(2, 2, 4, 4)), seed=0)
    x = torch.randn(2, 2, 4, 4)
    kept = x.clone()
    model.train()(x)
    model.eval()(x)
    assert torch.equal(x, kept)


def test_skip_connections_are_counted_from_what_the_network_runs(lesson_plan):
    network = GraphModel.from_bytes(export_model(lesson_plan["ResidualCNN"](), torch.randn(2, 1, 28, 28)), seed=0)
    assert network.skip_connections() == network.skip_connections("train") == 2

    class AddsANonSkip(nn.Module):   # adds x to something that is not computed from x by a convolution
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x)) + (x * 2 + x)

    model = GraphModel.from_bytes(export_model(AddsANonSkip(), torch.randn(2, 2, 4, 4)), seed=0)
    assert model.skip_connections() == 0


class DecoyNet(nn.Module):
    """A linear model with a convolutional decoy whose result is scaled by `scale` before it is
    added, a loose padding parameter used the same way, and a number added to every class score."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale
        self.fc = nn.Linear(28 * 28, 10)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 28 * 28, 10)
        self.padding = nn.Parameter(torch.zeros(5000))
        self.shift = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        decoy = self.head(F.relu(self.bn(self.conv(x))).flatten(1)) + self.padding.sum()
        same_for_every_class = self.shift(x).mean((1, 2, 3)).unsqueeze(1)
        return self.fc(x.flatten(1)) + decoy * self.scale + same_for_every_class


@pytest.mark.parametrize("scale", [0.0, 1e-6])
def test_layers_and_parameters_the_output_does_not_depend_on_do_not_count(scale):
    model = GraphModel.from_bytes(export_model(DecoyNet(scale).eval(), torch.randn(2, 1, 28, 28)), seed=1)
    images = torch.rand(8, 1, 28, 28)
    statistics = [s.clone() for s in model.buffers()]
    for mode in ("train", "eval"):
        kinds = [layer["kind"] for layer in model.layers(mode, images)]
        # Both convolutions run, so the unweighed description has them; only fc depends on the input.
        assert [layer["kind"] for layer in model.layers(mode)].count("conv") == 2
        assert "conv" not in kinds and "bn" not in kinds and kinds.count("linear") == 1, kinds
        assert model.parameter_count(mode, images) == 28 * 28 * 10 + 10
    assert all(torch.equal(a, b) for a, b in zip(statistics, model.buffers())), "influence changed BatchNorm's statistics"
    honest = GraphModel.from_bytes(export_model(DecoyNet(1.0).eval(), torch.randn(2, 1, 28, 28)), seed=1)
    kinds = [layer["kind"] for layer in honest.layers("train", images)]
    assert kinds.count("conv") == 1 and kinds.count("bn") == 1 and kinds.count("linear") == 2, kinds


def test_a_count_that_stops_at_enough_decides_as_the_whole_count(monkeypatch):
    """parameter_count(enough=n) measures the largest layers first and stops once n parameters
    count: a network that reaches n needs fewer forward passes; one that does not (the decoys)
    gets its exact count, so `count >= n` comes out as the whole count's."""
    images = torch.rand(8, 1, 28, 28)
    decoys = GraphModel.from_bytes(export_model(DecoyNet(0.0).eval(), torch.randn(2, 1, 28, 28)), seed=1)
    honest = GraphModel.from_bytes(export_model(DecoyNet(1.0).eval(), torch.randn(2, 1, 28, 28)), seed=1)
    forwards = []
    original = GraphModel.forward
    monkeypatch.setattr(GraphModel, "forward", lambda self, *a, **k: forwards.append(1) or original(self, *a, **k))
    whole = honest.parameter_count("train", images)
    passes_for_whole = len(forwards)
    assert whole == sum(p.numel() for p in DecoyNet(1.0).parameters()) - 5000 - 4 * 9 - 4   # padding and shift
    forwards.clear()
    head = 8 * 28 * 28 * 10 + 10          # the largest layer, measured first
    assert head <= honest.parameter_count("train", images, enough=head) <= whole
    assert 2 == len(forwards) < passes_for_whole        # the unperturbed output, then the head
    assert decoys.parameter_count("train", images, enough=head) == decoys.parameter_count("train", images) \
        == 28 * 28 * 10 + 10


def test_a_skip_multiplied_by_zero_is_no_skip(lesson_plan):
    class Projected(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.block, self.projection, self.scale = lesson_plan["ResidualBlock"](4), nn.Conv2d(4, 4, 1), scale

        def forward(self, x):   # the lesson plan's branch, with a projection skip scaled by `scale`
            branch = self.block.bn2(self.block.conv2(F.relu(self.block.bn1(self.block.conv1(x)))))
            return F.relu(branch + self.projection(x) * self.scale)

    x = torch.randn(4, 4, 6, 6)
    for scale, skips in ((1.0, 1), (0.0, 0), (1e-6, 0)):
        model = GraphModel.from_bytes(export_model(Projected(scale).eval(), torch.randn(2, 4, 6, 6)), seed=2)
        assert model.skip_connections("train") == 1, scale         # read from the structure alone
        assert model.skip_connections("train", x) == skips, scale  # what the output depends on
