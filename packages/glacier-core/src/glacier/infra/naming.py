"""Names that every cloud accepts: bounded, unique, deterministic."""

from __future__ import annotations

import hashlib
import re

__all__ = ["bounded_name", "function_name"]

#: Characters of the hash that keeps two cut names apart (plus one for the hyphen).
_DIGEST = 8


def bounded_name(name: str, limit: int, *, identity: str | None = None) -> str:
    """``name`` when it fits in ``limit`` characters; otherwise cut, ending in a short hash.

    Every cloud bounds its names (Lambda functions and IAM roles 64 characters, S3
    buckets 63); a name that is too long keeps its readable start and ends in eight
    hex digits of a hash, so two long names that share a start stay apart, and the
    same name always gives the same result.

    Parameters
    ----------
    name
        The name, already in the cloud's alphabet (lowercase letters, digits, ``-``).
    limit
        The most characters the cloud allows.
    identity
        What the hash stands for, when ``name`` was folded from something longer or
        richer (a pipeline's own name): two originals that fold to one slug then stay
        apart. ``name`` itself by default.

    Examples
    --------
    >>> bounded_name("sales-etl-load", 64)
    'sales-etl-load'
    >>> bounded_name("a-very-long-pipeline-name-indeed", 24)
    'a-very-long-pip-f1006b72'
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256((name if identity is None else identity).encode()).hexdigest()[:_DIGEST]
    return f"{name[: limit - _DIGEST - 1].rstrip('-')}-{digest}"


def function_name(pipeline: str, task: str, max_length: int = 64) -> str:
    """A function name valid on AWS, GCP and Azure: lowercase letters, digits, hyphens.

    Examples
    --------
    >>> function_name("Sales ETL", "load_sales")
    'sales-etl-load-sales'
    """
    text = re.sub(r"[^a-z0-9]+", "-", f"{pipeline}-{task}".lower()).strip("-")
    if not text or not text[0].isalpha():
        text = f"g-{text}"
    return bounded_name(text, max_length)
