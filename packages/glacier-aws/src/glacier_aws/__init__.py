"""glacier-aws: run Glacier pipelines on AWS.

Adds ``AwsConfig`` and ``LambdaConfig`` to :mod:`glacier.config`, ``s3://`` buckets,
a Lambda executor (``provider.serverless(config=LambdaConfig(...))``) and Terraform
generation for S3, Lambda and IAM. Heavy SDKs (boto3, s3fs) are imported on first use.
"""

from glacier_aws.config import AwsConfig, LambdaConfig

__all__ = ["AwsConfig", "LambdaConfig"]
