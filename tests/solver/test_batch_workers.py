"""Batch workers receive the market once each, not with every chunk.

The market is counted wherever it is pickled (the parent, a Dask worker
passing it on): a ``Market`` subclass appends a line to a file each time.
"""

import os

import pytest

import solver.batch.engine
import solver.batch.jobs
from models import Market
from solver.batch.config import RunConfig
from solver.batch.engine import rebalance_batch
from solver.result import ANSWERED
from tests.solver.batch_data import AS_OF, write_batch

CONFIG = RunConfig(as_of=AS_OF, max_turnover=0.1)
LOG = "TEST_MARKET_PICKLES"  # environment variable: the file counting pickles
ACCOUNTS = 8  # one chunk each, four times the workers


class CountedMarket(Market):
    """A market that notes each time it is pickled, in any process."""

    def __reduce_ex__(self, protocol):
        with open(os.environ[LOG], "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().__reduce_ex__(protocol)


@pytest.fixture
def pickles(tmp_path, monkeypatch):
    """Run batches of one account per chunk; return a count of market pickles."""
    log = tmp_path / "pickles.log"
    log.touch()
    monkeypatch.setenv(LOG, str(log))
    monkeypatch.setattr(solver.batch.jobs, "Market", CountedMarket)
    monkeypatch.setattr(solver.batch.engine, "MAX_CHUNK", 1)
    write_batch(tmp_path / "in", n_accounts=ACCOUNTS, n_assets=10)
    return lambda: len(log.read_text().splitlines())


def test_batch_sends_the_market_once_to_each_local_worker(tmp_path, pickles):
    report = rebalance_batch(
        tmp_path / "in", tmp_path / "out", config=CONFIG, workers=2
    )
    assert len(report.summary) == ACCOUNTS
    assert report.summary["status"].isin(ANSWERED).all()
    assert 1 <= pickles() <= 2  # at most one per worker, not one per chunk


def test_batch_sends_the_market_once_to_each_dask_worker(tmp_path, pickles):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        report = rebalance_batch(
            tmp_path / "in",
            tmp_path / "out",
            config=CONFIG,
            scheduler=cluster.scheduler_address,
        )
    assert len(report.summary) == ACCOUNTS
    assert report.summary["status"].isin(ANSWERED).all()
    assert 1 <= pickles() <= 2
