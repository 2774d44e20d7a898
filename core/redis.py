"""The Redis client, built from a URL by whoever composes the application.

`REDIS_URL` names one server (`redis://host:port/db`, `rediss://…`, `unix://…`) or a Redis Cluster:
`redis+cluster://host:port[,host:port…]` (the seed nodes; the client discovers the rest), or a plain list of
nodes `host:port,host:port`. A cluster has no db numbers. Code that reads many keys at once calls `mget`
here, which works on both (a cluster answers a multi-key MGET only within one hash slot).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def cluster_nodes(url: str) -> list[tuple[str, int]] | None:
    """The seed nodes when `url` names a cluster (a redis+cluster:// URL or a host:port list), else None."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if sep and scheme not in CLUSTER_SCHEMES:
        return None
    if not sep:
        if "," not in text:
            return None
        rest = text
    hosts = rest.split("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_URL node {part!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def make_redis(url: str):
    nodes = cluster_nodes(url)
    if nodes is None:
        return redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
    parts = urlsplit(url if "://" in url else "redis+cluster://" + url)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes], decode_responses=False,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password else None,
                        ssl=parts.scheme.startswith("rediss"), health_check_interval=30)


def mget(client, names: list[str]) -> list:
    """MGET on one server; on a cluster, one MGET per slot (redis-py's mget_nonatomic), values in order."""
    if not names:
        return []
    if is_cluster(client):
        return client.mget_nonatomic(names)
    return client.mget(names)


def flush_all(client) -> None:
    """Empty the database (every primary of a cluster): the test harness and benchmarks."""
    if is_cluster(client):
        client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        client.flushdb()
