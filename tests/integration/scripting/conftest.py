"""Fixtures of the scripting tests: the differential pair of the cache tests."""

from tests.integration.cache.differential import pair  # noqa: F401
