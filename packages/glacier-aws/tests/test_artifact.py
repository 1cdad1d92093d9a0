"""The Lambda artifact: built for Lambda's platform, self-contained, deterministic, size-checked.

The first build ever downloads polars' wheels into pip's cache (~40 MB per architecture);
later builds reuse Glacier's lambda-deps cache and run no pip at all.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import glacier.infra.artifact as build_module
import glacier_aws.infra.artifact as artifact_module
from glacier_aws.infra.artifact import Artifact, ArtifactTooLargeError, build_artifact
from glacier_aws.config import LambdaConfig

# Built for this machine's interpreter and CPU, so the tests can import from the artifact.
LOCAL = LambdaConfig(
    runtime=f"python3.{sys.version_info.minor}",
    architecture={"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()],  # type: ignore[arg-type]
)
RUNTIME_SO = "_polars_runtime_32/_polars_runtime.abi3.so"
EM_X86_64, EM_AARCH64 = 62, 183


def _user_code(root: Path) -> list[tuple[str, Path]]:
    """A top-level module and a module inside a package, with files that must stay out."""
    (root / "etl.py").write_text("def double(x):\n    return 2 * x\n")
    sub = root / "mypkg" / "sub"
    sub.mkdir(parents=True)
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "py.typed").write_text("")
    (root / "mypkg" / "notes.csv").write_text("a,b\n")
    (root / "mypkg" / "__pycache__").mkdir()
    (root / "mypkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (sub / "__init__.py").write_text("")
    (sub / "steps.py").write_text("import polars as pl\n\ndef total(df):\n    return df.select(pl.col('a').sum())\n")
    return [("etl", root / "etl.py"), ("mypkg.sub.steps", sub / "steps.py")]


@pytest.fixture(scope="module")
def user_modules(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return _user_code(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def built(user_modules: list[tuple[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return build_artifact(user_modules, LOCAL, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def names(built: Artifact) -> set[str]:
    with zipfile.ZipFile(built.path) as zf:
        return set(zf.namelist())


def _elf_machine(zip_path: Path, member: str) -> int:
    with zipfile.ZipFile(zip_path) as zf, zf.open(member) as fh:
        header = fh.read(20)
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")  # e_machine, little-endian on both targets


def _elf_section_names(zip_path: Path, member: str) -> set[str]:
    """The section names of a little-endian ELF64 file inside the zip."""
    with zipfile.ZipFile(zip_path) as zf:
        data = zf.read(member)
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shentsize, shnum, shstrndx = (int.from_bytes(data[o : o + 2], "little") for o in (0x3A, 0x3C, 0x3E))
    headers = [data[shoff + i * shentsize : shoff + (i + 1) * shentsize] for i in range(shnum)]
    strtab = headers[shstrndx]
    names_at = int.from_bytes(strtab[0x18:0x20], "little")
    names = set()
    for header in headers:
        start = names_at + int.from_bytes(header[0:4], "little")
        names.add(data[start : data.index(b"\0", start)].decode())
    return names


@pytest.mark.skipif(not artifact_module._strip_tools(LOCAL.architecture), reason="no strip program on this machine")
def test_compiled_libraries_lose_their_symbol_table_but_keep_the_dynamic_one(built: Artifact) -> None:
    sections = _elf_section_names(built.path, RUNTIME_SO)
    assert ".symtab" not in sections
    assert ".dynsym" in sections  # what the loader and Python's import need
    assert built.packages["polars-runtime-32"] < 150 * 2**20, built.packages["polars-runtime-32"]


def test_artifact_is_named_for_its_runtime_and_architecture(built: Artifact) -> None:
    assert built.path.name == f"glacier-lambda-{LOCAL.runtime}-{LOCAL.architecture}.zip"
    assert (built.runtime, built.architecture) == (LOCAL.runtime, LOCAL.architecture)
    assert built.zipped_bytes == built.path.stat().st_size


@pytest.mark.parametrize(
    "member",
    [
        "etl.py",
        "mypkg/__init__.py",
        "mypkg/py.typed",
        "mypkg/sub/steps.py",
        "glacier/__init__.py",
        "glacier/run/protocol.py",
        "glacier_aws/handler.py",
        "glacier_aws/plugin.py",
        "glacier_aws-0.1.0.dist-info/entry_points.txt",
        "polars/__init__.py",
        RUNTIME_SO,
        "s3fs/__init__.py",
        "pluggy/__init__.py",
        "fsspec/__init__.py",
        "aiobotocore/__init__.py",
        "botocore/__init__.py",
    ],
)
def test_artifact_holds(names: set[str], member: str) -> None:
    assert member in names


@pytest.mark.parametrize(
    "top",
    ["boto3", "s3transfer", "pyarrow", "pandas", "numpy", "rich", "pygments", "bin", "glacier_aws/testing", "glacier_local", "hcl2", "lark"],
)
def test_artifact_leaves_out(names: set[str], top: str) -> None:
    assert not [n for n in names if n == top or n.startswith((f"{top}/", f"{top}-"))]


def test_artifact_leaves_out_bytecode_directories_and_user_data(names: set[str]) -> None:
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", "/"))]
    assert "mypkg/notes.csv" not in names


def test_compiled_code_is_for_the_target_cpu(built: Artifact) -> None:
    assert _elf_machine(built.path, RUNTIME_SO) == {"x86_64": EM_X86_64, "arm64": EM_AARCH64}[LOCAL.architecture]


def test_artifact_runs_without_site_packages(built: Artifact, tmp_path: Path) -> None:
    with zipfile.ZipFile(built.path) as zf:
        zf.extractall(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import polars as pl, s3fs, glacier, glacier.run.protocol, glacier_aws.plugin, glacier_aws.handler
        import botocore.session, etl, mypkg.sub.steps
        import aiohttp._http_parser, multidict._multidict  # compiled for this interpreter, not a fallback
        import importlib.metadata
        assert importlib.metadata.version("glacier-core") == glacier.__version__
        from glacier.plugins.registry import get_plugin_manager
        assert "aws" in dict(get_plugin_manager().list_name_plugin()), "entry point not found"
        assert botocore.session.get_session().get_service_model("s3").service_name == "s3"
        assert botocore.session.get_session().get_service_model("sts").service_name == "sts"
        import botocore.exceptions
        try:
            botocore.session.get_session().get_service_model("ec2")
        except botocore.exceptions.UnknownServiceError:
            pass
        else:
            raise AssertionError("botocore's ec2 model is still in the artifact")
        outside = [m.__file__ for m in list(sys.modules.values())
                   if "site-packages" in (getattr(m, "__file__", None) or "")]
        assert not outside, outside
        try:
            import boto3
        except ImportError:
            pass
        else:
            raise AssertionError("boto3 came from outside the artifact")
        print(mypkg.sub.steps.total(pl.DataFrame({{"a": [1, 2, etl.double(3)]}}).lazy()).collect().item())
    """)
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"


def _changed_entries(a: Path, b: Path) -> list[str]:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        crc_a, crc_b = ({i.filename: i.CRC for i in z.infolist()} for z in (za, zb))
    return sorted(n for n in crc_a.keys() | crc_b.keys() if crc_a.get(n) != crc_b.get(n))


def test_rebuild_is_byte_identical_and_runs_no_pip(
    built: Artifact, user_modules: list[tuple[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran although the dependency tree is cached")

    # A cache of this test's own for the zips it makes; the dependency trees `built` filled are
    # linked in (only read), so the shared cache loses nothing.
    shared = build_module.cache_root()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "artifact-deps").symlink_to(shared / "artifact-deps")
    monkeypatch.setenv("GLACIER_CACHE_DIR", str(tmp_path / "cache"))

    # `built` has filled the dependency cache, so from here on pip must not run.
    monkeypatch.setattr(build_module.subprocess, "run", no_pip)
    # Two builds back to back (not against the fixture's): Glacier's own sources may be
    # edited while the suite runs, and that is a change of input, not of determinism.
    first = build_artifact(user_modules, LOCAL, tmp_path / "a")
    for _, source in user_modules:  # new mtimes must not change the bytes
        os.utime(source, (1_900_000_000, 1_900_000_000))
    # Compress again rather than copy the zip the first build cached.
    key = f"uncached-{os.getpid()}"
    monkeypatch.setattr(build_module, "_content_key", lambda files: key)
    second = build_artifact(user_modules, LOCAL, tmp_path / "b")
    assert (tmp_path / "cache" / "artifact-zips" / f"{key}.zip").exists()  # written here, not in the shared cache
    assert not (shared / "artifact-zips" / f"{key}.zip").exists()
    assert second.path.read_bytes() == first.path.read_bytes(), _changed_entries(first.path, second.path)
    assert second.sha256_base64 == first.sha256_base64


def test_a_build_from_identical_inputs_reuses_the_cached_zip(
    built: Artifact, user_modules: list[tuple[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Back to back (not against the fixture's): Glacier's own sources may be edited
    # while the suite runs. The first fills the zip cache if nothing has yet.
    first = build_artifact(user_modules, LOCAL, tmp_path / "first")
    compressed: list[int] = []
    write_zip = build_module._write_zip

    def counting(fh, files):  # noqa: ANN001, ANN202
        compressed.append(len(files))
        return write_zip(fh, files)

    monkeypatch.setattr(build_module, "_write_zip", counting)
    again = build_artifact(user_modules, LOCAL, tmp_path / "again")
    # A deterministic rebuild would give the same bytes too: only this shows the copy.
    assert compressed == [], "identical inputs were compressed again, not copied from the cache"
    assert again.path.read_bytes() == first.path.read_bytes()
    assert again.sha256_base64 == first.sha256_base64
    # Content no earlier run can have cached (the zip cache outlives the session).
    (tmp_path / "changed.py").write_text(f"X = {uuid.uuid4().hex!r}\n")
    changed = build_artifact([*user_modules, ("changed", tmp_path / "changed.py")], LOCAL, tmp_path / "changed")
    assert len(compressed) == 1  # a change of input is compressed afresh
    assert changed.sha256_base64 != first.sha256_base64


def test_zip_entries_are_sorted_with_fixed_time_and_modes(built: Artifact) -> None:
    with zipfile.ZipFile(built.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} <= {0o100644, 0o100755}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_size_is_under_lambdas_limit_and_reported_per_package(built: Artifact) -> None:
    assert built.unzipped_bytes < 262_144_000
    assert sum(built.packages.values()) == built.unzipped_bytes
    assert list(built.packages)[0] == "polars-runtime-32"
    assert list(built.packages.values()) == sorted(built.packages.values(), reverse=True)
    assert {"polars", "botocore", "s3fs", "glacier-core", "glacier-aws", "etl", "mypkg"} <= set(built.packages)
    # Only the service models the handler can load: botocore's full data is 27 MB.
    assert built.packages["botocore"] < 8 * 2**20, built.packages["botocore"]


def test_too_large_is_refused_before_writing(user_modules: list[tuple[str, Path]], tmp_path: Path) -> None:
    with pytest.raises(ArtifactTooLargeError) as caught:
        build_artifact(user_modules, LOCAL, tmp_path, limit=10_000_000)
    message = str(caught.value)
    assert "over the limit of 10,000,000 bytes" in message
    assert message.index("polars-runtime-32") < message.index("botocore")
    assert caught.value.limit == 10_000_000 and caught.value.unzipped_bytes > 10_000_000
    assert not list(tmp_path.iterdir())


def test_arm64_artifact_carries_aarch64_polars(user_modules: list[tuple[str, Path]], tmp_path: Path) -> None:
    arm = build_artifact(user_modules, LambdaConfig(runtime="python3.12", architecture="arm64"), tmp_path)
    assert arm.path.name == "glacier-lambda-python3.12-arm64.zip"
    assert _elf_machine(arm.path, RUNTIME_SO) == EM_AARCH64
    with zipfile.ZipFile(arm.path) as zf:
        # aiohttp & co. are built per CPython version: this zip only loads on python3.12.
        assert "aiohttp/_http_parser.cpython-312-aarch64-linux-gnu.so" in zf.namelist()
    assert arm.unzipped_bytes < 262_144_000


# -- the storage of other clouds' schemes ---------------------------------------------------

MIXED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, GcpConfig, LambdaConfig

aws = Provider(config=AwsConfig(region="us-east-1"))
gcp = Provider(config=GcpConfig(project="p"))
azure = Provider(config=AzureConfig(storage_account="lake"))

@aws.serverless(config=LambdaConfig()).task
def crossing(df):
    return df

@aws.serverless(config=LambdaConfig()).task
def at_home(df):
    return df

pipeline = Pipeline.compose(
    Pipeline(name="x").source(gcp.bucket(bucket="glake", path="in.parquet")).transform(crossing).to(azure.bucket(bucket="alake", path="out.parquet")),
    Pipeline(name="h").source(aws.bucket(bucket="lake", path="in.parquet")).transform(at_home).to(aws.bucket(bucket="lake", path="out.parquet")),
    name="mixed",
)
'''


@pytest.fixture(scope="module")
def mixed_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The Lambda functions of a pipeline: ``crossing`` reads gs:// and writes az://, ``at_home`` touches only s3://."""
    from glacier.cli import load_pipeline
    from glacier.infra.generate import function_specs

    folder = tmp_path_factory.mktemp("mixed")
    (folder / "mixed_pipeline.py").write_text(MIXED_PIPELINE)
    pipeline = load_pipeline(f"{folder / 'mixed_pipeline.py'}:pipeline")
    return dict(function_specs(pipeline, pipeline.build())["aws"])


def _tree(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return {name.split("/")[0] for name in zf.namelist()} | {name for name in zf.namelist() if name.endswith(".py")}


@pytest.fixture(scope="module")
def crossing_artifact(mixed_specs: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    spec = mixed_specs["crossing"]
    return build_artifact([(spec.module, spec.source_file)], LOCAL, tmp_path_factory.mktemp("crossing"), functions=[spec])  # type: ignore[attr-defined]


def test_a_function_reading_gs_and_writing_az_carries_their_storage_and_not_gcsfs(crossing_artifact: Artifact) -> None:
    tree = _tree(crossing_artifact.path)
    for member in ("glacier_gcp", "glacier_gcp/light.py", "glacier_gcp/storage.py", "google", "requests", "glacier_azure", "adlfs", "azure"):
        assert member in tree, member
    assert {"glacier_gcp-0.1.0.dist-info", "glacier_azure-0.1.0.dist-info"} <= tree
    for absent in ("gcsfs", "grpc", "google/cloud", "glacier_gcp/testing", "glacier_azure/testing"):
        assert not any(name == absent or name.startswith(f"{absent}/") for name in tree), absent
    assert crossing_artifact.unzipped_bytes < 262_144_000


def test_a_function_touching_only_s3_carries_no_other_clouds_storage(mixed_specs: dict[str, object], built: Artifact, tmp_path: Path) -> None:
    """Its module imports the other providers' configs, so their plugins come as code; their storage libraries do not."""
    spec = mixed_specs["at_home"]
    art = build_artifact([(spec.module, spec.source_file)], LOCAL, tmp_path, functions=[spec])  # type: ignore[attr-defined]
    tree = _tree(art.path)
    assert not {"google", "adlfs", "azure", "gcsfs"} & tree
    plugins = {"glacier_gcp", "glacier_gcp-0.1.0.dist-info", "glacier_azure", "glacier_azure-0.1.0.dist-info"}
    assert plugins <= tree and not {"glacier_gcp/testing", "glacier_azure/testing"} & {n.rpartition("/")[0] for n in tree}
    assert set(art.packages) - {"mixed_pipeline"} == (set(built.packages) - {"etl", "mypkg"}) | {"glacier-gcp", "glacier-azure"}
    assert art.packages["glacier-gcp"] + art.packages["glacier-azure"] < 1_000_000  # code only


@pytest.fixture(scope="module")
def gcs_endpoint() -> Iterator[str]:
    """fake-gcs-server on 127.0.0.1 (glacier-gcp's harness), for the step that runs from the unzipped artifact."""
    from glacier_gcp.testing.gcs_server import FakeGcsServer

    with FakeGcsServer() as server:
        yield server.endpoint


@pytest.fixture
def gcs_bucket(gcs_endpoint: str) -> str:
    import json
    import urllib.request

    name = f"glacier-lambda-{uuid.uuid4().hex[:12]}"
    request = urllib.request.Request(f"{gcs_endpoint}/storage/v1/b?project=p", data=json.dumps({"name": name}).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    return name


def test_inside_the_function_gs_and_az_load_and_gs_writes_and_reads_through_the_light_client(
    crossing_artifact: Artifact, tmp_path: Path, gcs_endpoint: str, gcs_bucket: str
) -> None:
    with zipfile.ZipFile(crossing_artifact.path) as zf:
        zf.extractall(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from glacier.plugins.registry import get_plugin_manager, schemes
        from glacier.plugins.storage import storage_for
        from glacier.config import AzureConfig, GcpConfig
        assert {{"aws", "gcp", "azure"}} <= set(dict(get_plugin_manager().list_name_plugin())), "entry points not found"
        assert {{"s3", "gs", "az"}} <= set(schemes())
        from glacier_gcp.light import LightGcsFileSystem
        fs = storage_for("gs://glake/in.parquet", GcpConfig(project="p", endpoint_url="http://127.0.0.1:9")).fs
        assert isinstance(fs, LightGcsFileSystem), type(fs)
        import adlfs, azure.identity, google.auth.transport.requests, mixed_pipeline
        import polars as pl
        from polars.testing import assert_frame_equal
        uri = "gs://" + {gcs_bucket!r} + "/from-lambda/out.parquet"
        gs = storage_for(uri, GcpConfig(project="p", endpoint_url={gcs_endpoint!r}))
        frame = pl.DataFrame({{"id": [1, 2, 3], "name": ["a", "b", "c"]}})
        gs.write(frame, uri)  # one upload through the light client
        assert_frame_equal(gs.scan(uri).collect(), frame)  # polars' native gs:// reader
        assert gs.fingerprint(uri).startswith("generation=")
        try:
            import gcsfs
        except ImportError:
            pass
        else:
            raise AssertionError("gcsfs came from outside the artifact")
        outside = [m.__file__ for m in list(sys.modules.values()) if "site-packages" in (getattr(m, "__file__", None) or "")]
        assert not outside, outside
        print("ok")
    """)
    # No Google credentials anywhere and the metadata server unreachable: anonymous against the emulator.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True"}  # fmt: skip
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
