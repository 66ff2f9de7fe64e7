"""Flask-Limiter and django-redis' lock against a real jobcached process, unchanged.

Issue 14 measured both failing before scripting: Flask-Limiter answered every request with
HTTP 500 (its storage runs Lua scripts), and django-redis' `cache.lock` is redis-py's Lock.
"""

from __future__ import annotations

import django
import pytest
from django.conf import settings
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from tests.conftest import ServerProcess


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_flask_limiter_answers_429_past_the_limit(server: ServerProcess, strategy: str) -> None:
    app = Flask(__name__)
    limiter = Limiter(get_remote_address, app=app, strategy=strategy,
                      storage_uri=f"redis://127.0.0.1:{server.port}",
                      key_prefix=f"test-{strategy}")

    @app.route("/")
    @limiter.limit("2/minute")
    def index() -> str:
        return "ok"

    client = app.test_client()
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
    limiter.reset()
    assert client.get("/").status_code == 200
    limiter.storage.storage.close()


def test_django_redis_cache_lock(server: ServerProcess) -> None:
    if not settings.configured:
        settings.configure(CACHES={"default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0"}})
        django.setup()
    from django.core.cache import cache

    cache.set("page", "cached", timeout=30)
    assert cache.get("page") == "cached"
    with cache.lock("rebuild", timeout=5, blocking_timeout=1):
        assert not cache.lock("rebuild", blocking_timeout=0.1).acquire()
    lock = cache.lock("rebuild", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.extend(5)
    lock.release()
    cache.close()
