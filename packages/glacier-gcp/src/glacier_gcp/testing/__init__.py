"""Local harnesses for tests: GCS through fake-gcs-server, Cloud Functions through functions-framework."""
