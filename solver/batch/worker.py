"""The worker side of a local batch: the market arrives once, not with each chunk.

A process pool starts each worker with ``hold(market)`` (its initializer);
``solve_held`` then solves chunks against that market, so the parent pickles
the market once per worker instead of once per chunk, and the market's
per-universe cache lives as long as the worker.
"""

from __future__ import annotations

import pandas as pd

from models import Market
from solver.batch.chunks import Job, solve_chunk

# This worker process's market. The one piece of module state in the package:
# a pool initializer can hand a value to later tasks in no other way, and it
# is only ever set in a worker process, never in the parent.
_HELD: dict[str, Market] = {}


def hold(market: Market) -> None:
    """Keep ``market`` for the chunks this worker process will solve."""
    _HELD["market"] = market


def solve_held(jobs: list[Job]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Solve a chunk against the held market (``jobs.solve_chunk``)."""
    return solve_chunk(_HELD["market"], jobs)
