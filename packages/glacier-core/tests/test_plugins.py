"""Plugins: configs, schemes and executors come from plugins; import glacier stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import glacier.config
from glacier import Provider
from glacier.errors import PluginNotInstalledError, UnknownSchemeError
from glacier.plugins.registry import plugin_report
from glacier.plugins.registry import scheme_for
from glacier.plugins.storage import storage_for


@pytest.fixture
def without_gcp_plugin():  # noqa: ANN201
    """glacier-gcp's plugin taken out of the plugin manager (it may be installed in the test env), and put back."""
    from glacier.plugins.registry import clear_caches, get_plugin_manager

    pm = get_plugin_manager()
    plugin = pm.get_plugin("gcp")
    if plugin is not None:
        pm.unregister(name="gcp")
    clear_caches()
    yield
    if plugin is not None:
        pm.register(plugin, name="gcp")
    clear_caches()


def test_config_from_a_missing_plugin_names_the_package_to_install(without_gcp_plugin: None) -> None:
    with pytest.raises(ImportError) as info:
        from glacier.config import GcpConfig  # noqa: F401
    assert isinstance(info.value, PluginNotInstalledError)
    assert "pip install glacier-gcp" in str(info.value)


def test_unknown_config_name_is_an_import_error_listing_what_is_available() -> None:
    with pytest.raises(ImportError, match="Available: .*LocalConfig"):
        glacier.config.NoSuchConfig  # noqa: B018


def test_provider_for_a_config_no_plugin_serves_says_so() -> None:
    class Unknown:
        pass

    with pytest.raises(PluginNotInstalledError, match="No installed Glacier plugin provides a provider for Unknown"):
        Provider(config=Unknown())


@pytest.mark.parametrize(("uri", "package"), [("s3://b/k.parquet", "glacier-aws"), ("gs://b/k", "glacier-gcp"), ("az://c/k", "glacier-azure"), ("zzz://x/y", None)])
def test_unknown_scheme_names_the_uri_and_the_fix(uri: str, package: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from glacier.plugins import registry

    builtin = {name: registry.Scheme(name, "glacier.plugins.storage:FileStorage", package="glacier-core") for name in ("file", "memory")}
    monkeypatch.setattr(registry, "schemes", lambda: builtin)
    with pytest.raises(UnknownSchemeError) as info:
        scheme_for(uri)
    assert uri in str(info.value)
    assert (f"pip install {package}" if package else "check the URI") in str(info.value)


def test_builtins_register_file_and_memory_through_the_same_hooks() -> None:
    report = {info.name: info for info in plugin_report()}
    assert report["glacier.plugins.builtins"].schemes == ["file://", "memory://"]
    assert "local" in report["glacier.plugins.builtins"].executors
    assert report["local"].configs == ["LocalConfig", "ProcessConfig"]
    assert report["local"].distribution.startswith("glacier-local")


def test_storage_is_shared_per_scheme_and_config() -> None:
    assert storage_for("memory://a/b") is storage_for("memory://c/d")
    assert storage_for("/tmp/x.parquet").protocol == "file"


def test_import_glacier_imports_no_cloud_sdk_and_no_fsspec() -> None:
    code = (
        "import sys, glacier, glacier.config; "
        "heavy = [m for m in ('boto3','botocore','s3fs','gcsfs','adlfs','fsspec','google','azure','glacier_aws') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_two_plugins_claiming_one_scheme_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from glacier.plugins import registry
    from glacier.errors import PluginConflictError
    from glacier.plugins.registry import Scheme

    claims = [Scheme("s3", "b_pkg.storage:S3", package="b-pkg"), Scheme("s3", "a_pkg.storage:S3", package="a-pkg")]
    monkeypatch.setattr(registry, "_collect", lambda hook: claims)
    registry.schemes.cache_clear()
    try:
        with pytest.raises(PluginConflictError, match=r"(?s)a_pkg.storage:S3 \(a-pkg\) and b_pkg.storage:S3 \(b-pkg\).*override=True"):
            registry.schemes()
        claims[0] = Scheme("s3", "b_pkg.storage:S3", package="b-pkg", override=True)
        registry.schemes.cache_clear()
        assert registry.schemes()["s3"].storage == "b_pkg.storage:S3"
    finally:
        registry.schemes.cache_clear()
