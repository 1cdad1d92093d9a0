"""What glacier-azure generates and builds: Terraform (azurerm), the identities, the Flex Consumption artifact."""
