"""``mode="generate"``: one Terraform root module for every provider a pipeline touches.

Glacier groups the pipeline's buckets and serverless tasks by provider and hands each
group, as a :class:`GenerationPlan`, to that provider's generator (hook
``glacier_codegen_targets``). Generators add blocks to one shared
:class:`~glacier.infra.terraform.TerraformModule`, build the function artifacts the module
references, and fill in the deployment manifest: which deployed function runs which
task. Cloud mode reads that manifest to find the functions.

Files written to ``out``: ``main.tf``, the artifacts under ``artifacts/``, and
``glacier-deployment.json`` (also copied to the state directory, where
``mode="cloud"`` looks for it by pipeline name).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glacier.infra.manifest import MANIFEST, remember, write_deployment
from glacier.infra.naming import function_name
from glacier.plugins.deployment import Deployment, DeploymentEntry

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.dag import DAG, TaskInstance
    from glacier.infra.terraform import TerraformModule
    from glacier.pipeline import Pipeline
    from glacier.plugins.executor import Executor
    from glacier.task import Task

__all__ = ["FunctionSpec", "GenerationPlan", "GenerateResult", "function_specs", "generate"]


@dataclass
class FunctionSpec:
    """One serverless task to deploy as one function.

    Attributes
    ----------
    task
        The task.
    executor
        The serverless executor it is bound to (its config sizes the function).
    name
        The function's name (unique, valid for every cloud).
    module, qualname
        How the function's handler imports the task inside the artifact.
    source_file
        The file that defines the task, copied into the artifact.
    steps
        Every step that runs this task.
    """

    task: Task
    executor: Executor
    name: str
    module: str
    qualname: str
    source_file: Path
    steps: list[TaskInstance] = field(default_factory=list)

    @property
    def sources(self) -> list[Bucket]:
        """Every bucket the function reads, over all its steps."""
        return _unique(b for step in self.steps for b in step.sources.values())

    @property
    def targets(self) -> list[Bucket]:
        """Every bucket the function writes, over all its steps."""
        return _unique(step.target for step in self.steps)


@dataclass
class GenerationPlan:
    """What one provider's generator is asked to produce.

    Attributes
    ----------
    pipeline, dag
        The pipeline being generated.
    provider
        The provider's name (``"aws"``).
    module
        The shared Terraform root module to add blocks to.
    out
        The output directory; artifacts go under ``out / "artifacts"``.
    buckets
        This provider's buckets that the pipeline names.
    functions
        This provider's serverless tasks.
    manifest
        The :class:`~glacier.plugins.deployment.DeploymentEntry` to fill for each of
        :attr:`functions`, by task name: what cloud mode invokes for the task.
    options
        The keyword arguments given to ``run(mode="generate", ...)``.
    """

    pipeline: Pipeline
    dag: DAG
    provider: str
    module: TerraformModule
    out: Path
    buckets: list[Bucket]
    functions: list[FunctionSpec]
    manifest: dict[str, DeploymentEntry]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def artifact_dir(self) -> Path:
        """Where artifacts are written (created on first access)."""
        path = self.out / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class GenerateResult:
    """What ``mode="generate"`` wrote.

    When the pipeline has nothing to deploy (no serverless task and no bucket of a
    provider that generates infrastructure), nothing is written: ``files`` and
    ``providers`` are empty and :attr:`nothing_to_deploy` is true.

    Attributes
    ----------
    out
        The output directory.
    files
        What was written.
    manifest
        The deployment manifest as written (JSON data: see
        :mod:`glacier.plugins.deployment`).
    providers
        The providers whose generators ran.
    """

    out: Path
    files: list[Path]
    manifest: dict[str, Any]
    providers: list[str]

    @property
    def nothing_to_deploy(self) -> bool:
        """Whether the pipeline runs entirely on this machine, so nothing was generated."""
        return not self.providers

    def __repr__(self) -> str:
        return f"GenerateResult(out={str(self.out)!r}, providers={self.providers}, files={len(self.files)})"


def function_specs(pipeline: Pipeline, dag: DAG) -> dict[str, dict[str, FunctionSpec]]:
    """The functions to deploy: provider name -> task name -> :class:`FunctionSpec`.

    One function per serverless task, holding every step that runs the task; tasks
    whose executor runs on this machine need none.
    """
    functions: dict[str, dict[str, FunctionSpec]] = {}
    for inst in dag.topological_sort():
        executor = inst.task.executor
        if executor.runs_here:
            continue
        by_task = functions.setdefault(executor.provider.name, {})
        spec = by_task.get(inst.task.name)
        if spec is None:
            spec = by_task[inst.task.name] = _function_spec(pipeline, inst)
        spec.steps.append(inst)
    return functions


def generate(pipeline: Pipeline, dag: DAG, *, out: str | Path = "infra", state_dir: str | None = None, **options: Any) -> GenerateResult:
    """Write the Terraform root module, the artifacts and the deployment manifest.

    Parameters
    ----------
    pipeline, dag
        What to generate.
    out
        The output directory.
    state_dir
        Where the manifest copy goes (see :mod:`glacier.run.history`).
    **options
        Passed to every provider's generator as ``plan.options``.

    Raises
    ------
    PluginNotInstalledError
        When a provider the pipeline uses has no installed generator.
    """
    from glacier.errors import PluginNotInstalledError
    from glacier.infra.terraform import TerraformModule
    from glacier.plugins.registry import KNOWN_PACKAGES, codegen_targets, import_object

    out_dir = Path(out).resolve()
    module = TerraformModule(required_version=">= 1.5")
    buckets: dict[str, list[Bucket]] = {}
    for inst in dag.topological_sort():
        for bucket in (*inst.sources.values(), inst.target):
            group = buckets.setdefault(bucket.provider_name, [])
            if bucket not in group:
                group.append(bucket)
    functions = function_specs(pipeline, dag)
    entries: dict[str, DeploymentEntry] = {}
    manifest = Deployment(pipeline=pipeline.name, entries=entries, generated=time.time(), out=str(out_dir))
    providers = sorted(set(buckets) | set(functions))
    targets = {}
    for provider in providers:
        target = codegen_targets().get(provider)
        if target is None:
            if provider in functions:
                raise PluginNotInstalledError(f"No installed plugin generates infrastructure for provider {provider!r}.", KNOWN_PACKAGES.get(provider))
            continue  # e.g. local buckets: nothing to deploy
        targets[provider] = target
    if not targets:  # only this machine's buckets and executors: write nothing
        return GenerateResult(out=out_dir, files=[], manifest=manifest.to_dict(), providers=[])
    out_dir.mkdir(parents=True, exist_ok=True)
    used = []
    for provider, target in targets.items():
        plan = GenerationPlan(
            pipeline=pipeline,
            dag=dag,
            provider=provider,
            module=module,
            out=out_dir,
            buckets=buckets.get(provider, []),
            functions=list(functions.get(provider, {}).values()),
            manifest=entries,
            options=options,
        )
        import_object(target.generator)(plan)
        used.append(provider)
    files = module.write(out_dir)
    manifest_path = out_dir / MANIFEST
    write_deployment(manifest, manifest_path)
    remember(pipeline.name, manifest, state_dir or pipeline.config.get("state_dir"))
    files.append(manifest_path)
    artifacts = out_dir / "artifacts"
    if artifacts.exists():
        files.extend(sorted(p for p in artifacts.iterdir() if p.is_file()))
    return GenerateResult(out=out_dir, files=files, manifest=manifest.to_dict(), providers=used)


def _function_spec(pipeline: Pipeline, inst: TaskInstance) -> FunctionSpec:
    from glacier.errors import PipelineDefinitionError

    ref = inst.task.reference()
    if "<locals>" in ref.qualname or not ref.file:
        msg = f"Task {inst.task.name!r} must be defined at module level in a file to be deployed (found {ref.qualname})"
        raise PipelineDefinitionError(msg)
    source = Path(ref.file)
    module = ref.module if ref.module not in ("__main__", "__mp_main__") else source.stem
    return FunctionSpec(
        task=inst.task,
        executor=inst.task.executor,
        name=function_name(pipeline.name, inst.task.name),
        module=module,
        qualname=ref.qualname,
        source_file=source,
    )


def _unique(items: Any) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
