"""Fixtures of the cache differential tests."""

from tests.integration.cache.differential import pair  # noqa: F401
