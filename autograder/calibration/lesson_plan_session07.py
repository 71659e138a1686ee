"""The Session 7 lesson plan's own ResidualBlock and ResidualCNN, as a student would copy them.

Written independently of the course's solution (conv biases, an in-place add, x.view): the
grading threshold is calibrated on it as well as on the solution, and the end-to-end grading
test submits it and expects full marks.
"""

RESIDUAL_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return F.relu(out)
'''

RESIDUAL_CNN = '''
class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.res1 = ResidualBlock(32)
        self.pool = nn.MaxPool2d(2, 2)
        self.res2 = ResidualBlock(32)
        self.fc = nn.Linear(32*14*14, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.res1(x)
        x = self.pool(x)
        x = self.res2(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)
'''

ANSWERS = {"residual_block": RESIDUAL_BLOCK, "residual_cnn": RESIDUAL_CNN}
