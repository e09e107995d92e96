"""Fixtures every suite may use."""

from tests.support.redis_keys import prefix  # noqa: F401  (a Redis key prefix of the test's own)
