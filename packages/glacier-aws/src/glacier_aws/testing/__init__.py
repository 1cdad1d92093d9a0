"""Test support for glacier-aws: a local Lambda service that speaks the real protocols."""
