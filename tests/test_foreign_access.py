"""glacier.infra.access.foreign_access: which function touches which other cloud's buckets, and what there."""

from __future__ import annotations

from glacier import Bucket, Pipeline, Provider
from glacier.config import AwsConfig, CloudFunctionConfig, GcpConfig, LambdaConfig, LocalConfig
from glacier.infra.access import access_local, foreign_access, function_access, identity_local
from glacier.testing import tasks


def test_a_function_on_one_cloud_touching_another_is_listed_with_only_that_clouds_access() -> None:
    aws = Provider(config=AwsConfig(region="us-east-1"))
    gcp = Provider(config=GcpConfig(project="p", region="us-central1"))
    here = Provider(config=LocalConfig(root="/"))
    double = aws.serverless(config=LambdaConfig()).task(cache=True)(tasks.double_value)
    join = gcp.serverless(config=CloudFunctionConfig()).task()(tasks.join_by_id)
    first = Pipeline(name="a").source(aws.bucket(bucket="raw", path="in/*.parquet")).transform(double).to(gcp.bucket(bucket="stage", path="x.parquet"))
    second = Pipeline(name="b").sources({"left": gcp.bucket(bucket="stage", path="x.parquet"), "right": here.bucket(bucket="ref", path="r.parquet")})
    pipeline = Pipeline.compose(first, second.transform(join).to(gcp.bucket(bucket="stage", path="y.parquet")), name="fa")
    pairs = foreign_access(pipeline, pipeline.build())
    assert [(p.spec.task.name, p.home, p.cloud) for p in pairs] == [("double_value", "aws", "gcp")], "local buckets are no cloud to reach"
    (pair,) = pairs
    assert pair.access == function_access(pair.spec).only({"gs"})
    assert sorted(pair.access.writes) == ["gs://stage/.x.parquet.glacier.json", "gs://stage/x.parquet"]
    assert not any(uri.startswith("s3://") for uri in pair.access.reads)
    assert identity_local(pair.spec) == "glacier_fa_double_value_identity"
    assert access_local(pair.spec, "gcp") == "glacier_fa_double_value_on_gcp"


def test_a_pipeline_on_one_cloud_has_no_foreign_access() -> None:
    aws = Provider(config=AwsConfig(region="us-east-1"))
    double = aws.serverless(config=LambdaConfig()).task()(tasks.double_value)
    pipeline = Pipeline(name="one").source(Bucket.from_uri("s3://raw/a.parquet")).transform(double).to(aws.bucket(bucket="raw", path="b.parquet"))
    assert foreign_access(pipeline, pipeline.build()) == []
