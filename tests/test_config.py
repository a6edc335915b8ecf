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


def test_search_options_are_validated_by_the_adapter_and_the_space(tmp_path):
    p = write(tmp_path, "search:\n  options: {pop_size: 1}\n  space_options: {channels: [8]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "search.space_options.channels: [8] must be 3 positive ints" in str(err.value)
    p = write(tmp_path, "search:\n  options: {pop_size: 1, colour: red}\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert "search.options.pop_size: Input should be greater than or equal to 2" in msg
    assert "search.options.colour: Extra inputs are not permitted" in msg


def test_unknown_adapter_or_space_lists_the_available_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown NAS adapter 'ppo2'; available: .*nsganet"):
        load_config(write(tmp_path, "search: {adapter: ppo2}\n"))
    with pytest.raises(
        ConfigError, match=r"unknown search space 'nt9'; available: .*nsganet-macro"
    ):
        load_config(write(tmp_path, "search: {space: nt9}\n"))


def test_old_search_fields_say_where_they_moved(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "search: {preset: paper, channels: [8, 16, 32]}\n"))
    msg = str(err.value)
    assert "search.preset -> search.options.preset" in msg
    assert "search.channels -> search.space_options.channels" in msg
    with pytest.raises(ConfigError, match="orchestration.mode moved"):
        load_config(write(tmp_path, "orchestration: {mode: async}\n"))


def test_engine_preset_off_as_yaml_reads_it(tmp_path):
    assert load_config(write(tmp_path, "engine: {preset: off}\n")).engine.preset == "off"


def test_a_plugin_that_cannot_be_imported_is_named(tmp_path):
    with pytest.raises(
        ConfigError, match=r"plugins: module 'no_such_plugin_mod' cannot be imported"
    ):
        load_config(write(tmp_path, "plugins: [no_such_plugin_mod]\n"))
