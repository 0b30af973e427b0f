"""The network: a deep ensemble of small causal dilated 1D-conv nets (a TCN) over the window.

Each member reads the window's rows through a 1×1 input projection, then a stack of
dilated causal convolutions with residual connections, and ends in a 1×1 head with three
logits (down, flat, up). Its receptive field is exactly `features.WINDOW` bars, so the
output at the last position of a window depends on that window and nothing else.

Two consequences the rest of guard relies on:

* The members are stored as *grouped* convolutions (one tensor per layer, `groups=members`),
  which keeps live inference for a handful of symbols to a few operator calls.
* Convolutions are "valid" (no padding): run over a whole bar series, the output at bar t
  equals the output for the window ending at t. Training and fast replay run over long
  series in one pass instead of window by window (about 64× less work); `split_members`
  runs each member separately there, which the CPU kernels do faster on long inputs.

The module also carries the novelty reference (`guard.model.novelty`: each hour's mean move
size, the quantiles of de-seasonalised move sizes, the training statistic's mean and spread,
the validation distances' quantiles) as
persistent float64 buffers, so a shape mismatch in any of them fails
`load_state_dict(strict=True)` like a weight would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from guard.model.novelty import HOURS, N_STAT

N_CLASSES = 3
N_QUANTILES = 1001
"""Resolution of the novelty reference distributions (percentiles to 0.1 %)."""


def receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
    """Bars one output looks at."""
    return 1 + (kernel_size - 1) * sum(dilations)


class EnsembleTCN(nn.Module):
    """`members` independent causal conv nets, evaluated together.

    Args:
        n_features: columns per row.
        channels: hidden channels per member.
        members: ensemble size.
        kernel_size: taps of every dilated convolution.
        dilations: one per layer; the receptive field is 1 + (kernel_size - 1)·sum(dilations).
    """

    # Buffers, declared so their type is known (nn.Module types an unknown attribute Tensor | Module).
    norm_mean: torch.Tensor
    norm_std: torch.Tensor
    novelty_hour_scale: torch.Tensor
    novelty_bar_quantiles: torch.Tensor
    novelty_mean: torch.Tensor
    novelty_spread: torch.Tensor
    novelty_ref_distance: torch.Tensor

    def __init__(
        self,
        n_features: int,
        channels: int = 24,
        members: int = 3,
        kernel_size: int = 4,
        dilations: Sequence[int] = (1, 4, 16),
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.channels = channels
        self.members = members
        self.kernel_size = kernel_size
        self.dilations = tuple(dilations)
        self.receptive_field = receptive_field(kernel_size, self.dilations)
        width = channels * members
        self.inp = nn.Conv1d(n_features, width, 1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size, dilation=d, groups=members) for d in self.dilations
        )
        self.head = nn.Conv1d(width, N_CLASSES * members, 1, groups=members)
        self.embedding_dim = width
        self.register_buffer("norm_mean", torch.zeros(n_features), persistent=False)
        self.register_buffer("norm_std", torch.ones(n_features), persistent=False)
        # the novelty reference (guard.model.novelty): each hour's mean move size, quantiles of the
        # de-seasonalised move sizes, mean and spread of the training windows' statistic, and the
        # quantiles of validation distances
        self.register_buffer("novelty_hour_scale", torch.ones(HOURS, dtype=torch.float64))
        self.register_buffer("novelty_bar_quantiles", torch.zeros(N_QUANTILES, dtype=torch.float64))
        self.register_buffer("novelty_mean", torch.zeros(N_STAT, dtype=torch.float64))
        self.register_buffer("novelty_spread", torch.ones(N_STAT, dtype=torch.float64))
        self.register_buffer("novelty_ref_distance", torch.zeros(N_QUANTILES, dtype=torch.float64))

    def init_args(self) -> dict[str, object]:
        """The constructor arguments, as recorded in an artifact's config.json."""
        return {
            "n_features": self.n_features,
            "channels": self.channels,
            "members": self.members,
            "kernel_size": self.kernel_size,
            "dilations": list(self.dilations),
        }

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use these per-feature statistics to standardise inputs (raw rows in, z-scores used)."""
        self.norm_mean.copy_(mean)
        self.norm_std.copy_(std)

    def forward(self, x: torch.Tensor, *, split_members: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Run raw rows through every member.

        Args:
            x: raw rows, (batch, n_features, length) with length >= receptive_field.
            split_members: run members one by one (faster on long series on CPU).

        Returns:
            logits (batch, members, 3, L') and embedding (batch, channels·members, L'),
            with L' = length - receptive_field + 1; position j is the window ending at
            input position j + receptive_field - 1.
        """
        z = (x - self.norm_mean[None, :, None]) / self.norm_std[None, :, None]
        h = self.inp(z)
        if split_members:
            h = self._blocks_split(h)
        else:
            for conv in self._convs():
                h = _trim(h, conv) + F.relu(conv(h))
        logits = self.head(h)
        b, _, length = logits.shape
        return logits.view(b, self.members, N_CLASSES, length), h

    def _convs(self) -> Iterator[nn.Conv1d]:
        """The dilated convolutions, typed (an nn.ModuleList yields plain Modules)."""
        for conv in self.blocks:
            yield cast(nn.Conv1d, conv)

    def _blocks_split(self, h: torch.Tensor) -> torch.Tensor:
        c = self.channels
        parts = []
        for m in range(self.members):
            hm = h[:, m * c : (m + 1) * c]
            for conv in self._convs():
                weight = conv.weight[m * c : (m + 1) * c]
                bias = conv.bias[m * c : (m + 1) * c] if conv.bias is not None else None
                out = F.conv1d(hm, weight, bias, dilation=conv.dilation)
                hm = _trim(hm, conv) + F.relu(out)
            parts.append(hm)
        return torch.cat(parts, dim=1)


def _trim(h: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """The residual path: drop the leading positions a valid dilated conv consumed."""
    lost = conv.dilation[0] * (conv.kernel_size[0] - 1)
    return h[:, :, lost:]


def parameter_count(net: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
