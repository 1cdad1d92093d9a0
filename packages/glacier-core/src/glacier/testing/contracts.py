"""Reusable contract suites: a provider proves it works by running them against its fixtures.

Laid out as fsspec's ``fsspec.tests.abstract``: one *fixtures class* per provider
(a subclass of :class:`ProviderFixtures`) says how to reach the provider's storage,
executors, handler and generated infrastructure, and the *suites* (``BucketContract``,
``ExecutorContract``...) hold only tests and declare no fixtures of their own. A
provider's ``tests/test_contracts.py`` is then mostly one line per suite::

    # tests/fixtures.py of a provider package
    class ScratchFixtures(ProviderFixtures):
        plugin = "scratch"

        @pytest.fixture
        def make_bucket(self, tmp_path):
            provider = Provider(config=ScratchConfig(root=str(tmp_path)))
            return lambda path: provider.bucket(bucket="contract", path=path)

    # tests/test_contracts.py
    class TestScratchBuckets(BucketContract, ScratchFixtures):
        pass

Suites and what of the fixtures class they use:

- :class:`PluginContract`: ``plugin`` (the entry-point name), ``heavy_modules`` and
  the ``configs`` fixture.
- :class:`BucketContract`, :class:`AtomicCommitContract`: ``make_bucket(path) -> Bucket``,
  each call a place in a fresh, empty location.
- :class:`ExecutorContract`: ``make_bucket``, ``executor``, ``deployment`` (the
  manifest for cloud executors, ``None`` for executors that run here), ``step_timeout``
  and ``supports_timeout``.
- :class:`HandlerContract`: ``make_bucket``, ``handler`` and ``handler_pins_task``.
- :class:`InfrastructureContract`: ``generated_dir``, and ``check_roles`` for the
  roles the generated infrastructure grants.
- :class:`RunSemanticsContract`: ``make_bucket`` (buckets made by a ``Provider``, whose
  ``local()`` executor runs the steps) and ``fingerprint_marker``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier.bucket import Bucket
from glacier.dag import TaskInstance
from glacier.errors import SourceNotFoundError, StepError, StepTimeoutError, TaskFailedError, TaskOutputError
from glacier.plugins.hookspecs import hookimpl
from glacier.plugins.storage import TEMP_MARKER
from glacier.testing import tasks

if TYPE_CHECKING:
    from pathlib import Path

    from glacier.plugins.deployment import Deployment
    from glacier.plugins.executor import Executor

__all__ = [
    "ProviderFixtures",
    "PluginContract",
    "BucketContract",
    "AtomicCommitContract",
    "ExecutorContract",
    "HandlerContract",
    "InfrastructureContract",
    "RunSemanticsContract",
    "HEAVY_MODULES",
    "sample_frame",
]

MakeBucket = Callable[[str], Bucket]

#: Call a provider's handler the way its cloud does: ``(payload, pinned task) -> result``.
CallHandler = Callable[[Any, str], Any]

#: Modules a plugin module must not import: cloud SDKs, fsspec and its backends, and the
#: data libraries (the plugin module loads on every ``glacier plugins`` and ``Provider()``).
HEAVY_MODULES: tuple[str, ...] = (
    "boto3", "botocore", "aiobotocore", "s3fs", "fsspec", "gcsfs", "adlfs", "google.cloud", "azure",
    "polars", "pyarrow", "pandas", "numpy",
)


class ProviderFixtures:
    """Everything the suites ask of a provider: subclass once per provider, override what applies.

    Fixtures left as they are here fail (or, for optional checks, skip) with a message
    that says which fixture to supply. Capability flags are class attributes.
    """

    #: The provider's entry-point name in the ``glacier`` group (``"aws"``).
    plugin: ClassVar[str] = ""
    #: Top-level modules (or dotted prefixes) the plugin module must not import.
    heavy_modules: ClassVar[tuple[str, ...]] = HEAVY_MODULES
    #: Whether :class:`ExecutorContract` checks that a step past its timeout is stopped.
    supports_timeout: ClassVar[bool] = True
    #: The timeout (seconds) the timeout test gives its task; a cloud fixture deploys
    #: ``sleep_past_timeout`` with it.
    step_timeout: ClassVar[float] = 2
    #: Whether the handler runs only its pinned task (a deployed function), or whatever
    #: task the payload names (a local worker).
    handler_pins_task: ClassVar[bool] = True
    #: What every cache fingerprint of the provider's objects contains (``"ETag="`` for
    #: S3), so :class:`RunSemanticsContract` sees the cache keyed on the store's own
    #: identity of an object; ``None`` skips that check.
    fingerprint_marker: ClassVar[str | None] = None

    @pytest.fixture
    def make_bucket(self) -> MakeBucket:
        """``path -> Bucket`` in a fresh, empty location of the provider's storage."""
        raise NotImplementedError(f"{type(self).__name__} must supply the make_bucket fixture")

    @pytest.fixture
    def executor(self) -> Executor:
        """The executor under test (the provider's ``serverless()`` or ``local()``)."""
        raise NotImplementedError(f"{type(self).__name__} must supply the executor fixture")

    @pytest.fixture
    def deployment(self) -> Deployment | None:
        """For a cloud executor: the manifest naming the function of each task of :mod:`glacier.testing.tasks`."""
        return None

    @pytest.fixture
    def handler(self) -> CallHandler:
        """The provider's handler, called with its cloud's signature: ``(payload, task) -> result``."""
        raise NotImplementedError(f"{type(self).__name__} must supply the handler fixture")

    @pytest.fixture
    def configs(self) -> list[Any]:
        """Config objects to round-trip through JSON: by default each of the plugin's config classes made with its defaults."""
        return [cls() for cls in _plugin_module(self.plugin).glacier_configs()]

    @pytest.fixture
    def generated_dir(self) -> Path:
        """A directory written by ``pipeline.run(mode="generate", out=...)``."""
        raise NotImplementedError(f"{type(self).__name__} must supply the generated_dir fixture")

    @pytest.fixture
    def check_roles(self) -> Callable[[Path], list[str]] | None:
        """``generated_dir -> problems``: every generated role held against the access model.

        ``None`` (the default) skips the check; a provider that generates roles
        supplies it (from ``glacier.infra.access``).
        """
        return None


def _plugin_module(name: str) -> Any:
    from importlib.metadata import entry_points

    from glacier.plugins.registry import ENTRY_POINT_GROUP

    if not name:
        raise NotImplementedError("the fixtures class must set plugin = <its entry-point name>")
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    assert len(found) == 1, f"expected one entry point {name!r} in group {ENTRY_POINT_GROUP!r}, found {[ep.value for ep in found]}"
    return found[0].load()


def sample_frame(rows: int = 1000, offset: int = 0) -> pl.DataFrame:
    """A small frame with the benchmark's columns: id, category, value (some null), ts."""
    return pl.select(id=pl.int_range(offset, offset + rows, dtype=pl.Int64)).with_columns(
        category=pl.format("c{}", pl.col("id") % 5),
        value=pl.when(pl.col("id") % 17 == 0).then(None).otherwise(pl.col("id").cast(pl.Float64)),
        ts=pl.datetime(2026, 1, 1) + pl.duration(minutes=pl.col("id")),
    )


def _visible(bucket: Bucket) -> list[str]:
    storage = bucket.storage
    parent = storage.path(bucket.uri).rpartition("/")[0]
    storage.fs.invalidate_cache(parent)
    try:
        return sorted(str(p).rpartition("/")[2] for p in storage.fs.ls(parent, detail=False))
    except FileNotFoundError:
        return []


class PluginContract:
    """The plugin is found by its entry point, loads light, and its configs cross processes."""

    plugin: ClassVar[str]  # from the fixtures class
    heavy_modules: ClassVar[tuple[str, ...]]

    def test_the_entry_point_resolves_to_a_registered_plugin_module(self) -> None:
        """``glacier: NAME`` loads a module that Glacier's plugin manager has registered."""
        from glacier.plugins.registry import get_plugin_manager

        module = _plugin_module(self.plugin)
        assert module in get_plugin_manager().get_plugins()
        assert callable(getattr(module, "glacier_configs", None)), "a provider's plugin module contributes its configs"

    def test_the_plugin_module_imports_no_sdk(self) -> None:
        """Loading the plugin module (as ``glacier plugins`` and ``Provider()`` do) imports no SDK or data library."""
        import json
        import subprocess
        import sys

        module = _plugin_module(self.plugin).__name__
        script = (
            "import importlib, json, sys\n"
            f"importlib.import_module({module!r})\n"
            f"heavy = {list(self.heavy_modules)!r}\n"
            "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        loaded = json.loads(proc.stdout.strip().splitlines()[-1])
        assert not loaded, f"importing {module} imports {', '.join(loaded)}: name them by dotted path and import them on first use"

    def test_every_config_round_trips_through_json(self, configs: list[Any]) -> None:
        """A config travels to workers and functions as JSON and comes back equal."""
        import json

        from glacier.plugins.serialization import config_from_dict, config_to_dict

        assert configs, "the configs fixture gave no config"
        for config in configs:
            data = json.loads(json.dumps(config_to_dict(config)))
            assert config_from_dict(data) == config, f"{config!r} came back as {config_from_dict(data)!r}"

    def test_every_config_class_of_the_plugin_is_round_tripped(self, configs: list[Any]) -> None:
        """The ``configs`` fixture covers every class the plugin's ``glacier_configs`` contributes."""
        contributed = set(_plugin_module(self.plugin).glacier_configs())
        missing = sorted(cls.__name__ for cls in contributed - {type(c) for c in configs})
        assert not missing, f"the configs fixture has no {', '.join(missing)}"


class BucketContract:
    """Reading, writing and inspecting buckets of one scheme."""

    def test_a_written_frame_reads_back_equal(self, make_bucket: MakeBucket) -> None:
        """Write with the storage, scan with polars: same data."""
        bucket, frame = make_bucket("round/trip.parquet"), sample_frame()
        bucket.storage.write(frame.lazy(), bucket.uri)
        assert bucket.exists()
        assert_frame_equal(bucket.scan().collect(), frame)

    def test_size_and_rows_come_from_metadata(self, make_bucket: MakeBucket) -> None:
        """``size`` is the object's size; ``count_rows`` reads the footer."""
        bucket = make_bucket("meta/one.parquet")
        bucket.storage.write(sample_frame(321), bucket.uri)
        assert bucket.storage.size(bucket.uri) > 0
        assert bucket.storage.count_rows(bucket.uri) == 321

    def test_a_missing_object_does_not_exist(self, make_bucket: MakeBucket) -> None:
        """``exists`` is false and ``fingerprint`` raises ``FileNotFoundError`` for nothing.

        Precisely ``FileNotFoundError``: any other ``OSError`` (a refused connection,
        a permission error) is the store failing, not the object being missing.
        """
        bucket = make_bucket("missing/none.parquet")
        assert not bucket.exists()
        with pytest.raises(FileNotFoundError) as raised:
            bucket.storage.fingerprint(bucket.uri)

    def test_fingerprint_changes_with_content_and_not_by_itself(self, make_bucket: MakeBucket) -> None:
        """The identity used by ``cache=True`` is stable, and changes on rewrite."""
        bucket = make_bucket("fp/data.parquet")
        bucket.storage.write(sample_frame(10), bucket.uri)
        first = bucket.storage.fingerprint(bucket.uri)
        assert bucket.storage.fingerprint(bucket.uri) == first
        bucket.storage.write(sample_frame(11), bucket.uri)
        assert bucket.storage.fingerprint(bucket.uri) != first

    def test_a_glob_reads_every_part(self, make_bucket: MakeBucket) -> None:
        """``dir/*.parquet`` scans every matching object."""
        for i in range(3):
            part = make_bucket(f"parts/p{i}.parquet")
            part.storage.write(sample_frame(5, offset=5 * i), part.uri)
        glob = make_bucket("parts/*.parquet")
        assert glob.exists()
        assert glob.scan().collect().sort("id")["id"].to_list() == list(range(15))

    def test_remove_deletes_the_object(self, make_bucket: MakeBucket) -> None:
        """``remove`` deletes, and is quiet for a missing object."""
        bucket = make_bucket("rm/x.parquet")
        bucket.storage.write(sample_frame(3), bucket.uri)
        bucket.storage.remove(bucket.uri)
        bucket.storage.fs.invalidate_cache()
        assert not bucket.exists()
        bucket.storage.remove(bucket.uri)


class AtomicCommitContract:
    """A target is never seen half written, and a failed write changes nothing."""

    def test_a_write_failing_midway_leaves_the_previous_content(self, make_bucket: MakeBucket) -> None:
        """A query that fails while streaming leaves the old object and no debris."""
        bucket = make_bucket("atomic/target.parquet")
        old = sample_frame(7)
        bucket.storage.write(old, bucket.uri)
        before = _visible(bucket)
        failing = sample_frame(50_000).lazy().with_columns(pl.col("value").map_batches(_explode, return_dtype=pl.Float64))
        with pytest.raises(Exception, match="contract write failure"):
            bucket.storage.write(failing, bucket.uri)
        assert_frame_equal(bucket.scan().collect(), old)
        assert _visible(bucket) == before
        assert not [name for name in before if TEMP_MARKER in name]

    def test_an_overwrite_replaces_the_whole_object(self, make_bucket: MakeBucket) -> None:
        """After a successful write, the target is exactly the new data."""
        bucket = make_bucket("atomic/replace.parquet")
        bucket.storage.write(sample_frame(100), bucket.uri)
        new = sample_frame(3, offset=1000)
        bucket.storage.write(new, bucket.uri)
        assert_frame_equal(bucket.scan().collect(), new)


def _explode(series: pl.Series) -> pl.Series:
    raise RuntimeError("contract write failure")


class ExecutorContract:
    """An executor runs a step through the protocol and reports success, errors and timeouts alike."""

    supports_timeout: ClassVar[bool]  # from the fixtures class
    step_timeout: ClassVar[float]

    def _step(
        self, executor: Executor, func: Callable[..., Any], make_bucket: MakeBucket, *, source: Bucket | None = None, **options: Any
    ) -> TaskInstance:
        task = executor.task(name=func.__name__, **options)(func)
        if source is None:
            source = make_bucket("exec/in.parquet")
            source.storage.write(sample_frame(200), source.uri)
        return TaskInstance(task=task, source=source, target=make_bucket(f"exec/{func.__name__}.parquet"), name=func.__name__)

    def test_a_step_runs_and_reports_rows_bytes_and_seconds(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """Rows, bytes and seconds come back; the target holds the task's result."""
        step = self._step(executor, tasks.double_value, make_bucket)
        outcome = executor.run(step, "contract-run", 1, deployment=deployment)
        assert outcome.rows == 200
        assert outcome.bytes == step.target.storage.size(step.target.uri)
        assert outcome.seconds > 0
        written = step.target.scan().collect()
        assert written["doubled"].to_list() == (sample_frame(200)["value"] * 2).to_list()

    def test_a_task_error_comes_back_naming_the_step(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """The task's exception travels back as a TaskFailedError."""
        step = self._step(executor, tasks.fail_loudly, make_bucket)
        with pytest.raises(TaskFailedError, match="contract failure") as info:
            executor.run(step, "contract-run", 1, deployment=deployment)
        assert info.value.step == "fail_loudly"
        assert not step.target.exists()

    def test_a_wrong_return_type_is_reported(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """Returning something other than a frame is a TaskOutputError."""
        step = self._step(executor, tasks.return_wrong_type, make_bucket)
        with pytest.raises(TaskOutputError):
            executor.run(step, "contract-run", 1, deployment=deployment)

    def test_a_missing_source_names_its_uri(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """A source that does not exist fails with its URI."""
        missing = make_bucket("exec/absent.parquet")
        step = self._step(executor, tasks.double_value, make_bucket, source=missing)
        with pytest.raises(SourceNotFoundError) as info:
            executor.run(step, "contract-run", 1, deployment=deployment)
        assert info.value.uri == missing.uri
        assert isinstance(info.value, StepError)

    def test_a_step_of_several_sources_gets_each_by_its_parameter_name(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """``.sources({"left": a, "right": b})`` reaches the task as ``left=`` and ``right=``."""
        left, right = make_bucket("multi/left.parquet"), make_bucket("multi/right.parquet")
        left.storage.write(sample_frame(200), left.uri)
        right.storage.write(sample_frame(100, offset=150).select("id", "category"), right.uri)
        task = executor.task(name="join_by_id")(tasks.join_by_id)
        step = TaskInstance(task=task, source=None, sources={"left": left, "right": right}, target=make_bucket("multi/joined.parquet"), name="join_by_id")
        outcome = executor.run(step, "contract-run", 1, deployment=deployment)
        assert outcome.rows == 50
        joined = step.target.scan().collect().sort("id")
        assert joined["id"].to_list() == list(range(150, 200))
        assert joined.columns == ["id", "category", "value", "ts", "category_right"]

    def test_a_step_past_its_timeout_is_stopped_and_reported(self, executor: Executor, make_bucket: MakeBucket, deployment: Deployment | None) -> None:
        """A task that outlives its timeout comes back as a StepTimeoutError, and writes nothing."""
        if not self.supports_timeout:
            pytest.skip(f"{type(self).__name__} says its executor has no timeout (supports_timeout = False)")
        step = self._step(executor, tasks.sleep_past_timeout, make_bucket, timeout=self.step_timeout)
        with pytest.raises(StepTimeoutError) as info:
            executor.run(step, "contract-run", 1, deployment=deployment)
        assert info.value.step == "sleep_past_timeout"
        assert not step.target.exists()



class HandlerContract:
    """The provider's handler returns what :func:`glacier.run.protocol.handle` returns, and never raises."""

    handler_pins_task: ClassVar[bool]  # from the fixtures class

    def _payload(self, make_bucket: MakeBucket, func: Callable[..., Any], *, source: Bucket | None = None) -> dict[str, Any]:
        from glacier.plugins.payload import PROTOCOL_VERSION
        from glacier.task import TaskRef

        if source is None:
            source = make_bucket("handler/in.parquet")
            if not source.exists():
                source.storage.write(sample_frame(120), source.uri)
        target = make_bucket(f"handler/{func.__name__}.parquet")
        return {
            "protocol": PROTOCOL_VERSION,
            "run_id": "contract-run",
            "step": func.__name__,
            "attempt": 1,
            "task": TaskRef(tasks.__name__, func.__name__).to_dict(),
            "sources": {"df": source.to_dict()},
            "target": target.to_dict(),
        }

    def _expected(self, payload: Any, task: str) -> dict[str, Any]:
        from glacier.run.protocol import handle

        return handle(payload, task=task if self.handler_pins_task else None)

    def _check(self, handler: CallHandler, payload: Any, task: str = "glacier.testing.tasks:double_value") -> dict[str, Any]:
        import copy

        got = handler(copy.deepcopy(payload), task)
        expected = self._expected(copy.deepcopy(payload), task)
        assert isinstance(got, dict) and isinstance(got.get("ok"), bool), got
        assert _comparable(got) == _comparable(expected), (got, expected)
        return got

    def test_a_good_payload_returns_the_steps_outcome(self, handler: CallHandler, make_bucket: MakeBucket) -> None:
        """Rows and bytes, as ``handle`` reports them."""
        got = self._check(handler, self._payload(make_bucket, tasks.double_value))
        assert got["ok"] and got["rows"] == 120

    def test_a_multi_source_payload_returns_the_steps_outcome(self, handler: CallHandler, make_bucket: MakeBucket) -> None:
        """Each source reaches the task by its parameter name."""
        left, right = make_bucket("handler/left.parquet"), make_bucket("handler/right.parquet")
        left.storage.write(sample_frame(120), left.uri)
        right.storage.write(sample_frame(40, offset=100).select("id"), right.uri)
        payload = self._payload(make_bucket, tasks.join_by_id, source=left)
        payload["sources"] = {"left": left.to_dict(), "right": right.to_dict()}
        got = self._check(handler, payload, "glacier.testing.tasks:join_by_id")
        assert got["ok"] and got["rows"] == 20

    @pytest.mark.parametrize(
        ("func", "error"),
        [(tasks.fail_loudly, "TaskFailedError"), (tasks.return_wrong_type, "TaskOutputError")],
        ids=["task-raises", "wrong-return-type"],
    )
    def test_a_failing_task_comes_back_as_data(self, handler: CallHandler, make_bucket: MakeBucket, func: Callable[..., Any], error: str) -> None:
        """The task's error is returned, typed and naming the step, not raised."""
        got = self._check(handler, self._payload(make_bucket, func), f"glacier.testing.tasks:{func.__name__}")
        assert not got["ok"] and got["error"]["type"] == error and got["error"]["step"] == func.__name__

    def test_a_missing_source_comes_back_naming_its_uri(self, handler: CallHandler, make_bucket: MakeBucket) -> None:
        """``SourceNotFoundError`` with the source's URI."""
        missing = make_bucket("handler/absent.parquet")
        got = self._check(handler, self._payload(make_bucket, tasks.double_value, source=missing))
        assert got["error"]["type"] == "SourceNotFoundError" and got["error"]["uri"] == missing.uri

    @pytest.mark.parametrize(
        "spoil",
        ["not-an-object", "empty", "old-protocol", "no-sources", "unknown-config-type", "another-task"],
    )
    def test_a_bad_payload_is_refused_as_data(self, handler: CallHandler, make_bucket: MakeBucket, spoil: str) -> None:
        """Whatever arrives, the handler answers ``{"ok": False, "error": ...}``."""
        payload: Any = self._payload(make_bucket, tasks.double_value)
        if spoil == "not-an-object":
            payload = ["a", "list"]
        elif spoil == "empty":
            payload = {}
        elif spoil == "old-protocol":
            payload["protocol"] = 0
        elif spoil == "no-sources":
            payload["sources"] = "raw.parquet"
        elif spoil == "unknown-config-type":
            payload["target"]["config"] = {"type": "os:system", "fields": {"command": "true"}}
        elif spoil == "another-task":
            payload["task"]["qualname"] = "fail_loudly"
        got = self._check(handler, payload)
        if spoil != "another-task" or self.handler_pins_task:
            assert got["ok"] is False and got["error"]["message"]


def _comparable(result: Any) -> Any:
    """A result without what differs between two runs of one payload.

    Time, the traceback's text, and the written size and identity: a join's row order,
    and so its parquet bytes, may differ from run to run.
    """
    if not isinstance(result, dict):
        return result
    kept = {k: v for k, v in result.items() if k not in {"seconds", "fingerprint", "bytes"}}
    if isinstance(kept.get("error"), dict):
        kept["error"] = {k: v for k, v in kept["error"].items() if k != "traceback"}
    return kept


class InfrastructureContract:
    """Generated infrastructure loads in Terraform's own loader, passes checkov, and grants no more than the access model."""

    def test_generated_terraform_loads(self, generated_dir: Path) -> None:
        """Terraform's configuration loader reports no error."""
        from glacier.testing.terraform import assert_terraform_loads

        assert_terraform_loads(generated_dir)

    def test_generated_terraform_passes_checkov(self, generated_dir: Path) -> None:
        """checkov finds no failed check; every skip carries its reason."""
        from glacier.testing.terraform import assert_checkov_passes

        assert_checkov_passes(generated_dir)

    def test_every_generated_role_matches_the_access_model(self, generated_dir: Path, check_roles: Callable[[Path], list[str]] | None) -> None:
        """Each role grants what its steps read and write, and nothing else."""
        if check_roles is None:
            pytest.skip("the fixtures class gives no check_roles (the provider's generated roles against glacier.infra.access)")
        problems = check_roles(generated_dir)
        assert not problems, "\n".join(problems)


def _extract(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value").is_not_null())


def _transform(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def _aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


def _fail(df: pl.LazyFrame) -> pl.LazyFrame:
    raise RuntimeError("contract fault in transform")


class _Succeeded:
    """Records the steps that ran to success, as the lifecycle hooks report them.

    Counted by a plugin, not inside the tasks: a list the tasks appended to would be
    part of their cache keys (a cache key covers the values a task refers to).
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def __enter__(self) -> list[str]:
        from glacier.plugins.registry import get_plugin_manager

        get_plugin_manager().register(self, name=f"glacier.testing.contracts.{id(self)}")
        return self.names

    def __exit__(self, *exc: object) -> None:
        from glacier.plugins.registry import get_plugin_manager

        get_plugin_manager().unregister(name=f"glacier.testing.contracts.{id(self)}")

    @hookimpl
    def glacier_step_finished(self, run: Any, step: Any, result: Any) -> None:
        from glacier.result import StepStatus

        if result.status is StepStatus.SUCCEEDED:
            self.names.append(step.name)


class RunSemanticsContract:
    """The seed's three-step ETL on the provider's buckets: equal to polars, cached by the
    store's fingerprints, resumed from the failed step."""

    def _seed(self, make_bucket: MakeBucket, *, cache: bool = False, transform: Callable[..., Any] = _transform) -> tuple[Any, dict[str, Bucket]]:
        from glacier.pipeline import Pipeline

        buckets = {name: make_bucket(f"seed/{name}.parquet") for name in ("raw", "step1", "step2", "result")}
        provider = buckets["raw"].provider
        assert provider is not None, "RunSemanticsContract needs buckets made by a Provider (its local() runs the steps)"
        local = provider.local()
        pipeline = (
            Pipeline(name="seed_etl")
            .source(buckets["raw"]).transform(local.task(name="extract", cache=cache)(_extract)).to(buckets["step1"])
            .transform(local.task(name="transform", cache=cache)(transform)).to(buckets["step2"])
            .transform(local.task(name="aggregate", cache=cache)(_aggregate)).to(buckets["result"])
        )
        return pipeline, buckets

    def test_the_seed_etl_equals_polars(self, make_bucket: MakeBucket) -> None:
        """extract → transform → aggregate through the provider's buckets gives what polars gives."""
        pipeline, buckets = self._seed(make_bucket)
        raw = sample_frame(5000)
        buckets["raw"].storage.write(raw, buckets["raw"].uri)
        result = pipeline.run(mode="local")
        assert result.ok, result.summary()
        assert_frame_equal(buckets["result"].scan().collect(), _aggregate(_transform(_extract(raw.lazy()))).collect())
        assert result["extract"].rows == raw["value"].is_not_null().sum()

    def test_cache_skips_an_unchanged_run_and_reruns_after_the_source_changes(self, make_bucket: MakeBucket) -> None:
        """A second run is all cached; a rewritten source runs every step again."""
        from glacier.result import StepStatus

        pipeline, buckets = self._seed(make_bucket, cache=True)
        buckets["raw"].storage.write(sample_frame(100), buckets["raw"].uri)
        with _Succeeded() as ran:
            first = pipeline.run(mode="local")
        assert first.ok and ran == ["extract", "transform", "aggregate"], first.summary()
        marker = getattr(self, "fingerprint_marker", None)
        if marker is not None:
            assert all(marker in fp for fp in first["extract"].input_fingerprints.values()), first["extract"].input_fingerprints

        with _Succeeded() as ran:
            second = pipeline.run(mode="local")
        assert ran == [] and {s.status for s in second.steps.values()} == {StepStatus.CACHED}

        buckets["raw"].storage.write(sample_frame(120), buckets["raw"].uri)
        buckets["raw"].storage.fs.invalidate_cache()
        with _Succeeded() as ran:
            third = pipeline.run(mode="local")
        assert third.ok and ran == ["extract", "transform", "aggregate"]

    def test_resume_runs_the_failed_step_and_what_follows(self, make_bucket: MakeBucket) -> None:
        """After a failure in the middle, ``resume=True`` reuses the step before it."""
        from glacier.result import StepStatus

        broken, buckets = self._seed(make_bucket, transform=_fail)
        buckets["raw"].storage.write(sample_frame(100), buckets["raw"].uri)
        with _Succeeded() as ran:
            failed = broken.run(mode="local")
        assert failed["transform"].status is StepStatus.FAILED and ran == ["extract"]

        fixed, _ = self._seed(make_bucket)
        with _Succeeded() as ran:
            resumed = fixed.run(mode="local", resume=True)
        assert resumed.ok, resumed.summary()
        assert ran == ["transform", "aggregate"]
        assert resumed["extract"].status is StepStatus.REUSED
