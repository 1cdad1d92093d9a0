"""Every artifact of the three-cloud pipeline, its size against its platform's limit.

Generates tests/multicloud_pipeline.py (S3 → Lambda → GCS → Cloud Functions (+ Azure
reference) → Azure Blob → Azure Functions → Azure Blob → this machine) into a temporary
folder and prints, for each artifact the root points at, its unzipped and zipped bytes
and the limit it must fit. Nothing is deployed and no emulator is started (the
endpoints are never dialled). Run from the repository's root:

    python bench/artifact_sizes.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Lambda's documented quota for a function and its layers, unzipped (CodeSizeUnzipped).
LAMBDA_LIMIT = 262_144_000
LIMITS = {
    "glacier-lambda": (LAMBDA_LIMIT, "250 MiB unzipped (Lambda's CodeSizeUnzipped)"),
    "glacier-function": (None, "gen2: none (Cloud Functions quotas page); dependencies are installed from requirements.txt"),
    "glacier-azure-functions": (None, "Flex Consumption: none found in the docs searched"),
}


def main() -> int:
    """Generate the pipeline and print the table; 1 when an artifact is over its limit."""
    from glacier.cli import load_pipeline

    with tempfile.TemporaryDirectory() as folder:
        nowhere = "http://127.0.0.1:9"
        os.environ.update(MOTO=nowhere, LAMBDA=nowhere, GCP_PROJECT="sizes", GCS=nowhere, FUNCTIONS=nowhere,
                          AZURITE_BLOB=f"{nowhere}/devstoreaccount1", AZURITE_QUEUE=f"{nowhere}/devstoreaccount1",
                          RAW_BUCKET="raw", MID_BUCKET="mid", LAKE_CONTAINER="lake", GLACIER_STATE_DIR=str(Path(folder) / "state"))  # fmt: skip
        out = Path(folder) / "infra"
        load_pipeline(f"{ROOT / 'tests' / 'multicloud_pipeline.py'}:pipeline").run(mode="generate", out=out)
        over = False
        print(f"{'artifact':48} {'unzipped':>14} {'zipped':>12}  limit")
        for path in sorted((out / "artifacts").glob("*.zip")):
            with zipfile.ZipFile(path) as archive:
                unzipped = sum(info.file_size for info in archive.infolist())
            limit, what = next(v for k, v in LIMITS.items() if path.name.startswith(k + "-"))
            over |= limit is not None and unzipped > limit
            print(f"{path.name:48} {unzipped:>14,} {path.stat().st_size:>12,}  {what}")
        return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
