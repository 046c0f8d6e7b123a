"""The Redis client every shared store of the gateway uses."""

import redis.asyncio as redis


def pooled_client(
    url: str, connections: int, timeout_s: float, socket_timeout_s: float
) -> redis.Redis:
    """A client whose pool waits up to `timeout_s` for a free connection, rather than
    failing at once when they are all in use."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_timeout=socket_timeout_s,
    )
    return redis.Redis.from_pool(pool)
