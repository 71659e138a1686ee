"""The Day 13 lesson plan's own answers, as a student would copy them: ResidualBlock, ResNet18 and
DeepResNet (ANSWERS), and Exercise 1's vgg_block and VGG16_MNIST (VGG_ANSWERS).

Written independently of the course's solution (an empty nn.Sequential() as the identity
shortcut, an in-place add, torch.relu, x.view, its own _make_layer in DeepResNet): the
learning checks are calibrated on it as well as on the solution, and the end-to-end grading
test submits it and expects full marks. BottleneckBlock and MyResNet (the open part) are left
unwritten.
"""

RESIDUAL_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super(ResidualBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1,
                               padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = torch.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out += self.shortcut(identity)
        out = torch.relu(out)
        return out
'''

RESNET18 = '''
class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super(ResNet18, self).__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        layers = []
        layers.append(ResidualBlock(in_channels, out_channels, stride))
        for _ in range(1, num_blocks):
            layers.append(ResidualBlock(out_channels, out_channels, stride=1))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = torch.relu(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avg_pool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x
'''

DEEP_RESNET = '''
class DeepResNet(nn.Module):
    def __init__(self, num_classes=10):
        super(DeepResNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, 3, stride=1)
        self.layer2 = self._make_layer(64, 128, 4, stride=2)
        self.layer3 = self._make_layer(128, 256, 6, stride=2)
        self.layer4 = self._make_layer(256, 512, 3, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, in_channels, out_channels, num_blocks, stride):
        layers = []
        layers.append(ResidualBlock(in_channels, out_channels, stride))
        for _ in range(1, num_blocks):
            layers.append(ResidualBlock(out_channels, out_channels))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avg_pool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x
'''

ANSWERS = {"residual_block": RESIDUAL_BLOCK, "resnet18": RESNET18, "deep_resnet": DEEP_RESNET}

# Exercise 1 (day13_vgg/vgg.ipynb): the lesson plan's vgg_block and VGG16_MNIST as it printed them
# (super(VGG16_MNIST, self), x.view, the blocks commented by size), independent of the course's
# solution. The end-to-end test of day13_vgg's trusted checks submits them and expects every check
# to pass.
VGG_BLOCK = '''
def vgg_block(num_convs, in_channels, out_channels):
    """
    Create a VGG block

    VGG philosophy: Stack multiple 3x3 convolutions
    """
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels,
                               kernel_size=3, padding=1))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels

    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)
'''

VGG16 = '''
class VGG16_MNIST(nn.Module):
    """VGG-16 architecture adapted for MNIST"""
    def __init__(self, num_classes=10):
        super(VGG16_MNIST, self).__init__()

        self.features = nn.Sequential(
            # Block 1: 32x32 -> 16x16
            vgg_block(2, 1, 64),
            # Block 2: 16x16 -> 8x8
            vgg_block(2, 64, 128),
            # Block 3: 8x8 -> 4x4
            vgg_block(3, 128, 256),
            # Block 4: 4x4 -> 2x2
            vgg_block(3, 256, 512),
            # Block 5: 2x2 -> 1x1
            vgg_block(3, 512, 512),
        )

        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x
'''

VGG_ANSWERS = {"vgg_block": VGG_BLOCK, "vgg16": VGG16}
