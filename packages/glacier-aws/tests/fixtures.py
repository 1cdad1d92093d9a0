"""glacier-aws's fixtures for the contract suites: S3 in moto's server, Lambda in LambdaService.

Buckets are fresh moto buckets; the executor invokes functions that LambdaService runs
in the real awslambdaric client from a real artifact build; the handler is
``glacier_aws.handler.handler(event, context)`` called in this process; the generated
directory is what ``mode="generate"`` writes for a small pipeline of Lambda tasks.
"""

from __future__ import annotations

import platform
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from glacier import Bucket, Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig
from glacier.plugins import Deployment, DeploymentEntry
from glacier.plugins.executor import Executor
from glacier.testing import ProviderFixtures, tasks
from glacier_aws.testing.lambda_service import LambdaService

RUNTIME = f"python3.{sys.version_info.minor}"  # the artifact must run on this interpreter
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"

#: What the functions' role would give them; moto accepts any key.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true"}

GENERATED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig
from glacier.testing import tasks

aws = Provider(config=AwsConfig(region="us-east-1"))
on_lambda = aws.serverless(config=LambdaConfig(memory=1024, timeout=60, runtime="{runtime}", architecture="{arch}"))
double_value = on_lambda.task()(tasks.double_value)
join_by_id = on_lambda.task()(tasks.join_by_id)

raw = aws.bucket(bucket="glacier-contract-lake", path="raw/*.parquet")
ref = aws.bucket(bucket="glacier-contract-lake", path="ref/ids.parquet")
doubled = aws.bucket(bucket="glacier-contract-lake", path="stage/doubled.parquet")
joined = aws.bucket(bucket="glacier-contract-reports", path="joined.parquet")
doubling = Pipeline(name="doubling").source(raw).transform(double_value).to(doubled)
joining = Pipeline(name="joining").sources({{"left": doubled, "right": ref}}).transform(join_by_id).to(joined)
pipeline = Pipeline.compose(doubling, joining, name="contract")
'''


class AwsFixtures(ProviderFixtures):
    """glacier-aws against servers on 127.0.0.1."""

    plugin = "aws"
    fingerprint_marker = "ETag="
    step_timeout = 2

    @pytest.fixture(scope="class")
    @classmethod
    def lambda_service(cls) -> Iterator[LambdaService]:
        with LambdaService() as service:
            yield service

    @pytest.fixture
    def make_bucket(self, aws_config: AwsConfig, s3_bucket: str) -> Callable[[str], Bucket]:
        provider = Provider(config=aws_config)
        return lambda path: provider.bucket(bucket=s3_bucket, path=path)

    @pytest.fixture
    def executor(self, aws_config: AwsConfig, lambda_service: LambdaService) -> Executor:
        config = AwsConfig(region=aws_config.region, endpoint_url=aws_config.endpoint_url, service_endpoints={"lambda": lambda_service.endpoint_url})
        return Provider(config=config).serverless(config=LambdaConfig(timeout=60, runtime=RUNTIME, architecture=ARCH))

    @pytest.fixture
    def deployment(self, executor: Any, lambda_service: LambdaService, artifact_tree: Path) -> Deployment:
        # One function per contract task, deployed from a real artifact build.
        code = artifact_tree
        functions = {}
        for name in tasks.__all__:
            function = f"contract-{name.replace('_', '-')}"
            env = {**CREDENTIALS, "GLACIER_TASK": f"glacier.testing.tasks:{name}"}  # as the generated Terraform sets it
            timeout = self.step_timeout if name == "sleep_past_timeout" else 60
            lambda_service.deploy(function, code, "glacier_aws.handler.handler", environment=env, timeout=timeout)
            functions[name] = DeploymentEntry(function, "glacier.testing.tasks", name, "aws", "lambda", {"logs": f"CloudWatch (/aws/lambda/{function})"})
        return Deployment(pipeline="contract", entries=functions)

    @pytest.fixture
    def handler(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], Any]:
        from glacier_aws.handler import handler

        def call(event: Any, task: str) -> Any:
            monkeypatch.setenv("GLACIER_TASK", task)  # as the generated Terraform sets it on the function
            return handler(event, None)

        return call

    @pytest.fixture
    def configs(self) -> list[Any]:
        return [
            AwsConfig(),
            AwsConfig(region="eu-west-1", profile="ops", endpoint_url="http://127.0.0.1:9", service_endpoints={"lambda": "http://127.0.0.1:8"}, connect_timeout=1.5),
            LambdaConfig(),
            LambdaConfig(memory=2048, timeout=900, architecture="arm64", ephemeral_storage=4096, environment={"A": "b"}, log_retention_days=14, reserved_concurrency=3),
        ]

    @pytest.fixture(scope="class")
    @classmethod
    def generated_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        from glacier.cli import load_pipeline

        folder = tmp_path_factory.mktemp("contract-generate")
        file = folder / "contract_pipeline.py"
        file.write_text(textwrap.dedent(GENERATED_PIPELINE.format(runtime=RUNTIME, arch=ARCH)))
        out = folder / "infra"
        # Class-scoped, so before the per-test state directory is set: give it its own.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("GLACIER_STATE_DIR", str(folder / "state"))
            load_pipeline(f"{file}:pipeline").run(mode="generate", out=out)
        return out

    @pytest.fixture
    def check_roles(self) -> Callable[[Path], list[str]]:
        from glacier.cli import load_pipeline
        from glacier_aws.testing.roles import role_problems

        return lambda generated: role_problems(generated, load_pipeline(f"{generated.parent / 'contract_pipeline.py'}:pipeline"))


@dataclass
class CloudProject:
    """A pipeline file on disk, its data bucket in moto, and the Lambda service its functions run in.

    The file reads ``MOTO``, ``LAMBDA`` and ``DATA_BUCKET`` from the environment when it is
    imported: here (set for the test only) and in each function (given at deploy time, as
    Terraform variables would be). The flow is the user's: generate, deploy, run.
    """

    file: Path
    bucket: str
    moto: str
    service: LambdaService
    #: What every deployed function gets beyond its Terraform variables.
    environment: dict[str, str] = field(default_factory=dict)

    def pipeline(self, name: str) -> Pipeline:
        """The file's pipeline ``name``, loaded as the CLI loads it."""
        from glacier.cli import load_pipeline

        return load_pipeline(f"{self.file}:{name}")

    def generate(self, name: str, out: Path) -> Any:
        """Run pipeline ``name`` in generate mode into ``out``; return what it wrote."""
        return self.pipeline(name).run(mode="generate", out=out)

    def deploy(self, generated: Any, *, credentials: dict[str, dict[str, str]] | None = None) -> None:
        """Create every function of a generated root module, as ``terraform apply`` would."""
        deployed = self.service.deploy_terraform(generated.out, environment=self.environment, credentials=credentials)
        assert deployed == sorted(entry["function_name"] for entry in generated.manifest["functions"].values())

    def run(self, name: str, out: Path, *, roles: Callable[[Path], dict[str, dict[str, str]]] | None = None, **options: Any) -> Any:
        """Generate, deploy, then run pipeline ``name`` in cloud mode; return its result.

        ``roles`` turns the generated folder into each function's own credentials.
        """
        generated = self.generate(name, out)
        self.deploy(generated, credentials=roles(generated.out) if roles is not None else None)
        return self.pipeline(name).run(mode="cloud", **options)


def cloud_project(source: str, folder: Path, monkeypatch: pytest.MonkeyPatch, *, moto: str, service: LambdaService,
                  bucket: str, module: str = "cloud_etl", credentials: dict[str, str] | None = None) -> CloudProject:
    """Write ``source`` (formatted with ``runtime`` and ``arch``) as ``folder/module.py`` and point it at ``bucket``.

    ``credentials`` (every function's keys) default to :data:`CREDENTIALS`; pass ``{}``
    when each function is given its own role's at deploy time.
    """
    for key, value in {"MOTO": moto, "LAMBDA": service.endpoint_url, "DATA_BUCKET": bucket}.items():
        monkeypatch.setenv(key, value)
    file = folder / f"{module}.py"
    file.write_text(textwrap.dedent(source.format(runtime=RUNTIME, arch=ARCH)))
    environment = {"MOTO": moto, "LAMBDA": service.endpoint_url, "DATA_BUCKET": bucket, "AWS_EC2_METADATA_DISABLED": "true",
                   **(CREDENTIALS if credentials is None else credentials)}
    return CloudProject(file, bucket, moto, service, environment)
