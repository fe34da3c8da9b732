"""Reference networks in plain torch (torchvision does not import with our CPU torch), and their ONNX export.

Each is written the way the literature's code writes it — torchvision's ResNet, kuangliu's CIFAR
VGG, the WRN authors' pre-activation blocks, a timm-style ViT, MobileNet's depthwise separable
blocks — with a `width` so the tests can build narrow ones that export and train in seconds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


def export_onnx(
    model: nn.Module, input_shape: tuple[int, ...], path: Path, dynamic_batch: bool = True, opset: int | None = None
) -> Path:
    """The documented export (capacity/graphs/export_call.py): TorchScript exporter, training mode (BatchNorm
    kept as a layer), a symbolic batch axis."""
    kwargs = {"input_names": ["input"], "dynamic_axes": {"input": {0: "batch"}}} if dynamic_batch else {}
    if opset is not None:
        kwargs["opset_version"] = opset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            torch.randn(2, *input_shape),
            str(path),
            dynamo=False,
            training=torch.onnx.TrainingMode.TRAINING,
            **kwargs,
        )
    return path


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so a wrong BatchNorm translation shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convs with BatchNorm, a 1x1 projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """ResNet-18 (blocks 2,2,2,2) or -34 (3,4,6,3); the CIFAR stem is a 3x3 conv, the ImageNet one 7x7/2 + max-pool."""

    def __init__(
        self, blocks=(2, 2, 2, 2), width: int = 64, stem: str = "cifar", in_channels: int = 3, classes: int = 10
    ) -> None:
        super().__init__()
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        layers, c_in = [], width
        for stage, count in enumerate(blocks):
            c_out = width * 2**stage
            layers.append(
                nn.Sequential(
                    *[BasicBlock(c_in if i == 0 else c_out, c_out, 2 if stage and i == 0 else 1) for i in range(count)]
                )
            )
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = (layers + [nn.Identity()] * 4)[:4]
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class VGG(nn.Module):
    """kuangliu/pytorch-cifar's VGG: 3x3 conv stacks (optionally with BatchNorm), max-pools, one Linear."""

    CONFIGS = {
        11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
        16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    }

    def __init__(
        self, depth: int = 11, batch_norm: bool = True, divisor: int = 1, in_channels: int = 3, classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in self.CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            c_out = item // divisor
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                *([nn.BatchNorm2d(c_out)] if batch_norm else []),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).view(x.size(0), -1))


class WideBlock(nn.Module):
    """Zagoruyko & Komodakis' pre-activation block: BN-ReLU-conv, (dropout), BN-ReLU-conv, and a 1x1 shortcut
    when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = None if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.dropout(self.conv1(pre)))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-d-k: (d − 4)/6 blocks per stage, widths 16, 16k, 32k, 64k (times width/16)."""

    def __init__(
        self,
        depth: int = 28,
        k: int = 10,
        width: int = 16,
        dropout: float = 0.0,
        in_channels: int = 3,
        classes: int = 10,
    ) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = [width, width * k, 2 * width * k, 4 * width * k]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, c_in = [], widths[0]
        for stage in range(3):
            for i in range(n):
                blocks.append(WideBlock(c_in, widths[stage + 1], 2 if stage and i == 0 else 1, dropout))
                c_in = widths[stage + 1]
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.fc = nn.BatchNorm2d(c_in), nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))


class ViT(nn.Module):
    """A Vision Transformer as timm writes it: conv patch embedding, class token, position embedding, pre-norm
    blocks, GELU MLPs of `mlp_ratio` × dim. ViT-Ti/16 is image 224, dim 192, depth 12, heads 3 (5,717,416 parameters)."""

    def __init__(
        self,
        image: int = 16,
        patch: int = 4,
        dim: int = 32,
        depth: int = 2,
        heads: int = 2,
        mlp_ratio: int = 4,
        in_channels: int = 3,
        classes: int = 10,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "norm1": nn.LayerNorm(dim),
                    "attn": Attention(dim, heads),
                    "norm2": nn.LayerNorm(dim),
                    "fc1": nn.Linear(dim, mlp_ratio * dim),
                    "fc2": nn.Linear(mlp_ratio * dim, dim),
                }
            )
            for _ in range(depth)
        )
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = x + block["attn"](block["norm1"](x))
            x = x + block["fc2"](F.gelu(block["fc1"](block["norm2"](x))))
        return self.head(self.norm(x)[:, 0])


class MobileNetLike(nn.Module):
    """MobileNet (v1/v2-style) depthwise separable blocks: depthwise 3x3 (groups = channels), pointwise 1x1, ReLU6."""

    def __init__(self, width: int = 8, in_channels: int = 3, classes: int = 10) -> None:
        super().__init__()

        def separable(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
                nn.BatchNorm2d(c_in),
                nn.ReLU6(),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU6(),
            )

        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6())
        self.blocks = nn.Sequential(
            separable(width, 2 * width, 1), separable(2 * width, 4 * width, 2), separable(4 * width, 4 * width, 1)
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))
