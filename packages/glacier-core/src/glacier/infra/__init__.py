"""What ``mode="generate"`` builds: Terraform, function artifacts and the deployment manifest.

- :mod:`glacier.infra.generate`: groups a pipeline by provider and calls each generator;
- :mod:`glacier.infra.manifest`: which deployed function runs which task;
- :mod:`glacier.infra.terraform`: the Terraform document model, written as HCL;
- :mod:`glacier.infra.naming`: names every cloud accepts.
"""
