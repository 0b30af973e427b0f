"""The model artifact: bad files are refused with a message that names them and says why."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from guard.errors import ModelFileError
from guard.model.artifact import CHECKSUMS, CONFIG, FILES, WEIGHTS, load_model, verify_artifact
from tests.model.toy import Trained


@pytest.fixture
def copy(trained: Trained, tmp_path: Path) -> Path:
    """A private copy of the session's model to damage."""
    target = tmp_path / "model"
    shutil.copytree(trained.path, target)
    return target


def _rehash(root: Path) -> None:
    """Rewrite the checksums, as someone who tampered with care would."""
    lines = [f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}\n" for n in FILES]
    (root / CHECKSUMS).write_text("".join(lines))


def _edit_config(root: Path, edit: dict[str, object]) -> None:
    config = json.loads((root / CONFIG).read_text())
    config.update(edit)
    (root / CONFIG).write_text(json.dumps(config))
    _rehash(root)


def test_artifact_intact_model_loads_with_id_and_hash(trained: Trained, copy: Path) -> None:
    """An untouched artifact loads, and its id and hash come from its checksum file."""
    model = load_model(copy)
    expected = hashlib.sha256((copy / CHECKSUMS).read_bytes()).hexdigest()
    assert model.model_hash == expected
    assert model.model_id == f"toy-{expected[:10]}"
    assert model.training_start_ms == min(int(s.open_times[0]) for s in trained.series)
    assert model.training_end_ms == max(int(s.close_times[-1]) for s in trained.series)
    assert model.horizon_bars == 10 and model.timeframe == "1m"
    assert "trained on synthetic data — a demonstration, not a trading edge." in model.card


def test_artifact_corrupt_weights_are_refused(copy: Path) -> None:
    """Flipped bytes in the weights fail the checksum, naming the file."""
    data = bytearray((copy / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"weights\.pt: checksum mismatch.*corrupt, truncated"):
        load_model(copy)


def test_artifact_truncated_weights_are_refused(copy: Path) -> None:
    """A truncated weights file is refused even when its checksum was updated to match."""
    data = (copy / WEIGHTS).read_bytes()
    (copy / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(copy)
    _rehash(copy)
    with pytest.raises(ModelFileError, match=r"weights\.pt: cannot be read as a torch state_dict"):
        load_model(copy)


def test_artifact_garbage_weights_are_refused(copy: Path) -> None:
    """A weights file that is not a torch archive at all is refused clearly."""
    (copy / WEIGHTS).write_bytes(b"not a model" * 100)
    _rehash(copy)
    with pytest.raises(ModelFileError, match="cannot be read as a torch state_dict"):
        load_model(copy)


def test_artifact_wrong_checksum_is_refused(copy: Path) -> None:
    """A checksum file that does not match the config is refused, naming config.json."""
    text = (copy / CHECKSUMS).read_text().splitlines()
    text = [("0" * 64 + "  config.json") if line.endswith("config.json") else line for line in text]
    (copy / CHECKSUMS).write_text("\n".join(text) + "\n")
    with pytest.raises(ModelFileError, match=r"config\.json: checksum mismatch"):
        verify_artifact(copy)


def test_artifact_malformed_checksum_file_is_refused(copy: Path) -> None:
    """A checksum file in the wrong format is refused with the line number."""
    (copy / CHECKSUMS).write_text("hello world\n")
    with pytest.raises(ModelFileError, match="line 1 is not"):
        verify_artifact(copy)


def test_artifact_schema_mismatch_is_refused(copy: Path) -> None:
    """A model built for other features is refused and told to retrain."""
    _edit_config(copy, {"feature_schema_hash": "ab" * 32})
    with pytest.raises(ModelFileError, match=r"built for feature schema abababababab.*retrain"):
        load_model(copy)


def test_artifact_shape_mismatch_is_refused(copy: Path) -> None:
    """Weights that do not fit the architecture in config.json are refused, naming the tensor."""
    config = json.loads((copy / CONFIG).read_text())
    _edit_config(copy, {"init_args": {**config["init_args"], "channels": config["init_args"]["channels"] + 4}})
    with pytest.raises(ModelFileError, match=r"do not fit the architecture.*size mismatch for inp\.weight"):
        load_model(copy)


def test_artifact_missing_file_is_refused(copy: Path) -> None:
    """A model directory without its weights is refused, naming the missing file."""
    (copy / WEIGHTS).unlink()
    with pytest.raises(ModelFileError, match=r"weights\.pt: missing"):
        load_model(copy)


def test_artifact_invalid_json_is_refused(copy: Path) -> None:
    """A config that is not JSON is refused as such."""
    (copy / CONFIG).write_text("{not json")
    _rehash(copy)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(copy)


def test_artifact_no_such_directory_is_refused(tmp_path: Path) -> None:
    """A path that is not a model directory is refused."""
    with pytest.raises(ModelFileError, match="no such model directory"):
        load_model(tmp_path / "nope")


def test_artifact_extra_tensor_in_weights_is_refused(copy: Path) -> None:
    """A state_dict with an unexpected tensor is refused (strict loading)."""
    import torch

    state = torch.load(copy / WEIGHTS, weights_only=True)
    state["surprise"] = torch.zeros(3)
    torch.save(state, copy / WEIGHTS)
    _rehash(copy)
    with pytest.raises(ModelFileError, match=r"Unexpected key.*surprise"):
        load_model(copy)


@pytest.mark.parametrize(
    ("buffer", "value"),
    [
        ("novelty_hour_scale", 0.0),
        ("novelty_spread", -1.0),
        ("novelty_bar_quantiles", float("nan")),
    ],
)
def test_artifact_impossible_novelty_reference_is_refused(copy: Path, buffer: str, value: float) -> None:
    """A novelty reference training could not have written (a zero scale, a NaN quantile) is refused on load."""
    import torch

    state = torch.load(copy / WEIGHTS, weights_only=True)
    state[buffer][3 % len(state[buffer])] = value
    torch.save(state, copy / WEIGHTS)
    _rehash(copy)
    with pytest.raises(ModelFileError, match="novelty reference is not one training writes"):
        load_model(copy)


def test_artifact_old_novelty_method_is_refused(copy: Path) -> None:
    """A model whose novelty was fitted by the previous method is refused and told to retrain."""
    config = json.loads((copy / CONFIG).read_text())
    _edit_config(copy, {"novelty": {**config["novelty"], "method": "typicality/2"}})
    with pytest.raises(ModelFileError, match=r"novelty was fitted as typicality/2.*typicality/3.*retrain"):
        load_model(copy)
