"""glacier-azure's fixtures for the contract suites: Blob Storage and queues in Azurite, functions in FunctionsHost.

Buckets are blobs of fresh Azurite containers; the executor queues each step for a
function app that FunctionsHost runs from a real artifact build, in a worker process
that sees only the unzipped artifact; the handler is the artifact's v2-model function,
called in this process with the ``azure.functions`` types as the host calls it.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from glacier import Bucket, Provider
from glacier.config import AzureConfig, AzureFunctionConfig
from glacier.plugins import Deployment, DeploymentEntry
from glacier.plugins.executor import Executor
from glacier.testing import ProviderFixtures, tasks
from glacier_azure.testing.azurite import ACCOUNT_KEY, Azurite
from glacier_azure.testing.functions_host import FunctionsHost

GENERATED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AzureConfig, AzureFunctionConfig
from glacier.testing import tasks

azure = Provider(config=AzureConfig(storage_account="mylake", resource_group="data", location="westeurope"))
big = azure.serverless(config=AzureFunctionConfig(memory=4096, timeout=3600, max_instances=50, runtime="{runtime}"))
small = azure.serverless(config=AzureFunctionConfig(memory=2048, timeout=600, runtime="{runtime}", environment={{"MODE": "x"}}))
double_value = big.task()(tasks.double_value)
join_by_id = small.task(cache=True)(tasks.join_by_id)

raw = azure.bucket(bucket="lake", path="raw/*.parquet")
ref = azure.bucket(bucket="lake", path="ref/ids.parquet")
doubled = azure.bucket(bucket="lake", path="stage/doubled.parquet")
joined = azure.bucket(bucket="reports", path="joined.parquet")
doubling = Pipeline(name="doubling").source(raw).transform(double_value).to(doubled)
joining = Pipeline(name="joining").sources({{"left": doubled, "right": ref}}).transform(join_by_id).to(joined)
pipeline = Pipeline.compose(doubling, joining, name="contract")
'''

RUNTIME = f"3.{sys.version_info.minor}"  # the artifact must run on this interpreter
RESULTS = "glacier-results"

#: What the function's identity gives it; Azurite knows only its account key.
CREDENTIALS = {"AZURE_STORAGE_KEY": ACCOUNT_KEY}


def unzipped_artifact(out: Path, config: AzureFunctionConfig, modules: list[tuple[str, Path]] | None = None) -> Path:
    """A real Flex Consumption artifact build, unzipped as the platform unpacks it."""
    from glacier_azure.infra.artifact import build_artifact

    artifact = build_artifact(modules or [], config, out)
    code = out / "code"
    with zipfile.ZipFile(artifact.path) as archive:
        archive.extractall(code)
    return code


def deploy_settings(app: str, task: str, *, timeout: int, dequeues: int = 1) -> dict[str, str]:
    """The app settings the generated Terraform gives a function app, for Azurite (its key stands in for the identity)."""
    return {
        **CREDENTIALS,
        "GLACIER_AZURE_FUNCTION": app,
        "GLACIER_TASK": task,
        "GLACIER_QUEUE": app,
        "GLACIER_RESULTS_CONTAINER": RESULTS,
        "AzureFunctionsJobHost__functionTimeout": f"00:00:{timeout:02d}" if timeout < 60 else f"00:{timeout // 60:02d}:{timeout % 60:02d}",
        "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": str(dequeues),
    }


class AzureFixtures(ProviderFixtures):
    """glacier-azure against Azurite and FunctionsHost on 127.0.0.1."""

    plugin = "azure"
    fingerprint_marker = "etag="
    step_timeout = 3

    @pytest.fixture(scope="class")
    @classmethod
    def functions_host(cls, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionsHost]:
        with FunctionsHost(azurite.connection_string, tmp_path_factory.mktemp("functions-host")) as host:
            yield host

    @pytest.fixture
    def make_bucket(self, azure_config: AzureConfig, container: str) -> Callable[[str], Bucket]:
        provider = Provider(config=azure_config)
        return lambda path: provider.bucket(bucket=container, path=path)

    @pytest.fixture
    def executor(self, azure_config: AzureConfig) -> Executor:
        return Provider(config=azure_config).serverless(config=AzureFunctionConfig(timeout=60, runtime=RUNTIME))

    @pytest.fixture(scope="class")
    @classmethod
    def deployment(cls, azurite: Azurite, functions_host: FunctionsHost, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
        # One function app per contract task, deployed from a real artifact build.
        code = unzipped_artifact(tmp_path_factory.mktemp("contract-artifact"), AzureFunctionConfig(timeout=60, runtime=RUNTIME))
        azurite.create_container(RESULTS)
        functions = {}
        for name in tasks.__all__:
            app = f"contract-{name.replace('_', '-')}"
            timeout = int(cls.step_timeout) if name == "sleep_past_timeout" else 60
            azurite.create_queue(app)
            functions_host.deploy(app, code, deploy_settings(app, f"glacier.testing.tasks:{name}", timeout=timeout))
            extras = {"queue": app, "results_container": RESULTS, "timeout": str(timeout), "logs": f"Application Insights (traces of function app '{app}')"}
            functions[name] = DeploymentEntry(app, "glacier.testing.tasks", name, "azure", "azure-functions", extras)
        return Deployment(pipeline="contract", entries=functions)

    @pytest.fixture
    def handler(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], Any]:
        import azure.functions as func

        from glacier_azure.handler import build_app

        (function,) = build_app().get_functions()

        class Out(func.Out[str]):
            value: str = ""

            def set(self, val: str) -> None:
                self.value = val

            def get(self) -> str:
                return self.value

        def call(event: Any, task: str) -> Any:
            monkeypatch.setenv("GLACIER_TASK", task)  # as the generated Terraform sets it on the function app
            result = Out()
            function.get_user_function()(msg=func.QueueMessage(id="m1", body=json.dumps(event).encode()), result=result)
            return json.loads(result.get())

        return call

    @pytest.fixture(scope="class")
    @classmethod
    def generated_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        from glacier.cli import load_pipeline

        folder = tmp_path_factory.mktemp("contract-generate")
        file = folder / "contract_pipeline.py"
        file.write_text(textwrap.dedent(GENERATED_PIPELINE.format(runtime=RUNTIME)))
        out = folder / "infra"
        with pytest.MonkeyPatch.context() as mp:  # the manifest's copy goes to a state dir of the class's own
            mp.setenv("GLACIER_STATE_DIR", str(folder / "state"))
            load_pipeline(f"{file}:pipeline").run(mode="generate", out=out)
        return out

    @pytest.fixture
    def check_roles(self) -> Callable[[Path], list[str]]:
        from glacier.cli import load_pipeline
        from glacier_azure.testing.roles import role_problems

        return lambda generated: role_problems(generated, load_pipeline(f"{generated.parent / 'contract_pipeline.py'}:pipeline"))

    @pytest.fixture
    def configs(self) -> list[Any]:
        return [
            AzureConfig(storage_account="mylake"),
            AzureConfig(storage_account="devstoreaccount1", resource_group="data", location="westeurope", subscription_id="00000000-0000-0000-0000-000000000000",
                        endpoint_url="http://127.0.0.1:9/devstoreaccount1", service_endpoints={"queue": "http://127.0.0.1:8/devstoreaccount1"}),
            AzureFunctionConfig(),
            AzureFunctionConfig(memory=4096, timeout=14_400, max_instances=1000, runtime="3.11", environment={"A": "b"}, max_dequeue_count=5, log_retention_days=90),
        ]  # fmt: skip
