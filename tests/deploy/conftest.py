"""Redis for the deployment tests: OFFERTRACK_TEST_REDIS_URL (default DB 0), required in CI."""

import os

import pytest

from tests.deploy.processes import unavailable


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("OFFERTRACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable at {url}: {exc}")
    return url
