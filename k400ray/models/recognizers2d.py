"""TSN and TSM: a 2D backbone applied to every frame, then an average over frames.

Both take clips ``(N, C, T, H, W)`` and fold time into the batch, ``(N*T, C, H, W)``, so the
backbone is a plain image network (and runs in ``channels_last``). They differ only in where
the average happens, following MMAction2's ``TSNHead`` / ``TSMHead`` (the sheet's source):

    TSN: backbone -> avg pool -> mean over T (features) -> dropout -> fc
    TSM: backbone(with shift) -> avg pool -> dropout -> fc -> mean over T (scores)

Averaging features before ``fc`` equals averaging per-frame scores (``fc`` is affine) in eval
mode; in training TSN's dropout then acts on the averaged feature, as in the reference.
GluonCV's TSN (``ActionRecResNetV1b`` in dmlc/gluon-cv
``gluoncv/model_zoo/action_recognition/actionrec_resnetv1b.py``) drops each frame's feature
before the average instead (``dropout_per_frame``): the same in eval mode, a milder dropout
in training (a feature of the average is zeroed only when every frame's is).
"""

from __future__ import annotations

import torch
from torch import nn


def frames_as_batch(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, H, W)`` -> ``(N*T, C, H, W)``, frame-major within each clip.

    A view (no copy) when ``x`` is ``channels_last_3d``: the result is then ``channels_last``.
    """
    if x.dim() != 5:
        raise ValueError(f"expected a clip batch (N, C, T, H, W), got shape {tuple(x.shape)}")
    return x.transpose(1, 2).flatten(0, 1)


def init_classifier(fc: nn.Linear, *, std: float) -> None:
    """Normal(0, std) weights and zero bias, MMAction2's ``normal_init`` of the class head."""
    nn.init.normal_(fc.weight, mean=0.0, std=std)
    nn.init.zeros_(fc.bias)


class TSN(nn.Module):
    """Temporal Segment Network with average consensus; accepts any number of segments T.

    The output does not depend on the order of the frames (eval mode): the consensus is a mean.
    """

    def __init__(self, backbone: nn.Module, *, feature_dim: int, num_classes: int, dropout: float, init_std: float,
                 dropout_per_frame: bool = False):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.dropout_per_frame = dropout_per_frame
        self.fc = nn.Linear(feature_dim, num_classes)
        init_classifier(self.fc, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[0], x.shape[2]
        features = self.pool(self.backbone(frames_as_batch(x))).flatten(1)  # (N*T, F)
        if self.dropout_per_frame:
            return self.fc(self.dropout(features).unflatten(0, (n, t)).mean(dim=1))
        consensus = features.unflatten(0, (n, t)).mean(dim=1)  # (N, F)
        return self.fc(self.dropout(consensus))


class TSM(nn.Module):
    """Temporal Shift Module network: ``backbone`` already carries the residual shifts.

    The shifts exchange channels between the ``num_segments`` frames of each clip, so the input
    must have exactly ``T == num_segments`` frames (more views of a video are more clips).
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        feature_dim: int,
        num_classes: int,
        num_segments: int,
        dropout: float,
        init_std: float,
    ):
        super().__init__()
        self.backbone = backbone
        self.num_segments = num_segments
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(feature_dim, num_classes)
        init_classifier(self.fc, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.num_segments:
            raise ValueError(
                f"TSM expects clips (N, C, T={self.num_segments}, H, W): its temporal shift runs across "
                f"exactly num_segments={self.num_segments} frames; got shape {tuple(x.shape)}"
            )
        n, t = x.shape[0], x.shape[2]
        features = self.pool(self.backbone(frames_as_batch(x))).flatten(1)  # (N*T, F)
        scores = self.fc(self.dropout(features))  # (N*T, K)
        return scores.unflatten(0, (n, t)).mean(dim=1)
