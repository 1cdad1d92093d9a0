"""glacier-azure's local harness for tests: Azurite (Blob and Queue) and a stand-in Functions host."""
