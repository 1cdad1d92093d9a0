"""What generate writes for Google Cloud: Terraform, service accounts, the function source zip."""
