"""Session 7 tampering cases that go straight to run_checks (cheap: one sandboxed probe run each).

The class-wide adversarial suite (hostile_submissions.py, test_grade_class.py) grades through
nbgrader and the pipeline; these are cases found later, kept cheap.
"""

from autograder.trusted import run_checks

ASSIGNMENT = "session07_residual_cnn"

# A block without the skip connection whose forward writes the gradient the skip would give
# into x.grad, hoping the grader reads x.grad after its backward pass.
FORGED_GRADIENT_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        if x.requires_grad:
            x.grad = (x.detach() > 0).float()
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))   # no "+ x"
'''
CNN_STUB = "class ResidualCNN(nn.Module):\n    pass\n"


def test_a_gradient_written_into_x_grad_does_not_pass_the_skip_gradient_check():
    results = run_checks(ASSIGNMENT, {"residual_block": FORGED_GRADIENT_BLOCK, "residual_cnn": CNN_STUB},
                         student="forged-gradient")
    assert results["block_keeps_shape"].passed, results["block_keeps_shape"].message  # the block runs
    assert not results["block_gradient_through_skip"].passed
    assert not results["block_skip_connection"].passed
