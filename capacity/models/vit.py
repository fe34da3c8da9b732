"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"), written out in plain torch.

Patches are embedded by a conv with kernel = stride = patch size, a class token is prepended, learned
position embeddings added, then `depth` pre-norm blocks x + attn(LN(x)), x + mlp(LN(x)), a final LayerNorm,
and a Linear head on the class token. Attention is written by hand (one qkv Linear, softmax(q kᵀ/√d) v, an
output projection) rather than with nn.MultiheadAttention, whose fused kernels torch.func.vmap, torch.fx and
the ONNX exporter handle less cleanly. Names follow timm's VisionTransformer (patch_embed.proj, cls_token,
pos_embed, blocks.0.attn.qkv, blocks.0.mlp.fc1, norm, head), so timm checkpoints of the same size load by
name: ViT-Ti/16 (vit_tiny_patch16_224) has 5,717,416 parameters, ViT-S/16 22,050,664.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.models.spec import ViTSpec

INIT_STD = 0.02


class SelfAttention(nn.Module):
    """Multi-head self-attention over (B, N, D) tokens; one Linear makes q, k and v for every head."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, 3·D) -> (3, B, heads, N, head_dim): unflatten, not reshape with x.shape, so fx and vmap see no sizes.
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, self.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((weights @ v).transpose(1, 2).flatten(2))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, H/p, W/p) -> (B, N, D), patches in raster order


class VisionTransformer(nn.Module):
    """Initialised as timm initialised ViT when DeiT was built on it (timm 0.3): the position embedding and the
    class token from a normal of std 0.02 truncated at ±2 (absolute bounds, as timm's trunc_normal_: 100 std,
    so in effect untruncated), every Linear weight likewise with a zero bias, LayerNorms at scale 1 and shift 0,
    the patch conv at PyTorch's default. Later timm draws the class token with std 1e-6 instead; the class
    token is one vector, so the choice barely matters for capacity (docs/decisions.md)."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        channels, height, width = spec.input_shape
        tokens = (height // spec.patch_size) * (width // spec.patch_size) + 1
        self.patch_embed = PatchEmbed(channels, spec.dim, spec.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, spec.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, spec.dim))
        self.blocks = nn.Sequential(*(Block(spec.dim, spec.heads, spec.mlp_hidden) for _ in range(spec.depth)))
        self.norm = nn.LayerNorm(spec.dim, eps=1e-6)
        self.head = nn.Linear(spec.dim, spec.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=INIT_STD)
        nn.init.trunc_normal_(self.cls_token, std=INIT_STD)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])
