"""The encoding of a prepared copy (``k400ray prepare``): H.264 settings, and how far apart a
video's keyframes are.

Training samples a few frames per video (TSN: 8 frames spread over the whole video; I3D: 32
frames at interval 2 from a random start). A decoder reaches a frame by seeking to the keyframe
before it and decoding every frame from there, so with x264's default keyframe interval (250: one
or two keyframes in a 10-s Kinetics clip) a sparse sample decodes nearly the whole video. A
keyframe every N frames bounds that run to N, and x264's ``fastdecode`` tuning (CAVLC instead of
CABAC, no deblocking filter, no weighted prediction) makes every decoded frame cheaper; both cost
bytes. The default is the trade measured by ``k400ray bench data --encodings``
(docs/benchmarks.md, "Encoding for the sampling"; docs/data.md says why it was chosen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

X264_PRESET = "veryfast"
X264_CRF = 23
X264_DEFAULT_KEYINT = 250  # x264's own default: what a YouTube-derived raw Kinetics file has
# The best trade of docs/benchmarks.md ("Encoding for the sampling"): of the two encodings that
# meet the goal there (TSN >= 2x and I3D >= 1.5x less decode CPU per training clip than x264's
# defaults, at <= 1.6x the bytes), the one that clears the TSN goal, the one measurement noise
# and content move, by the wider margin (docs/data.md says why).
DEFAULT_KEYFRAME_INTERVAL = 24
DEFAULT_FAST_DECODE = True
# A video already at the target size is copied when no keyframe is followed by more than this
# many times the interval of frames (an encoder's scene cuts shift keyframes by a few frames).
KEYFRAME_TOLERANCE = 1.25

_NAME = re.compile(r"keyint(\d+)(-fastdecode)?")


@dataclass(frozen=True)
class Encoding:
    """How ``k400ray prepare`` encodes a video: x264 ``veryfast``, CRF 23, yuv420p, one thread,
    a keyframe at least every ``keyframe_interval`` frames, optionally tuned for fast decoding."""

    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL
    fast_decode: bool = DEFAULT_FAST_DECODE

    def __post_init__(self) -> None:
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe interval {self.keyframe_interval}: must be at least 1")

    @property
    def name(self) -> str:
        """``keyint16-fastdecode``, ``keyint250``: the name in bench records and measured.json."""
        return f"keyint{self.keyframe_interval}" + ("-fastdecode" if self.fast_decode else "")

    @classmethod
    def from_name(cls, name: str) -> Encoding:
        """The inverse of :attr:`name`; ValueError for anything else."""
        match = _NAME.fullmatch(name.strip())
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"{name!r}: an encoding is named keyint<N> or keyint<N>-fastdecode, N >= 1")
        return cls(int(match.group(1)), match.group(2) is not None)

    def describe(self) -> str:
        return f"keyframe interval {self.keyframe_interval}, fast decode {'on' if self.fast_decode else 'off'}"

    def record(self) -> dict:
        """What the prepare manifest keeps under ``encoding``."""
        return {"codec": "libx264", "preset": X264_PRESET, "crf": X264_CRF,
                "keyframe_interval": self.keyframe_interval, "fast_decode": self.fast_decode}

    def codec_options(self, codec: str) -> dict[str, str]:
        """PyAV stream options for ``codec`` (``libx264``; ``libvpx-vp9`` for WebM outputs, which
        take the keyframe interval as ``g`` and have no fast-decode tuning)."""
        if codec != "libx264":
            return {"crf": "32", "b": "0", "threads": "1", "g": str(self.keyframe_interval)}
        options = {"preset": X264_PRESET, "crf": str(X264_CRF), "threads": "1",
                   "x264-params": f"keyint={self.keyframe_interval}"}
        if self.fast_decode:
            options["tune"] = "fastdecode"
        return options

    def dense_enough(self, longest_gap: int) -> bool:
        """Whether a video whose longest keyframe gap is ``longest_gap`` frames can be copied."""
        return longest_gap <= self.keyframe_interval * KEYFRAME_TOLERANCE


# What a manifest written before encodings were recorded was made with.
X264_DEFAULTS = Encoding(X264_DEFAULT_KEYINT, False)


def longest_keyframe_gap(path: str | Path) -> int:
    """The most frames a decoder must decode from one keyframe: the longest run of video packets
    from a keyframe to the next one (or to the end). Demuxes the packets, decodes nothing."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count, last_key, longest = 0, 0, 0
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if packet.is_keyframe:
                longest, last_key = max(longest, count - last_key), count
            count += 1
    return max(longest, count - last_key)
