"""Generate-time code of glacier-aws: Terraform, IAM and the Lambda artifact."""
