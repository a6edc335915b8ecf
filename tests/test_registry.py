"""a4nn.registry: search spaces and NAS adapters found by name (entry points, plugins, calls)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from a4nn import registry
from a4nn.registry import (
    OptionsError,
    PluginError,
    available_adapters,
    available_spaces,
    create_adapter,
    create_space,
    load_plugins,
    register_adapter,
    register_space,
)
from adapters.base import Adapter
from adapters.nsganet.algorithm import NSGANet, make_nsganet
from adapters.nsganet.search_space import NSGANetMacroSpace, make_space


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test starts from the entry points alone and leaves no registration behind."""
    monkeypatch.setattr(
        registry, "_registered", {registry.SPACE_GROUP: {}, registry.ADAPTER_GROUP: {}}
    )


def test_builtins_come_from_entry_points():
    assert "nsganet-macro" in available_spaces()
    assert "nsganet" in available_adapters()
    space = create_space("nsganet-macro", {"phases": 2, "channels": 8})
    assert isinstance(space, NSGANetMacroSpace) and space.options.phases == 2
    adapter = create_adapter("nsganet", space, {"preset": "quickstart"}, seed=4)
    assert isinstance(adapter, NSGANet) and isinstance(adapter, Adapter)
    assert adapter.space is space and adapter.seed == 4 and adapter.budget == 14
    assert create_space("nsganet-macro").options == create_space("nsganet-macro", {}).options
    assert create_adapter("nsganet", space).budget == 100  # no options: the paper preset


def test_unknown_names_list_the_available_ones():
    with pytest.raises(PluginError) as err:
        create_space("darts")
    msg = str(err.value)
    assert "unknown search space 'darts'; available: nsganet-macro" in msg
    assert "plugins:" in msg and "a4nn.spaces" in msg  # how to make one available
    # (ppo, evolution and random are installed adapters too: entry points, sorted)
    with pytest.raises(PluginError, match="unknown NAS adapter 'enas'; available: .*nsganet"):
        create_adapter("enas", create_space("nsganet-macro"))
    register_adapter("test-mine", make_nsganet)
    with pytest.raises(
        PluginError, match="unknown NAS adapter 'enas'; available: .*nsganet, .*test-mine"
    ):
        create_adapter("enas", create_space("nsganet-macro"))


def test_register_a_duplicate_without_replace_raises():
    def mine(options):
        return make_space(options)

    def other(options):
        return make_space(options)

    register_space("test-space", mine)
    register_space("test-space", mine)  # the same factory again (a plugin imported twice): fine
    with pytest.raises(
        PluginError,
        match="search space 'test-space' is already registered; pass replace=True to override",
    ):
        register_space("test-space", other)
    register_space("test-space", other, replace=True)
    assert registry._registered[registry.SPACE_GROUP]["test-space"] is other
    register_adapter("test-nas", make_nsganet)
    with pytest.raises(PluginError, match="NAS adapter 'test-nas' is already registered"):
        register_adapter("test-nas", lambda space, options, seed: None)


def test_register_a_builtin_name_after_it_was_loaded_raises():
    create_space("nsganet-macro")  # loads the entry point's factory
    with pytest.raises(PluginError, match="search space 'nsganet-macro' is already registered"):
        register_space("nsganet-macro", lambda options: None)
    create_adapter("nsganet", create_space("nsganet-macro"))
    with pytest.raises(PluginError, match="NAS adapter 'nsganet' is already registered"):
        register_adapter("nsganet", lambda space, options, seed: None)


def test_register_a_builtin_name_before_it_was_loaded_raises():
    with pytest.raises(PluginError, match="search space 'nsganet-macro' is already registered"):
        register_space("nsganet-macro", lambda options: None)


def test_factories_must_be_callable():
    with pytest.raises(TypeError, match="search space 'x': the factory must be callable"):
        register_space("x", "adapters.nsganet.search_space:make_space")
    with pytest.raises(TypeError, match="NAS adapter 'y': the factory must be callable"):
        register_adapter("y", None)


def test_a_registered_adapter_and_space_are_created_with_options_and_seed():
    calls = []

    def make_mine(space, options, seed):
        calls.append((space, dict(options), seed))
        return make_nsganet(space, {"preset": "quickstart", **options}, seed)

    register_adapter("test-mine", make_mine)
    register_space("test-macro", make_space)
    assert "test-mine" in available_adapters() and "test-macro" in available_spaces()
    space = create_space("test-macro", {"nodes_per_phase": 3})
    mine = create_adapter("test-mine", space, {"pop_size": 3}, seed=1)
    assert calls == [(space, {"pop_size": 3}, 1)]
    assert isinstance(mine, Adapter) and len(mine.ask()) == 3
    with pytest.raises(OptionsError, match="search.space_options.phases"):
        create_space("test-macro", {"phases": -1})


def test_load_plugins_imports_modules_that_register(tmp_path, monkeypatch):
    (tmp_path / "a4nn_test_plugin.py").write_text(
        textwrap.dedent(
            """
            from a4nn.registry import register_space
            from adapters.nsganet.search_space import make_space

            register_space("test-plugin-space", make_space)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        load_plugins(["a4nn_test_plugin"])
    finally:
        sys.modules.pop("a4nn_test_plugin", None)
    assert "test-plugin-space" in available_spaces()
    assert isinstance(create_space("test-plugin-space"), NSGANetMacroSpace)
    with pytest.raises(
        PluginError,
        match=r"plugins: module 'a4nn_no_such_plugin' cannot be imported \(ModuleNotFoundError",
    ):
        load_plugins(["a4nn_no_such_plugin"])


def test_a_plugin_that_fails_on_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "a4nn_broken_plugin.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        PluginError,
        match=r"module 'a4nn_broken_plugin' cannot be imported \(RuntimeError: no GPU here\)",
    ):
        load_plugins(["a4nn_broken_plugin"])
    assert "a4nn_broken_plugin" not in sys.modules
