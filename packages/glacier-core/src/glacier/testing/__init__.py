"""Test helpers and contract suites that provider packages reuse."""
