"""Config validation: every malformed config names the file and the field at fault."""

from pathlib import Path

import pytest

from a4nn.config import ConfigError, embedded_config_path, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_minimal_config_gets_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "name: s1\n"))
    assert cfg.name == "s1"
    assert cfg.train.epochs == 25  # the paper's budget
    assert cfg.engine.preset == "paper"
    assert cfg.data.cache_dir == (tmp_path / "data").resolve()


def test_embedded_configs_validate():
    for name in ("quickstart", "paper"):
        cfg = load_config(embedded_config_path(name))
        assert cfg.search.adapter == "nsganet"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_named(tmp_path):
    p = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml is not valid YAML"):
        load_config(p)


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_bad_field_value_names_the_field(tmp_path):
    p = write(tmp_path, "train:\n  epochs: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "cfg.yaml" in msg and "train.epochs" in msg and "greater than or equal to 1" in msg


def test_unknown_field_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epoch: Extra inputs are not permitted"):
        load_config(write(tmp_path, "train:\n  epoch: 5\n"))


def test_bad_choice_names_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.optimizer: Input should be 'sgd', 'adam'"):
        load_config(write(tmp_path, "train:\n  optimizer: rmsprop\n"))


def test_folder_source_needs_path(tmp_path):
    with pytest.raises(ConfigError, match="data.path is required when data.source is 'folder'"):
        load_config(write(tmp_path, "data:\n  source: folder\n"))


def test_relative_data_path_resolves_against_config(tmp_path):
    cfg = load_config(write(tmp_path, "data:\n  source: npz\n  path: arrays.npz\n"))
    assert cfg.data.path == (tmp_path / "arrays.npz").resolve()
