"""Glacier: storage-first polars pipelines that run locally or across clouds.

Examples
--------
>>> from glacier import Provider, Pipeline
>>> from glacier.config import LocalConfig
>>> provider = Provider(config=LocalConfig(root="/tmp/glacier-doc"))
>>> Pipeline(name="etl")
Pipeline(name='etl', steps=0)
"""

from glacier.bucket import Bucket
from glacier.dag import DAG, TaskInstance
from glacier.plugins.executor import Executor
from glacier.plugins.hookspecs import hookimpl
from glacier.pipeline import Pipeline
from glacier.provider import Provider
from glacier.result import RunResult, StepResult, StepStatus
from glacier.task import Task

__version__ = "0.1.0"

__all__ = [
    "Bucket",
    "DAG",
    "Executor",
    "Pipeline",
    "Provider",
    "RunResult",
    "StepResult",
    "StepStatus",
    "Task",
    "TaskInstance",
    "hookimpl",
    "__version__",
]
