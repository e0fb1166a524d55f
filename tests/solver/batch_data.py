"""Small batches written to disk for the batch tests."""

from pathlib import Path

import pandas as pd

from models.synthetic import synthetic_account, synthetic_market, synthetic_targets

AS_OF = "2026-11-24"


def batch_tables(
    *,
    n_accounts: int = 12,
    n_assets: int = 25,
    n_holdings: int | None = None,
    n_factors: int = 4,
    seed: int = 3,
) -> dict[str, pd.DataFrame]:
    """Return the input tables of a valid batch (two models, ``B000``...)."""
    market = synthetic_market(n_assets, n_factors=n_factors, seed=seed, as_of=AS_OF)
    holdings = n_assets - 5 if n_holdings is None else n_holdings
    models = {
        f"M{k}": synthetic_targets(market, seed=k, n_holdings=holdings)
        for k in range(2)
    }
    accounts, lots = [], []
    for i in range(n_accounts):
        aid, model = f"B{i:03d}", f"M{i % 2}"
        acct = synthetic_account(
            market, models[model], account_id=aid, value=2e5 + 1e4 * i, seed=i
        )
        accounts.append({"account_id": aid, "model_id": model, "cash": acct.cash})
        lots.append(acct.lots.assign(account_id=aid))
    risk = market.risk_model
    return {
        "accounts": pd.DataFrame(accounts),
        "lots": pd.concat(lots, ignore_index=True),
        "targets": pd.concat(
            [
                w.rename("weight").reset_index().assign(model_id=m)
                for m, w in models.items()
            ],
            ignore_index=True,
        ),
        "prices": market.prices.reset_index(),
        "factor_loadings": risk.loadings.rename_axis("asset").reset_index(),
        "factor_covariance": risk.factor_covariance.rename_axis("factor").reset_index(),
        "specific_risk": risk.specific_variance.rename("variance")
        .rename_axis("asset")
        .reset_index(),
    }


def write_batch(
    directory: Path, *, n_accounts: int = 12, n_assets: int = 25, fmt: str = "parquet"
) -> dict[str, pd.DataFrame]:
    """Write a batch of ``n_accounts`` on ``n_assets`` assets; return its tables."""
    tables = batch_tables(n_accounts=n_accounts, n_assets=n_assets)
    save(directory, tables, fmt=fmt)
    (directory / "config.toml").write_text(f'as_of = "{AS_OF}"\nmax_turnover = 0.1\n')
    return tables


def save(
    directory: Path, tables: dict[str, pd.DataFrame], *, fmt: str = "parquet"
) -> None:
    """Write tables as ``NAME.parquet`` or ``NAME.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
