"""Tables in, orders out: one account through ``solver.rebalance``.

The inputs are plain DataFrames with the column names of the batch data
contract (``prices``, ``lots``, ``targets`` and the three risk-model tables),
here typed in by hand for six assets. The result is tables again: the orders,
a summary row, the weights before and after, and each constraint's slack and
dual. A drift-band trigger then shows when the account is left alone.
"""

import pandas as pd

import solver
from models import (
    Account,
    FactorRiskModel,
    LinearCost,
    Market,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from solver.triggers import DriftBands

AS_OF = "2026-11-24"


def market_tables() -> dict[str, pd.DataFrame]:
    """Return the market-wide tables: prices and a two-factor risk model."""
    assets = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
    prices = pd.DataFrame(
        {
            "asset": assets,
            "price": [182.50, 41.20, 97.75, 310.00, 23.10, 64.40],
            "lot_size": 1.0,
            "min_trade_value": 100.0,
            "cost_bps": [5.0, 8.0, 5.0, 4.0, 15.0, 10.0],
            "sector": ["tech", "energy", "health", "tech", "materials", "consumer"],
        }
    )
    factor_loadings = pd.DataFrame(
        {
            "asset": assets,
            "market": [1.15, 0.95, 0.80, 1.20, 1.05, 0.90],
            "growth": [0.60, -0.40, 0.10, 0.70, -0.30, 0.00],
        }
    )
    factor_covariance = pd.DataFrame(
        {
            "factor": ["market", "growth"],
            "market": [0.0256, 0.0],  # annual variances: 16% and 5% volatility
            "growth": [0.0, 0.0025],
        }
    )
    specific_risk = pd.DataFrame(
        {"asset": assets, "variance": [0.04, 0.06, 0.03, 0.05, 0.09, 0.04]}
    )
    return {
        "prices": prices,
        "factor_loadings": factor_loadings,
        "factor_covariance": factor_covariance,
        "specific_risk": specific_risk,
    }


def account_tables() -> dict[str, pd.DataFrame]:
    """Return one account's tax lots and its model portfolio."""
    lots = pd.DataFrame(
        [
            # asset, lot_id, quantity, cost_basis, acquired
            ("AAA", "L1", 400.0, 95.00, "2019-03-04"),  # large long-term gain
            ("AAA", "L2", 150.0, 190.00, "2026-06-02"),  # small short-term loss
            ("BBB", "L3", 900.0, 52.30, "2024-01-15"),  # long-term loss
            ("CCC", "L4", 500.0, 88.00, "2022-09-30"),
            ("DDD", "L5", 120.0, 250.00, "2021-05-21"),
            ("DDD", "L6", 60.0, 335.00, "2026-08-11"),  # short-term loss
            ("EEE", "L7", 1500.0, 25.00, "2023-02-10"),
            ("FFF", "L8", 600.0, 58.90, "2025-12-01"),
        ],
        columns=["asset", "lot_id", "quantity", "cost_basis", "acquired"],
    )
    targets = pd.DataFrame(
        {
            "model_id": "BALANCED",
            "asset": ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"],
            "weight": [0.25, 0.14, 0.18, 0.18, 0.10, 0.14],  # 1% stays in cash
        }
    )
    return {"lots": lots, "targets": targets}


def main() -> None:
    tables = market_tables()
    market = Market(
        as_of=pd.Timestamp(AS_OF),
        prices=tables["prices"],
        risk_model=FactorRiskModel.from_tables(
            tables["factor_loadings"],
            tables["factor_covariance"],
            tables["specific_risk"],
        ),
    )
    mine = account_tables()
    account = Account("DEMO-2", cash=9_000.0, lots=mine["lots"])
    targets = mine["targets"].set_index("asset")["weight"]
    targets.loc["CASH"] = 1.0 - targets.sum()

    objective = (TrackingError(weight=100.0), LinearCost(), TaxCost(loss_factor=0.5))
    constraints = (MaxTurnover(0.05), MinCash(0.005), NoBuyAndSell(), WashSaleRule())
    options = solver.SolveOptions(solver="CLARABEL", fallback=("SCS",), rounding="milp")
    result = solver.rebalance(
        account,
        targets=targets,
        market=market,
        objective=objective,
        constraints=constraints,
        options=options,
    )

    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(f"status: {result.status}")
        print("\nOrders (one row per buy and per lot sold)")
        print(result.trades.round(2).to_string(index=False))
        print("\nSummary")
        print(result.summary.to_string())
        print("\nWeights: current, target, continuous optimum, after the orders")
        print(result.weights.round(4).to_string())
        print("\nConstraints: slack and dual (a binding constraint has ~0 slack)")
        print(result.constraints.to_string(float_format=lambda x: f"{x:.3g}"))

    named = result.constraints.reindex([c.name for c in constraints]).dropna()
    binding = named.index[(named["slack"] < 1e-6) & (named["dual"] > 1e-6)]
    print(f"\nbinding: {', '.join(binding) or 'none'}")
    gap = (result.weights["after"] - result.weights["target"]).abs()
    print(f"largest gap to target after the orders: {gap.max():.2%} ({gap.idxmax()})")

    # Triggers decide whether to trade at all. The largest drift here is
    # about 6 points, so 5-point bands fire and 10-point bands do not.
    for band in (0.05, 0.10):
        checked = solver.rebalance(
            account,
            targets=targets,
            market=market,
            objective=objective,
            constraints=constraints,
            options=options,
            trigger=DriftBands(absolute=band),
        )
        print(f"\nWith {band:.0%} drift bands -> status: {checked.status}")
        print(f"  {checked.message or 'trigger fired; orders as above'}")


if __name__ == "__main__":
    main()
