"""Checkpoints: atomic, checksummed, and loaded without unpickling code."""

import pickle

import pytest
import torch

from lineage.atomic import atomic_write_text, read_json
from lineage.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, sha256_file


def test_round_trip_and_checksum(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "ck" / "epoch_000.pt"
    sha = save_checkpoint(path, {"model": model.state_dict(), "epoch": 0})
    assert sha == sha256_file(path)
    state = load_checkpoint(path, sha)
    assert state["epoch"] == 0
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    assert not list(path.parent.glob("*.tmp"))  # no temporary files left behind


def test_truncated_checkpoint_is_detected(tmp_path):
    path = tmp_path / "epoch_001.pt"
    sha = save_checkpoint(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"epoch_001.pt is corrupt: SHA-256"):
        load_checkpoint(path, sha)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*gone.pt"):
        load_checkpoint(tmp_path / "gone.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoint_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_corrupt_json_is_named(tmp_path):
    p = tmp_path / "run.json"
    atomic_write_text(p, "{not json")
    with pytest.raises(ValueError, match="corrupt JSON file .*run.json"):
        read_json(p)
