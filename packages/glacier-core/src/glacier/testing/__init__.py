"""Test support for Glacier and its provider packages.

:mod:`glacier.testing.contracts` holds reusable contract suites that a provider
subclasses with its own fixtures (see its docs); :mod:`glacier.testing.terraform`
checks generated Terraform with Terraform's loader and checkov;
:mod:`glacier.testing.tasks` holds module-level tasks the suites run (it imports only
polars, so it also loads inside a serverless artifact, where pytest is absent).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AtomicCommitContract",
    "BucketContract",
    "ExecutorContract",
    "HandlerContract",
    "InfrastructureContract",
    "PluginContract",
    "ProviderFixtures",
    "RunSemanticsContract",
    "sample_frame",
]


def __getattr__(name: str) -> Any:
    # The suites need pytest; import them only when asked for, so that
    # `glacier.testing.tasks` stays importable without it.
    if name in __all__:
        from glacier.testing import contracts

        return getattr(contracts, name)
    raise AttributeError(name)
