"""Fixtures of the integration tests that compare with redis-server outside cache/."""

from tests.integration.cache.differential import pair  # noqa: F401
