import json
import pickle

import numpy as np
import pytest
import torch

from sonorad.errors import ConfigError
from sonorad.segment.io import META_FILE, WEIGHTS_FILE, load_segmenter, save_segmenter


class _Boom:
    """An object whose unpickling would run code."""

    def __reduce__(self):
        return (exec, ("open('PWNED_MARKER', 'w').write('x')",))


def test_save_load_round_trip_gives_the_same_masks(tiny_segmenter, tmp_path):
    folder = save_segmenter(tiny_segmenter, tmp_path / "seg")
    loaded = load_segmenter(folder)
    assert loaded.meta["image_size"] == tiny_segmenter.image_size
    x = torch.rand(2, 1, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(loaded.net(x), tiny_segmenter.net(x), atol=1e-6)
    assert load_segmenter(folder / META_FILE).meta == loaded.meta


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_foreign_pickle_is_refused_and_not_run(tiny_segmenter, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = save_segmenter(tiny_segmenter, tmp_path / "seg")
    evil = pickle.dumps(_Boom())
    (folder / WEIGHTS_FILE).write_bytes(evil)
    meta = json.loads((folder / META_FILE).read_text())
    import hashlib

    meta["weights_sha256"] = hashlib.sha256(evil).hexdigest()  # even with a matching hash
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="not a plain state dict"):
        load_segmenter(folder)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_a_torch_saved_module_is_refused(tiny_segmenter, tmp_path):
    folder = save_segmenter(tiny_segmenter, tmp_path / "seg")
    torch.save(tiny_segmenter.net, folder / WEIGHTS_FILE)  # a whole pickled module, not a state dict
    with pytest.raises(ConfigError, match="sha256 differs"):
        load_segmenter(folder)
    import hashlib

    meta = json.loads((folder / META_FILE).read_text())
    meta["weights_sha256"] = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="not a plain state dict"):
        load_segmenter(folder)


@pytest.mark.parametrize("damage, words", [
    (lambda f: (f / META_FILE).unlink(), "segmenter.json is missing"),
    (lambda f: (f / META_FILE).write_text("{not json"), "not JSON"),
    (lambda f: (f / META_FILE).write_text('{"format": "other"}'), "'format'"),
    (lambda f: (f / WEIGHTS_FILE).unlink(), "segmenter.pt is missing"),
])
def test_damaged_folders_are_refused(tiny_segmenter, tmp_path, damage, words):
    folder = save_segmenter(tiny_segmenter, tmp_path / "seg")
    damage(folder)
    with pytest.raises(ConfigError, match=words):
        load_segmenter(folder)


def test_a_random_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(np.arange(10).tobytes())
    with pytest.raises(ConfigError, match="not a sonorad segmenter"):
        load_segmenter(path)
    with pytest.raises(ConfigError, match="not found"):
        load_segmenter(tmp_path / "nowhere")
