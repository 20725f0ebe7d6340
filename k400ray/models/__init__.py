"""Video classifiers built from torchvision 2D backbones: TSN, TSM (temporal shift) and I3D
(inflated 3D ResNet-50). Every architectural constant lives in :class:`ArchConfig`."""

from k400ray.models.arch import ArchConfig

__all__ = ["ArchConfig"]
