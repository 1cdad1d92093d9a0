"""glacier-local: run Glacier pipelines on this machine.

Adds ``LocalConfig`` (buckets under a root directory, or in memory) and a worker
executor (``provider.serverless()``) that runs each step in a separate process through
the same JSON protocol the cloud executors use.
"""

from glacier_local.config import LocalConfig, ProcessConfig

__all__ = ["LocalConfig", "ProcessConfig"]
