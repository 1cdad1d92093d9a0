"""Test support for Glacier and its provider packages.

:mod:`glacier.testing.contracts` holds reusable contract suites that a provider
subclasses with its own fixtures (see its docs); :mod:`glacier.testing.terraform`
checks generated Terraform with Terraform's loader and checkov;
:mod:`glacier.testing.tasks` holds module-level tasks the suites run. Importing
this package needs pytest.
"""

from glacier.testing.contracts import AtomicCommitContract, BucketContract, ExecutorContract, InfrastructureContract, sample_frame

__all__ = ["AtomicCommitContract", "BucketContract", "ExecutorContract", "InfrastructureContract", "sample_frame"]
