"""Two runs of one pipeline at once, forced to overlap, writing the same S3 targets.

Each run is a real ``glacier run`` process. Both wait inside the first step until the
other has arrived there too (a rendezvous in a shared folder), so their writes of the
same keys interleave; afterwards every target is whole, both runs are recorded, and no
temporary object is left in the bucket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import polars as pl

from glacier.config import AwsConfig
from glacier.plugins.storage import TEMP_MARKER
from glacier.run.history import RunStore
from glacier_aws.storage import polars_storage_options

PIPELINE = """
    import os
    import time
    from pathlib import Path
    import polars as pl
    from glacier import Pipeline, Provider
    from glacier.config import AwsConfig

    provider = Provider(config=AwsConfig(region="us-east-1", endpoint_url=os.environ["MOTO"]))
    local = provider.local()
    lake = lambda path: provider.bucket(bucket=os.environ["DATA_BUCKET"], path=path)


    def rendezvous():
        folder = os.environ["BARRIER"]
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 60  # a limit against a hang, not a timing check
        while len(os.listdir(folder)) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the other run never reached step1")
            time.sleep(0.01)


    @local.task()
    def step1(df):
        rendezvous()
        return df.filter(pl.col("v") > 0)


    @local.task()
    def step2(df):
        return df.with_columns(w=pl.col("v") * 2)


    both = Pipeline(name="both").source(lake("raw.parquet")).transform(step1).to(lake("one.parquet"))
    both.transform(step2).to(lake("two.parquet"))
"""


def test_two_runs_at_once_on_the_same_s3_targets_both_finish_whole(tmp_path: Path, aws_config: AwsConfig, s3_bucket: str) -> None:
    options = polars_storage_options(aws_config)
    rows = 200_000
    pl.select(v=pl.int_range(-10, rows - 10, dtype=pl.Int64)).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=options)
    file = tmp_path / "pipes.py"
    file.write_text(textwrap.dedent(PIPELINE))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, MOTO=str(aws_config.endpoint_url), DATA_BUCKET=s3_bucket, BARRIER=str(barrier))
    cmd = [sys.executable, "-m", "glacier.cli", "run", f"{file}:both"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(outputs)
    assert len(os.listdir(barrier)) == 2  # both runs were inside step1 at once

    two = pl.read_parquet(f"s3://{s3_bucket}/two.parquet", storage_options=options)
    assert two.height == rows - 11 and two["w"].sum() == 2 * sum(range(1, rows - 10))
    one = pl.read_parquet(f"s3://{s3_bucket}/one.parquet", storage_options=options)
    assert one.height == rows - 11
    records = RunStore(os.environ["GLACIER_STATE_DIR"]).list("both")
    assert len(records) == 2 and all(r["state"] == "finished" and r["ok"] for r in records)
    s3 = boto3.client("s3", endpoint_url=aws_config.endpoint_url, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert [k for k in keys if TEMP_MARKER in k] == [], keys
    assert sorted(keys) == ["one.parquet", "raw.parquet", "two.parquet"]
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []  # none left open
