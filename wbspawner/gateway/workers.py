"""A Dask worker's share of a node: how many share one, and what each requests.

This module owns the one rule that splits a pool's node among the workers of a
size: ``workers_per_node`` of them, and on a GPU pool no more than the node has
GPUs (each worker gets whole GPUs). The pod's request
(:func:`worker_resources`, :mod:`~wbspawner.gateway.options` and
:mod:`~wbspawner.gateway.pods`) and the price a worker-hour is billed at (its
share of the node's price, :mod:`~wbspawner.gateway.billing` and the pod's
price annotation) both divide by :func:`workers_per_node`, so what a worker is
billed is the share of the node it asks for.

Pure: reads frozen model values only.
"""

from __future__ import annotations

from wbspawner.model import DaskWorkerSize, Pool, Resources


def workers_per_node(size: DaskWorkerSize, pool: Pool) -> int:
    """Return how many workers of a size share one node of its pool.

    ``workers_per_node`` of the size, and on a GPU pool no more than the node's
    GPUs (the profiles checks refuse more; this keeps a hand-built size sane).

    Args:
        size: the worker size.
        pool: its pool.

    Returns:
        At least 1; each worker gets ``1 /`` this of the node.
    """
    per_node = max(1, size.workers_per_node)
    if pool.is_gpu:
        per_node = min(per_node, pool.gpu_count)
    return per_node


def worker_resources(size: DaskWorkerSize, pool: Pool) -> Resources:
    """Return the request of one worker: its share of the pool's full-node request.

    CPU and memory are the node request divided by :func:`workers_per_node`
    (rounded down, so the workers always fit one node together). On a GPU pool
    each worker also gets ``gpu_count // workers_per_node`` whole GPUs: one GPU
    per worker when ``workers_per_node`` equals the node's GPUs.

    Args:
        size: the worker size.
        pool: its pool.

    Returns:
        The per-worker request.
    """
    per_node = workers_per_node(size, pool)
    return Resources(
        cpu_m=pool.request.cpu_m // per_node,
        memory_mib=pool.request.memory_mib // per_node,
        gpus=pool.gpu_count // per_node if pool.is_gpu else 0,
    )
