"""Top-level conftest: the pytester fixture for plugin tests."""
