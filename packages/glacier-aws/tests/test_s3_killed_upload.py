"""No partial object on S3 when the worker writing a target is killed mid-upload.

A real ``glacier run`` starts a real worker process that streams a large target to
moto's S3 through :class:`glacier_aws.storage.S3Storage` (polars' multipart upload). The
worker is SIGKILLed once moto shows the target's multipart upload in progress with a
part already uploaded, so the kill provably lands mid-write; the target key must not
exist after, and a later run writes it whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import polars as pl

from glacier.config import AwsConfig
from glacier.testing import sample_frame
from glacier_aws.storage import polars_storage_options

ROWS = 4_000_000

PIPELINE_FILE = '''
import os
import time
from pathlib import Path

import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AwsConfig

provider = Provider(config=AwsConfig(region="us-east-1", endpoint_url=os.environ["MOTO"]))
bucket = os.environ["DATA_BUCKET"]


def paced(batch):
    # With SLOW_UPLOAD set, each batch waits: the upload stays in progress for many seconds.
    if os.environ.get("SLOW_UPLOAD"):
        time.sleep(0.5)
    return batch


@provider.local().task(timeout=600)  # a timeout: the step runs in a worker process of its own
def widen(df):
    Path(os.environ["WORKER_PID"]).write_text(str(os.getpid()))
    # Hashes do not compress: the parquet file is tens of MB, several multipart parts.
    frame = pl.LazyFrame({{"i": pl.int_range(0, {rows}, eager=True)}})
    frame = frame.with_columns(a=pl.col("i").hash(1), b=pl.col("i").hash(2))
    return frame.with_columns(pl.col("a").map_batches(paced, is_elementwise=True, return_dtype=pl.UInt64))


big = Pipeline(name="big").source(provider.bucket(bucket=bucket, path="raw.parquet")).transform(widen).to(provider.bucket(bucket=bucket, path="out/big.parquet"))
'''


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def test_a_worker_killed_mid_upload_leaves_no_object_and_the_next_run_writes_it_whole(tmp_path: Path, moto_endpoint: str, s3_bucket: str) -> None:
    config = AwsConfig(region="us-east-1", endpoint_url=moto_endpoint)
    sample_frame(10).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=polars_storage_options(config))
    (tmp_path / "big_etl.py").write_text(textwrap.dedent(PIPELINE_FILE.format(rows=ROWS)))
    pid_file = tmp_path / "worker.pid"
    env = dict(os.environ, MOTO=moto_endpoint, DATA_BUCKET=s3_bucket, WORKER_PID=str(pid_file))
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    key = "out/big.parquet"

    def uploading() -> bool:
        """The target's multipart upload is open and holds at least one part: mid-write."""
        uploads = [u for u in s3.list_multipart_uploads(Bucket=s3_bucket, Prefix=key).get("Uploads", []) if u["Key"] == key]
        return any(s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=u["UploadId"]).get("Parts") for u in uploads)

    run = [sys.executable, "-m", "glacier.cli", "run", "big_etl.py:big"]
    cli = subprocess.Popen(run, cwd=tmp_path, env={**env, "SLOW_UPLOAD": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        _wait_for(lambda: pid_file.exists() or cli.poll() is not None, 120, "the worker started")
        assert cli.poll() is None, cli.communicate()[0]
        worker = int(pid_file.read_text())
        assert worker != cli.pid  # the write happens in a worker process, not in the CLI
        _wait_for(lambda: uploading() or cli.poll() is not None, 120, "a part of the target was uploaded")
        assert cli.poll() is None, cli.communicate()[0]
        os.kill(worker, signal.SIGKILL)
        output = cli.communicate(timeout=120)[0]
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
    assert cli.returncode != 0, output
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix="out/").get("KeyCount", 0) == 0, output

    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    written = pl.read_parquet(f"s3://{s3_bucket}/{key}", storage_options=polars_storage_options(config))
    assert written.height == ROWS and written["i"].to_list()[-1] == ROWS - 1
