"""Write the bundled example batch: 200 accounts on a 100-asset universe.

Three model portfolios, accounts of $50k to $5M that drifted from their
model, 1-8 tax lots per holding with gains and losses, a few restrictions
and recent trades, a deposit and a withdrawal, eight households of two or
three accounts (taxable and tax-advantaged) solved together, a
``config.toml``, and two accounts with bad data to show how a batch reports
them. Run ``python examples/make_example_data.py`` to
regenerate ``examples/data``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from models.synthetic import synthetic_account, synthetic_market, synthetic_targets

OUT = Path(__file__).resolve().parent / "data"
N_ASSETS, N_ACCOUNTS, N_MODELS = 100, 200, 3
CONFIG = """\
# Run-wide settings; CLI flags override them, accounts-table columns override both.
as_of = "2026-11-24"
tracking_error_weight = 100.0
loss_factor = 0.5
max_turnover = 0.10
min_cash = 0.005
rounding = "auto"
"""


def main(out: Path = OUT) -> None:
    rng = np.random.default_rng(2026)
    market = synthetic_market(N_ASSETS, n_factors=10, seed=7, as_of="2026-11-24")
    risk = market.risk_model
    models = {
        f"M{k}": synthetic_targets(market, seed=k, n_holdings=int(rng.integers(40, 80)))
        for k in range(N_MODELS)
    }
    accounts, lots = [], []
    for i in range(N_ACCOUNTS):
        aid = f"ACC{i:04d}"
        model = f"M{i % N_MODELS}"
        value = float(np.exp(rng.uniform(np.log(5e4), np.log(5e6))))
        account = synthetic_account(
            market,
            models[model],
            account_id=aid,
            value=value,
            seed=100 + i,
            cash_fraction=float(rng.uniform(0.0, 0.05)),
        )
        accounts.append(
            {"account_id": aid, "model_id": model, "cash": round(account.cash, 2)}
        )
        lots.append(account.lots.assign(account_id=aid))
    accounts_table = pd.DataFrame(accounts)
    accounts_table.loc[7, "max_turnover"] = 0.25  # per-account override
    accounts_table["cash_flow"] = np.nan
    accounts_table.loc[150, "cash_flow"] = 100_000.0  # a deposit to invest
    accounts_table.loc[151, "cash_flow"] = -20_000.0  # a withdrawal to raise
    # eight households of the last accounts: a taxable account and one or two
    # tax-advantaged ones, all on the first account's model
    accounts_table["household_id"] = None
    accounts_table["account_type"] = "taxable"
    start = N_ACCOUNTS - 20
    for h, size in enumerate([2, 3, 2, 3, 2, 3, 2, 3]):
        rows = list(range(start, start + size))
        start += size
        accounts_table.loc[rows, "household_id"] = f"HH{h:02d}"
        accounts_table.loc[rows, "model_id"] = accounts_table.loc[rows[0], "model_id"]
        accounts_table.loc[rows[1], "account_type"] = "tax_deferred"
        if size == 3:
            accounts_table.loc[rows[2], "account_type"] = "tax_exempt"
    accounts_table.loc[11, "model_id"] = "M9"  # bad: no such model
    lots_table = pd.concat(lots, ignore_index=True)
    lots_table.loc[lots_table["account_id"] == "ACC0013", "cost_basis"] = np.nan  # bad
    targets = pd.concat(
        [w.rename("weight").reset_index().assign(model_id=m) for m, w in models.items()]
    )
    prices = market.prices.reset_index()
    restricted = rng.choice(accounts_table["account_id"], 10, replace=False)
    held = lots_table.drop_duplicates(["account_id", "asset"])
    restrictions = (
        held[held["account_id"].isin(restricted)].groupby("account_id").head(1)
    )
    restrictions = restrictions[["account_id", "asset"]].assign(
        rule=rng.choice(["no_buy", "no_sell", "liquidate"], len(restrictions))
    )
    recent = held.sample(15, random_state=1)[["account_id", "asset"]].assign(
        date="2026-11-10",
        side="sell",
        quantity=10.0,
        price=np.nan,
        realized_gain=-250.0,
    )
    tables = {
        "accounts": accounts_table,
        "lots": lots_table[
            ["account_id", "asset", "lot_id", "quantity", "cost_basis", "acquired"]
        ],
        "targets": targets[["model_id", "asset", "weight"]],
        "prices": prices,
        "factor_loadings": risk.loadings.rename_axis("asset").reset_index(),
        "factor_covariance": risk.factor_covariance.rename_axis("factor").reset_index(),
        "specific_risk": risk.specific_variance.rename("variance")
        .rename_axis("asset")
        .reset_index(),
        "restrictions": restrictions,
        "recent_trades": recent,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    (out / "config.toml").write_text(CONFIG)
    print(f"wrote {len(tables)} tables and config.toml to {out}")


if __name__ == "__main__":
    main()
