"""Decode a video's sampled frames on the GPU's video decoder (NVDEC), for the ``nvdec`` decode
backend (``decode.read_frames``).

Why: decoding is the CPU cost of training. An H100 training TSN-R50 needs 15-17 cores of CPU
decoding (docs/benchmarks.md); NVDEC is a fixed-function unit beside the GPU's compute, so a
GPU node's decode tasks can hand their frames to it and spend CPU only on crops.

Why PyNvVideoCodec (NVIDIA's Python bindings to the Video Codec SDK, the ``gpu-decode`` extra):
its PyPI wheel (2.2.4) carries builds for CUDA 12 and 13 and picks one by the driver, ships its
own demuxer (FFmpeg's libavformat), and needs only the NVIDIA driver (libnvcuvid) beside it: it
installs from PyPI on a CUDA 13 node with torch 2.14 as it is. torchcodec's PyPI wheel is built
for CUDA 13 too, but links the system's FFmpeg 4-8 shared libraries, which a GPU node need not
have; DALI's CUDA 13 wheel is 199 MB and a pipeline framework of its own.

The frames are those ``read_frames`` would decode on the CPU (same indices), converted to RGB
by NVDEC's post-processing, resized on the GPU to the same output size (bilinear with
antialiasing, where the CPU decoders use their scaler: the prepared 340x256 copies need none at
short side 256), and copied to host memory, where the same crops run. A decode process picks
one GPU by its pid (a node's decode tasks spread over its GPUs) and keeps one decoder, pointed
at each new video in turn.
"""

from __future__ import annotations

import functools
import os

import numpy as np

INSTALL_HINT = "pip install 'k400ray[gpu-decode]' (PyNvVideoCodec)"


def _import_nvc():
    import PyNvVideoCodec

    return PyNvVideoCodec


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why this process cannot decode on NVDEC (no GPU visible, PyNvVideoCodec missing), or None.
    Checked once per process: a decode process keeps its answer."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device visible to this process"
    try:
        _import_nvc()
    except Exception as exc:  # ImportError, or the driver too old for its CUDA build
        return f"PyNvVideoCodec does not load ({type(exc).__name__}: {str(exc)[:120]}); {INSTALL_HINT}"
    return None


def resize_frames(frames, size: tuple[int, int] | None):
    """uint8 ``(N, H, W, 3)`` frames (a torch tensor, on any device) at ``size`` (width, height):
    bilinear with antialiasing, rounded back to uint8; unchanged when already that size."""
    import torch

    if size is None or (frames.shape[2], frames.shape[1]) == tuple(size):
        return frames
    x = frames.permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size[1], size[0]), mode="bilinear", antialias=True,
                                        align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class _Decoder:
    """One PyNvVideoCodec ``SimpleDecoder`` per process, reconfigured for each new video (creating
    an NVDEC session per video costs more than decoding a TSN clip)."""

    def __init__(self) -> None:
        self.decoder = None
        self.gpu_id = None

    def open(self, path: str):
        nvc = _import_nvc()
        if self.decoder is not None:
            try:
                self.decoder.reconfigure_decoder(path)
                return self.decoder
            except Exception:  # another codec or a larger size than the session allows: open anew
                self.decoder = None
        if self.gpu_id is None:
            import torch

            self.gpu_id = os.getpid() % max(1, torch.cuda.device_count())
        self.decoder = nvc.SimpleDecoder(path, gpu_id=self.gpu_id, use_device_memory=True,
                                         output_color_type=nvc.OutputColorType.RGB)
        return self.decoder


_DECODER = _Decoder()


def decode_nvdec(path: str, order: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Frames ``order`` (distinct indices, ascending, as ``read_frames`` passes them) of ``path``
    as uint8 ``(len(order), H, W, 3)`` in host memory, at ``size`` (width, height) when given.
    Raises on any failure: ``read_frames`` then decodes the video on the CPU."""
    import torch

    decoder = _DECODER.open(path)
    wanted = [int(i) for i in order]
    frames = decoder.get_batch_frames_by_index(wanted)
    if len(frames) != len(wanted):
        raise RuntimeError(f"NVDEC returned {len(frames)} of {len(wanted)} frames")
    stacked = torch.stack([torch.from_dlpack(f) for f in frames])  # (N, H, W, 3) uint8 on the GPU
    if stacked.dtype != torch.uint8 or stacked.ndim != 4 or stacked.shape[-1] != 3:
        raise RuntimeError(f"NVDEC frames of shape {tuple(stacked.shape)} {stacked.dtype}, not (N, H, W, 3) uint8")
    return resize_frames(stacked, size).cpu().numpy()
