"""Django's Redis cache with one connection pool per process, not one per request.

Django keeps a cache backend per context (`caches` is an asgiref Local): under ASGI every
request is a new context, so it builds a new `RedisCacheClient`, whose new connection pool
opens a new Redis connection — a TCP (or socket) connect, a health check and, later, a
connection left for the garbage collector, for every request that touches the cache. Measured
with py-spy on the now-playing endpoint under 32 clients: ~9 % of the web process's samples
in `AbstractConnection.connect`. Here the pools are shared by every client of the process
with the same server and options (redis-py's ConnectionPool is thread-safe and resets itself
after a fork).
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_pools: dict[tuple, object] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        server = self._servers[index]
        key = (server, self._pool_class, tuple(sorted((k, repr(v)) for k, v in self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(server, **self._pool_options)
        return pool


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
