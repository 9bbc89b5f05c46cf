"""Registry: plugins from a package's modules plus entry points, imported only on load()."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keyguard.errors import PluginError
from keyguard.registry import Registry


@dataclass(frozen=True)
class Plugins:
    """A throwaway plugin package on sys.path, with a unique name and entry-point group."""

    root: Path  # on sys.path
    package: str
    directory: Path
    group: str

    def registry(self) -> Registry[object]:
        return Registry(self.package, [str(self.directory)], self.group, "widget")

    def add_module(self, module: str, body: str = "class Widget:\n    name = '{module}'\n") -> None:
        text = body.replace("{module}", module)
        (self.directory / f"{module}.py").write_text(f"{text}\nPLUGIN = Widget\n", encoding="utf-8")

    def add_entry_point(self, name: str, target: str) -> None:
        """Install a fake third-party distribution that registers ``name`` in this group."""
        dist = f"thirdparty_{uuid.uuid4().hex[:8]}"
        info = self.root / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(f"[{self.group}]\n{name} = {target}\n", encoding="utf-8")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    package = f"kgplugins_{uuid.uuid4().hex[:10]}"
    directory = tmp_path / package
    directory.mkdir()
    (directory / "__init__.py").write_text('"""Test plugins."""\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    made = Plugins(tmp_path, package, directory, f"keyguard.test-{uuid.uuid4().hex[:10]}")
    made.add_module("alpha")
    made.add_module("aws_ssm")
    made.add_module("_private")
    made.add_module("_aws")
    yield made
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[name]


def _imported(plugins: Plugins) -> set[str]:
    return {m for m in sys.modules if m.startswith(f"{plugins.package}.")}


def test_names_come_from_public_module_names(plugins: Plugins) -> None:
    assert plugins.registry().names() == ["alpha", "aws-ssm"]


def test_names_import_no_plugin_module(plugins: Plugins) -> None:
    registry = plugins.registry()
    registry.names()
    registry.target("aws-ssm")
    registry.builtin("alpha")
    assert _imported(plugins) == set()


def test_load_imports_only_the_named_plugin(plugins: Plugins) -> None:
    cls = plugins.registry().load("aws-ssm")
    assert isinstance(cls, type)
    assert cls.__module__ == f"{plugins.package}.aws_ssm"
    assert getattr(cls, "name") == "aws_ssm"  # noqa: B009 - Registry[object] has no attribute type
    assert _imported(plugins) == {f"{plugins.package}.aws_ssm"}


def test_target_and_builtin(plugins: Plugins) -> None:
    registry = plugins.registry()
    assert registry.target("aws-ssm") == f"{plugins.package}.aws_ssm:PLUGIN"
    assert registry.builtin("aws-ssm")
    assert not registry.builtin("no-such-widget")


@pytest.mark.parametrize("name", ["private", "_private", "aws", "_aws", "aws_ssm", "ALPHA", ""])
def test_private_underscored_and_unnormalised_names_are_unknown(plugins: Plugins, name: str) -> None:
    with pytest.raises(PluginError) as info:
        plugins.registry().load(name)
    assert info.value.message == f"unknown widget {name!r}"
    assert info.value.hint == "choose from: alpha, aws-ssm"
    assert str(info.value) == f"unknown widget {name!r}; choose from: alpha, aws-ssm"


def test_entry_point_adds_a_third_party_plugin(plugins: Plugins, tmp_path: Path) -> None:
    external = f"kgext_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{external}.py").write_text(
        "class External:\n    name = 'gamma'\n\nPLUGIN = External\n", encoding="utf-8"
    )
    plugins.add_entry_point("gamma", f"{external}:PLUGIN")
    registry = plugins.registry()
    assert registry.names() == ["alpha", "aws-ssm", "gamma"]
    assert registry.target("gamma") == f"{external}:PLUGIN"
    assert not registry.builtin("gamma")
    assert external not in sys.modules
    cls = registry.load("gamma")
    assert cls.__name__ == "External"
    del sys.modules[external]


def test_entry_point_may_not_shadow_a_builtin(plugins: Plugins) -> None:
    plugins.add_entry_point("aws-ssm", "evil_module:PLUGIN")
    with pytest.raises(PluginError) as info:
        plugins.registry().names()
    assert str(info.value) == (
        f"evil_module:PLUGIN may not replace built-in {plugins.group} 'aws-ssm'"
    )


def test_entry_points_of_other_groups_are_ignored(plugins: Plugins) -> None:
    other = Plugins(plugins.root, plugins.package, plugins.directory, plugins.group + "-other")
    other.add_entry_point("aws-ssm", "evil_module:PLUGIN")
    other.add_entry_point("delta", "delta_module:PLUGIN")
    assert plugins.registry().names() == ["alpha", "aws-ssm"]


def test_subpackage_is_a_plugin_too(plugins: Plugins) -> None:
    sub = plugins.directory / "beta_pkg"
    sub.mkdir()
    (sub / "__init__.py").write_text(
        textwrap.dedent(
            """\
            class Widget:
                name = "beta"

            PLUGIN = Widget
            """
        ),
        encoding="utf-8",
    )
    registry = plugins.registry()
    assert registry.names() == ["alpha", "aws-ssm", "beta-pkg"]
    assert registry.load("beta-pkg").__name__ == "Widget"


def test_empty_package_has_no_plugins(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    registry: Registry[object] = Registry("nowhere", [str(empty)], f"kg.none-{uuid.uuid4().hex}", "thing")
    assert registry.names() == []
    with pytest.raises(PluginError) as info:
        registry.load("x")
    assert info.value.message == "unknown thing 'x'"


def test_missing_optional_dependency_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "kg_extra_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "needs_hvac.py").write_text("import hvac_missing_for_test as hvac\nPLUGIN = object\n")
    (pkg / "needs_google.py").write_text("import google.nonexistent_for_test\nPLUGIN = object\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("kg_extra_plugins", [str(pkg)], "keyguard.test-extra", "source")
    with pytest.raises(PluginError) as info:
        registry.load("needs-google")
    assert "keyguard[gcp]" in str(info.value)
    with pytest.raises(PluginError) as info:
        registry.load("needs-hvac")
    assert "hvac_missing_for_test" in str(info.value)
    assert "install the package" in str(info.value)
