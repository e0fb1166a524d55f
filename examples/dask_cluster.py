"""Run a batch on a ``dask.distributed`` cluster and check it matches a local run.

Starts a scheduler and two single-threaded worker processes on this machine
(``LocalCluster``), runs the first accounts of the bundled batch on it with
``scheduler=cluster.scheduler_address``, runs the same accounts in this
process, and compares the two summaries and trade lists. Orders are rounded
with the greedy method, which is deterministic (the mixed-integer rounding
stops at a time limit, so under load its answer can change from run to run).
On a real cluster, pass the scheduler's address instead (``rebalance batch
IN_DIR --out OUT_DIR --scheduler tcp://host:8786``); the workers need this
package installed. Needs the ``dask`` extra.
"""

import tempfile
from pathlib import Path

import pandas as pd
from distributed import LocalCluster

from solver.batch import RunConfig, rebalance_batch

DATA = Path(__file__).resolve().parent / "data"
ACCOUNTS = 14  # the first accounts of the bundled batch, two of them invalid
PER_ACCOUNT = ("accounts", "lots", "restrictions", "recent_trades")
TRADE_ORDER = ["account_id", "side", "asset", "lot_id"]


def first_accounts(in_dir: Path, out_dir: Path, count: int | None) -> Path:
    """Copy the batch in ``in_dir`` to ``out_dir``, keeping ``count`` accounts."""
    out_dir.mkdir(parents=True)
    keep = pd.read_parquet(in_dir / "accounts.parquet")["account_id"].iloc[:count]
    for path in in_dir.iterdir():
        if path.suffix != ".parquet":  # config.toml
            (out_dir / path.name).write_bytes(path.read_bytes())
            continue
        table = pd.read_parquet(path)
        if path.stem in PER_ACCOUNT:
            table = table[table["account_id"].isin(keep)]
        table.to_parquet(out_dir / path.name, index=False)
    return out_dir


def comparable(summary: pd.DataFrame) -> pd.DataFrame:
    """Drop the timings, which differ from run to run."""
    return summary.drop(columns=["solve_seconds"]).reset_index(drop=True)


def sorted_trades(out_dir: Path) -> pd.DataFrame:
    """Read the trades in a fixed order (a batch writes chunks as they finish)."""
    trades = pd.read_parquet(out_dir / "trades.parquet")
    return trades.sort_values(TRADE_ORDER, na_position="first").reset_index(drop=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        in_dir = first_accounts(DATA, root / "in", ACCOUNTS)
        config = RunConfig.load(in_dir / "config.toml", {"rounding": "greedy"})
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster:
            print(f"scheduler at {cluster.scheduler_address}, 2 workers")
            remote = rebalance_batch(
                in_dir,
                root / "dask",
                config=config,
                scheduler=cluster.scheduler_address,
            )
        print(f"cluster run: {len(remote.summary)} accounts in {remote.seconds:.1f} s")
        local = rebalance_batch(in_dir, root / "local", config=config, workers=1)
        print(f"local run:   {len(local.summary)} accounts in {local.seconds:.1f} s")

        pd.testing.assert_frame_equal(
            comparable(remote.summary), comparable(local.summary)
        )
        pd.testing.assert_frame_equal(
            sorted_trades(root / "dask"), sorted_trades(root / "local")
        )
        trades = sorted_trades(root / "dask")

    print("summary matches the local run")
    print(f"trades match the local run: {len(trades)} orders")
    for status, count in remote.summary["status"].value_counts().items():
        print(f"  {status}: {count}")


if __name__ == "__main__":
    main()
