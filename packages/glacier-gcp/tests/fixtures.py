"""glacier-gcp's fixtures for the contract suites: GCS in fake-gcs-server, functions in functions-framework.

Buckets are fresh fake-gcs-server buckets; the executor POSTs to functions that
FunctionsService serves with functions-framework from the real source zip (its
requirements installed into a fresh venv); the handler is
``glacier_gcp.handler.handler(request)`` called in this process with a Flask request;
the generated directory is what ``mode="generate"`` writes for a small pipeline of
Cloud Functions tasks.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from glacier import Bucket, Provider
from glacier.config import CloudFunctionConfig, GcpConfig
from glacier.plugins import Deployment, DeploymentEntry
from glacier.plugins.executor import Executor
from glacier.testing import ProviderFixtures, tasks
from glacier_gcp.executor import logging_filter
from glacier_gcp.testing.functions_service import FunctionsService

RUNTIME = f"python3{sys.version_info.minor}"  # the venv the functions run in is this interpreter's

GENERATED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import CloudFunctionConfig, GcpConfig
from glacier.testing import tasks

gcp = Provider(config=GcpConfig(project="glacier-contract", region="europe-west1"))
on_functions = gcp.serverless(config=CloudFunctionConfig(memory=2048, timeout=600))
double_value = on_functions.task(cache=True)(tasks.double_value)
join_by_id = on_functions.task()(tasks.join_by_id)

raw = gcp.bucket(bucket="glacier-contract-lake", path="raw/*.parquet")
ref = gcp.bucket(bucket="glacier-contract-lake", path="ref/ids.parquet")
doubled = gcp.bucket(bucket="glacier-contract-lake", path="stage/doubled.parquet")
joined = gcp.bucket(bucket="glacier-contract-reports", path="joined.parquet")
doubling = Pipeline(name="doubling").source(raw).transform(double_value).to(doubled)
joining = Pipeline(name="joining").sources({"left": doubled, "right": ref}).transform(join_by_id).to(joined)
pipeline = Pipeline.compose(doubling, joining, name="contract")
'''


def flask_request(body: Any) -> Any:
    """A Flask request with ``body`` as its JSON, as functions-framework hands one to an HTTP function."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    return Request(EnvironBuilder(method="POST", data=json.dumps(body), content_type="application/json").get_environ())


class GcpFixtures(ProviderFixtures):
    """glacier-gcp against servers on 127.0.0.1."""

    plugin = "gcp"
    fingerprint_marker = "generation="
    step_timeout = 2

    @pytest.fixture(scope="class")
    @classmethod
    def function_source(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The real source zip the contract functions are built from."""
        from glacier_gcp.infra.artifact import build_artifact

        return build_artifact([], CloudFunctionConfig(runtime=RUNTIME), tmp_path_factory.mktemp("contract-artifact")).path

    @pytest.fixture(scope="class")
    @classmethod
    def functions_service(cls) -> Iterator[FunctionsService]:
        with FunctionsService() as service:
            yield service

    @pytest.fixture
    def make_bucket(self, gcp_config: GcpConfig, gcs_bucket: str) -> Callable[[str], Bucket]:
        provider = Provider(config=gcp_config)
        return lambda path: provider.bucket(bucket=gcs_bucket, path=path)

    @pytest.fixture
    def executor(self, gcp_config: GcpConfig) -> Executor:
        return Provider(config=gcp_config).serverless(config=CloudFunctionConfig(timeout=60, runtime=RUNTIME))

    @pytest.fixture(scope="class")
    @classmethod
    def deployment(cls, functions_service: FunctionsService, function_source: Path) -> Deployment:
        # One function per contract task, served from the real source zip.
        functions = {}
        for name in tasks.__all__:
            function = f"contract-{name.replace('_', '-')}"
            timeout = cls.step_timeout if name == "sleep_past_timeout" else 60
            url = functions_service.deploy(function, function_source, {"GLACIER_TASK": f"glacier.testing.tasks:{name}"}, timeout=timeout)  # as the generated Terraform sets it
            functions[name] = DeploymentEntry(function, "glacier.testing.tasks", name, "gcp", "cloudfunction", {"url": url, "logs": f"Cloud Logging ({logging_filter(function)})"})
        functions_service.wait_ready()
        return Deployment(pipeline="contract", entries=functions)

    @pytest.fixture
    def handler(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], Any]:
        from glacier_gcp.handler import handler

        def call(event: Any, task: str) -> Any:
            monkeypatch.setenv("GLACIER_TASK", task)  # as the generated Terraform sets it on the function
            body, status, _ = handler(flask_request(event))
            assert status == 200
            return body

        return call

    @pytest.fixture
    def configs(self) -> list[Any]:
        return [
            GcpConfig(project="p"),
            GcpConfig(project="p", region="europe-west1", endpoint_url="http://127.0.0.1:9", service_endpoints={"storage": "http://127.0.0.1:8"}),
            CloudFunctionConfig(),
            CloudFunctionConfig(memory=16_384, cpu=4, timeout=3600, max_instances=3, min_instances=1, runtime="python311", environment={"A": "b"}),
        ]

    @pytest.fixture(scope="class")
    @classmethod
    def generated_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        from glacier.cli import load_pipeline

        folder = tmp_path_factory.mktemp("contract-generate")
        file = folder / "contract_pipeline.py"
        file.write_text(textwrap.dedent(GENERATED_PIPELINE))
        out = folder / "infra"
        load_pipeline(f"{file}:pipeline").run(mode="generate", out=out)
        return out

    @pytest.fixture
    def check_roles(self) -> Callable[[Path], list[str]]:
        from glacier.cli import load_pipeline
        from glacier_gcp.testing.bindings import binding_problems

        return lambda generated: binding_problems(generated, load_pipeline(f"{generated.parent / 'contract_pipeline.py'}:pipeline"))
