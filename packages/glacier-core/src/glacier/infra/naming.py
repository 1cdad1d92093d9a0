"""Names that every cloud accepts: bounded, unique, deterministic.
"""

from __future__ import annotations

import re

__all__ = ["function_name"]


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
    if len(text) > max_length:
        import hashlib

        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        text = f"{text[: max_length - 9].rstrip('-')}-{digest}"
    return text
