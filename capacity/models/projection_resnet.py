"""ResNet-18/34 (He et al. 2016, "Deep Residual Learning for Image Recognition", table 1): BasicBlocks, and a
projection shortcut (option B: 1x1 conv + BN) where a stage starts, with a CIFAR or an ImageNet stem.

Parameter and module names follow torchvision's resnet18/resnet34 (conv1, bn1, layer1.0.conv1,
layer2.0.downsample.0, fc), so a torchvision or kuangliu/pytorch-cifar state_dict loads by name.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.models.spec import ResNetSpec
from effcap.capacity.pointwise_conv import subsample


def he_init(model: nn.Module) -> None:
    """He et al. 2015's normal init (fan-out, ReLU gain) for every conv, as the ResNet paper and torchvision do;
    BatchNorm starts at scale 1, shift 0 and Linear layers keep PyTorch's default, as in torchvision."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut projects when the block downsamples."""

    def __init__(self, c_in: int, c_inner: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_inner, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_inner)
        self.conv2 = nn.Conv2d(c_inner, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.downsample = None
        if stride != 1:  # 1x1 conv at stride 1 on the subsampled input (capacity/pointwise_conv.py says why)
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(subsample(x, self.stride))))


def stem_layers(stem: str, c_in: int, c_out: int) -> tuple[nn.Conv2d, bool]:
    """The first conv, and whether a 3x3/2 max-pool follows it ("imagenet": 7x7/2 conv and pool)."""
    if stem == "imagenet":
        return nn.Conv2d(c_in, c_out, 7, stride=2, padding=3, bias=False), True
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), False


class ResNet(nn.Module):
    """Stem, stages layer1..layerN of BasicBlocks (stride 2 and a projection at the start of every stage but
    the first), global average pool, Linear head. ResNet-18: 11,689,512 parameters with the ImageNet stem and
    1000 classes (torchvision), 11,173,962 with the CIFAR stem and 10 classes (kuangliu/pytorch-cifar)."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        streams, inner = spec.stream_widths(), iter(spec.block_inner_widths())
        self.conv1, self.stem_pool = stem_layers(spec.stem, spec.input_shape[0], streams[0])
        self.bn1 = nn.BatchNorm2d(streams[0])
        self.stages = tuple(f"layer{s + 1}" for s in range(len(streams)))
        c_in = streams[0]
        for s, (blocks, c_out) in enumerate(zip(spec.blocks_per_stage, streams)):
            stage = []
            for b in range(blocks):
                stage.append(BasicBlock(c_in, next(inner), c_out, stride=2 if s > 0 and b == 0 else 1))
                c_in = c_out
            self.add_module(self.stages[s], nn.Sequential(*stage))
        self.fc = nn.Linear(streams[-1], spec.num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        if self.stem_pool:
            h = F.max_pool2d(h, 3, 2, padding=1)
        for name in self.stages:
            h = getattr(self, name)(h)
        return self.fc(h.mean(dim=(2, 3)))
