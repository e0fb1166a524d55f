"""Checks of the ``accounts`` table's household columns (docs/DATA.md, Households)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from models.account import ACCOUNT_TYPES

# account, model, asset, lot, field, problem (``validate.PROBLEM_COLUMNS``)
Problem = tuple[str | None, str | None, str | None, str | None, str, str]


def _ids(frame: pd.DataFrame, column: str) -> Iterator[tuple[str, str, str]]:
    """Yield account, model and ``column`` of each row, as text."""
    yield from zip(
        frame["account_id"].astype(str),
        frame["model_id"].astype(str),
        frame[column].astype(str),
        strict=True,
    )


def household_problems(accounts: pd.DataFrame) -> Iterator[Problem]:
    """Check ``account_type`` and that a household's accounts share one model."""
    if "account_type" in accounts:
        kind = accounts["account_type"]
        bad = kind.notna() & ~kind.astype(str).str.strip().isin(["", *ACCOUNT_TYPES])
        for aid, model, value in _ids(accounts[bad.to_numpy()], "account_type"):
            yield (
                aid,
                model,
                None,
                None,
                "account_type",
                f"must be one of {ACCOUNT_TYPES}, got {value}",
            )
    if "household_id" not in accounts:
        return
    members = accounts[household_ids(accounts).notna().to_numpy()]
    models = members.groupby(household_ids(members))["model_id"].nunique()
    mixed = members[household_ids(members).isin(models[models > 1].index).to_numpy()]
    for aid, model, hid in _ids(mixed, "household_id"):
        yield (
            aid,
            model,
            None,
            None,
            "household_id",
            f"the accounts of household {hid.strip()} follow different models",
        )


def household_ids(accounts: pd.DataFrame) -> pd.Series:
    """Return each account's household, NaN for none (an empty cell)."""
    if "household_id" not in accounts:
        return pd.Series(np.nan, index=accounts.index, dtype=object)
    text = accounts["household_id"].astype(str).str.strip()
    given = accounts["household_id"].notna() & (text != "")
    return text.where(given)


def spread_to_households(found: dict[str, list[str]], accounts: pd.DataFrame) -> None:
    """Add to ``found`` every account of a household that has an invalid account."""
    households = household_ids(accounts)
    member_of = dict(zip(accounts["account_id"].astype(str), households, strict=True))
    for aid, items in list(found.items()):
        hid = member_of.get(aid)
        if not isinstance(hid, str):
            continue
        for other in accounts.loc[(households == hid).to_numpy(), "account_id"]:
            if str(other) != aid:
                reason = f"household {hid}: account {aid} is invalid: {items[0]}"
                found.setdefault(str(other), []).append(reason)
