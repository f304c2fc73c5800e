"""The dask engine: work units as tasks on a Dask cluster (`dask.distributed`), results gathered in unit order.

`--scheduler tcp://host:port` uses a running cluster: every worker needs the same costscope and genai-prices
versions (checked when the engine starts) and must read the dataset at the same path (a shared file system).
Without it, a `LocalCluster` of one single-threaded worker process per core is started for the run and stopped
after it; each worker's memory limit is its share of the machine's memory ("auto").

Nothing partial is ever reported: tasks are submitted with `retries=0`; the local cluster's scheduler gives a task
up at the first worker that dies running it (`distributed.scheduler.allowed-failures: 0`: a worker killed, or
stopped by its nanny over its memory limit), which fails the run with an error naming the part of the dataset; and
the client checks that every unit returned the rows the manifest lists. A running cluster's own `allowed-failures`
decides whether a task first re-runs on another worker; a re-run recomputes the unit whole, so no figure is ever
counted twice or left out.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any, TypeVar

import dask
import distributed
from distributed import KilledWorker

from .. import __version__
from ..errors import ConfigError, CostscopeError

T = TypeVar("T")
R = TypeVar("R")
_dd: Any = distributed
"""`distributed` without type hints: its classes are used through Any."""


def worker_versions() -> tuple[str, str]:
    """(costscope, genai-prices) versions of the process that runs this."""
    return __version__, version("genai-prices")


class DaskEngine:
    name = "dask"

    def __init__(
        self, scheduler: str | None = None, workers: int | None = None, memory_limit: str | float = "auto"
    ) -> None:
        self.cluster: Any = None
        self.client: Any
        try:
            if scheduler is not None:
                self.client = _dd.Client(scheduler, timeout="30s")
            else:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = _dd.LocalCluster(
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        memory_limit=memory_limit,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                self.client = _dd.Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler {scheduler}: {exc}",
                hint="start one with 'dask scheduler' and workers with 'dask worker tcp://HOST:8786'",
            ) from None
        try:
            self._check_workers(scheduler)
        except BaseException:
            self.close()
            raise

    def _check_workers(self, scheduler: str | None) -> None:
        try:
            versions: dict[str, Any] = self.client.run(worker_versions)
        except Exception as exc:
            raise ConfigError(
                f"costscope does not run on the Dask workers of {scheduler}: {exc}",
                hint=f"install costscope {__version__} on every worker",
            ) from None
        if not versions:
            raise ConfigError(f"the Dask cluster {scheduler} has no workers", hint="start some: dask worker ADDRESS")
        mine = worker_versions()
        for address, theirs in sorted(versions.items()):
            if tuple(theirs) != mine:
                raise ConfigError(
                    f"Dask worker {address} runs costscope {theirs[0]} with genai-prices {theirs[1]}; this client "
                    f"runs costscope {mine[0]} with genai-prices {mine[1]}: their figures would differ",
                    hint="install the same versions on the client and every worker",
                )

    def map(self, fn: Callable[[T], R], items: Sequence[T], labels: Sequence[str]) -> list[R]:
        """`fn` on every item as Dask tasks; the results in item order, or an error (never a partial list)."""
        if not items:
            return []
        token = uuid.uuid4().hex[:12]
        keys = [f"costscope-{token}-{i}" for i in range(len(items))]
        futures = self.client.map(fn, list(items), key=keys, retries=0, pure=False)
        try:
            results: list[R] = self.client.gather(futures, errors="raise")
        except KilledWorker as exc:
            task = getattr(exc, "task", None)
            label = labels[keys.index(task)] if task in keys else "a part of the dataset"
            raise CostscopeError(
                f"a Dask worker died while processing {label}: the run is incomplete, so it reports nothing",
                hint="a worker over its memory limit is stopped by its nanny: give the workers more memory "
                "or run more of them",
            ) from None
        except (OSError, TimeoutError) as exc:
            raise CostscopeError(f"lost the Dask cluster during the run: {exc}; nothing is reported") from None
        finally:
            self.client.cancel(futures)
        if len(results) != len(items):
            raise CostscopeError(f"Dask returned {len(results)} results for {len(items)} parts: nothing is reported")
        return results

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
