"""glacier-gcp: run Glacier pipelines on Google Cloud.

Adds ``GcpConfig`` and ``CloudFunctionConfig`` to :mod:`glacier.config`, ``gs://``
(and ``gcs://``) buckets, a Cloud Functions (gen2) executor
(``provider.serverless(config=CloudFunctionConfig(...))``) and Terraform generation for
GCS, functions and service accounts. Heavy SDKs (gcsfs, google-auth) are imported on
first use.
"""

from glacier_gcp.config import CloudFunctionConfig, GcpConfig

__all__ = ["CloudFunctionConfig", "GcpConfig"]
