"""Rebalance one synthetic account and print its orders and summary."""

import pandas as pd

import solver
from models import (
    LinearCost,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets


def main() -> None:
    market = synthetic_market(100, n_factors=10, seed=1)
    targets = synthetic_targets(market, seed=1, n_holdings=60)
    account = synthetic_account(market, targets, account_id="DEMO-1", seed=1)
    result = solver.rebalance(
        account,
        targets=targets,
        market=market,
        objective=(TrackingError(weight=100.0), LinearCost(), TaxCost(loss_factor=0.5)),
        constraints=(MaxTurnover(0.05), MinCash(0.005), NoBuyAndSell(), WashSaleRule()),
    )
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(f"status: {result.status}")
        print(result.trades.round(2).to_string(index=False, max_rows=20))
        print()
        print(result.summary.to_string())
        print()
        print(result.constraints.to_string())


if __name__ == "__main__":
    main()
