"""The decode backend (``data.decode_backend``): ``nvdec`` changes nothing where no GPU is visible
(the same clips, bit for bit), and where one is, NVDEC's frames go through the same indices and
crops, with the CPU decoders as the fallback. This machine has no GPU: the GPU path runs here
against a stand-in for PyNvVideoCodec that serves frames from host memory (infra/gpu_session.sh
measures the real one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from k400ray.data import nvdec
from k400ray.data.decode import read_frames
from k400ray.data.pipeline import decode_batch
from k400ray.presets import get_preset
from tests.conftest import write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend")
    write_video(root / "v0.mp4", frames=24, size=(64, 48))
    write_video(root / "v1.mp4", frames=30, size=(48, 64))
    return root


def _batch():
    rows = [
        {"video_id": "v0", "path": "v0.mp4", "label": 0, "num_frames": 24, "width": 64, "height": 48, "decoder": "auto"},
        {"video_id": "v1", "path": "v1.mp4", "label": 1, "num_frames": 30, "width": 48, "height": 64, "decoder": "pyav"},
    ]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine with no GPU")
def test_without_a_gpu_nvdec_gives_the_cpu_clips_bit_for_bit(videos):
    assert nvdec.unavailable_reason() == "no CUDA device visible to this process"
    for preset, randaugment in (("tsm_r50_1x1x8", (2, 9)), ("i3d_r50_32x2x1", None)):
        spec = get_preset(preset, scale="toy").clip_spec("train", randaugment=randaugment)
        cpu = decode_batch(_batch(), data_root=str(videos), spec=spec, seed=3, epoch=1, decode_backend="cpu")
        gpu = decode_batch(_batch(), data_root=str(videos), spec=spec, seed=3, epoch=1, decode_backend="nvdec")
        assert cpu["valid"].all() and cpu["clips"].any()
        assert np.array_equal(cpu["clips"], gpu["clips"]) and cpu["clips"].dtype == gpu["clips"].dtype


def test_an_unknown_backend_is_refused(videos):
    with pytest.raises(ValueError, match="unknown decode backend 'vaapi'"):
        read_frames(videos / "v0.mp4", np.arange(3), backend="vaapi")


class _Frame:
    """A decoded frame as PyNvVideoCodec hands it over: anything ``torch.from_dlpack`` reads."""

    def __init__(self, array: np.ndarray) -> None:
        self.tensor = torch.from_numpy(array)

    def __dlpack__(self, *args, **kwargs):
        return self.tensor.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()


class _FakeNvc:
    """PyNvVideoCodec's ``SimpleDecoder`` as ``nvdec`` uses it, decoding on the CPU (PyAV) so the
    frames are known; records the sessions opened and the indices asked for."""

    class OutputColorType:
        RGB = "rgb"

    def __init__(self, fail: bool = False) -> None:
        self.opened, self.asked, self.fail = [], [], fail
        fake = self

        class SimpleDecoder:
            def __init__(self, path, **kwargs):
                fake.opened.append(("open", path, kwargs["output_color_type"]))
                self.path = path

            def reconfigure_decoder(self, path):
                fake.opened.append(("reconfigure", path))
                self.path = path

            def get_batch_frames_by_index(self, indices):
                if fake.fail:
                    raise RuntimeError("CUVID_ERROR")
                fake.asked.append(list(indices))
                frames = read_frames(self.path, np.asarray(indices), decoder="pyav")
                return [_Frame(f) for f in frames]

        self.SimpleDecoder = SimpleDecoder


@pytest.fixture
def fake_gpu(monkeypatch):
    def install(fail: bool = False) -> _FakeNvc:
        fake = _FakeNvc(fail)
        monkeypatch.setattr(nvdec, "unavailable_reason", lambda: None)
        monkeypatch.setattr(nvdec, "_import_nvc", lambda: fake)
        monkeypatch.setattr(nvdec, "_DECODER", nvdec._Decoder())
        return fake
    return install


def test_nvdec_frames_take_the_same_indices_repeats_and_size(videos, fake_gpu):
    fake = fake_gpu()
    indices = np.array([[5, 1, 5], [20, 1, 3]])  # any order, repeats: read_frames asks NVDEC once per frame
    got = read_frames(videos / "v0.mp4", indices, size=(32, 24), backend="nvdec")
    want = read_frames(videos / "v0.mp4", indices, decoder="pyav")  # full size, then resized as NVDEC's path does
    resized = nvdec.resize_frames(torch.from_numpy(want.reshape(-1, 48, 64, 3)), (32, 24)).numpy()
    assert got.shape == (2, 3, 24, 32, 3) and np.array_equal(got.reshape(-1, 24, 32, 3), resized)
    assert fake.asked == [[1, 3, 5, 20]]
    read_frames(videos / "v1.mp4", np.arange(4), backend="nvdec")
    assert [o[0] for o in fake.opened] == ["open", "reconfigure"]  # one NVDEC session per process


def test_a_video_nvdec_fails_on_decodes_on_the_cpu(videos, fake_gpu):
    fake_gpu(fail=True)
    got = read_frames(videos / "v0.mp4", np.array([2, 7]), size=(64, 48), backend="nvdec")
    assert np.array_equal(got, read_frames(videos / "v0.mp4", np.array([2, 7]), size=(64, 48)))


def test_resize_keeps_frames_already_at_size_and_flat_colours():
    frames = torch.full((2, 48, 64, 3), 77, dtype=torch.uint8)
    assert nvdec.resize_frames(frames, (64, 48)) is frames and nvdec.resize_frames(frames, None) is frames
    small = nvdec.resize_frames(frames, (32, 20))
    assert small.shape == (2, 20, 32, 3) and small.dtype == torch.uint8 and (small == 77).all()
