"""A household: several accounts of one family rebalanced by one program.

The program (``models.household``) chooses every account's trades together:
one tracking error for the household's total holdings, tax only where sales
are taxed, each asset traded one way across the household, wash sales
checked across its accounts, and each account's cash kept at its own floor.
Orders are then rounded account by account, each against what the
household's target leaves to it once the other accounts' holdings are
counted, and verified per account and for the household.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from models import (
    GainBudget,
    LinearCost,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TaxDrag,
    TrackingError,
    WashSaleRule,
)
from models._align import by_asset
from models.account import Account
from models.errors import InputError
from models.household import (
    AccountCash,
    AccountRestrictions,
    HouseholdTurnover,
    HouseholdWashSales,
    Joint,
    joint_snapshot,
)
from models.market import Market
from models.rules import at_a_loss
from models.snapshot import Targets, build_snapshot
from models.terms import Constraint, Term, TradeMask, TradeRule
from solver.errors import InfeasibleError, SolverFailedError
from solver.household.result import HouseholdResult, household_result, unsolved
from solver.household.rounding import round_accounts
from solver.program.continuous import check_objective, optimize, split_constraints
from solver.result import SolveOptions, Status

HOUSEHOLD_TERMS = (TrackingError, LinearCost, TaxCost, TaxDrag)
HOUSEHOLD_CONSTRAINTS = (
    MaxTurnover,
    MaxTrackingError,
    GainBudget,
    MinCash,
    NoBuyAndSell,
    WashSaleRule,
)
ACCOUNT_CONSTRAINTS = (MinCash, Restrictions)


def rebalance_household(
    household_id: str,
    accounts: Sequence[Account],
    *,
    targets: Targets,
    market: Market,
    objective: Sequence[Term],
    constraints: Sequence[Constraint | TradeRule] = (),
    account_constraints: Mapping[str, Sequence[Constraint | TradeRule]] | None = None,
    options: SolveOptions | None = None,
) -> HouseholdResult:
    """Rebalance a household's accounts together towards one target.

    Parameters
    ----------
    household_id : str
        Names the household in messages and outputs.
    accounts : sequence of Account
        The household's accounts; ``Account.account_type`` says which are
        taxed. Each keeps its own cash, lots, tax rates and cash flow.
    targets : pd.Series, dict or pd.DataFrame
        The household's target weights (``CASH`` allowed), summing to 1.
    market : Market
        Prices (a ``tax_drag`` column feeds ``TaxDrag``) and risk model.
    objective : sequence of Term
        ``TrackingError`` (of the household's holdings), ``LinearCost``,
        ``TaxCost`` (taxable accounts only) and ``TaxDrag`` (asset
        location).
    constraints : sequence of Constraint or TradeRule
        For the household as a whole: ``MaxTurnover``,
        ``MaxTrackingError``, ``GainBudget``, ``NoBuyAndSell`` (no asset
        bought in one account and sold in another), ``WashSaleRule``
        (across the accounts' recent trades and lots); ``MinCash(f)``
        keeps ``f`` of each account's own value in its cash.
    account_constraints : mapping of account id to constraints
        ``MinCash`` and ``Restrictions`` of single accounts.
    options : SolveOptions or None
        As for :func:`solver.rebalance`; ``buy_any`` is not supported.

    Raises
    ------
    InputError
        Bad input, naming the account, asset, lot and field; a term or
        constraint a household does not support.
    VerificationError
        The orders broke a hard constraint of an account or the household.
    """
    start = time.perf_counter()
    options = options or SolveOptions()
    per_account = dict(account_constraints or {})
    _check_accounts(household_id, accounts, per_account, options)
    objective = check_objective(objective, household_id)
    _check_kinds(objective, HOUSEHOLD_TERMS, household_id, "objective")
    plain, rules = split_constraints(constraints, household_id)
    _check_kinds([*plain, *rules], HOUSEHOLD_CONSTRAINTS, household_id, "constraints")
    weights = by_asset(targets, "weight", table="targets", account_id=household_id)
    held = {str(asset) for a in accounts for asset in a.lots["asset"]}
    held = held & set(market.prices.index)  # an unpriced one names its own account
    joint = joint_snapshot(
        household_id,
        [build_snapshot(a, weights, market, include=sorted(held)) for a in accounts],
    )
    floors = _cash_floors(joint, plain, per_account)
    joint_rules = _joint_rules(joint, rules, per_account)
    joint_plain: list[Constraint] = [
        HouseholdTurnover(joint, c.limit) if isinstance(c, MaxTurnover) else c
        for c in plain
        if not isinstance(c, MinCash)
    ]
    joint_plain.append(AccountCash(joint, floors))
    try:
        optimum = optimize(joint.snapshot, objective, joint_plain, joint_rules, options)
        results = round_accounts(  # whole orders may be infeasible too
            joint, accounts, optimum, objective, plain, floors, joint_rules, options
        )
    except (InfeasibleError, SolverFailedError) as exc:
        infeasible = isinstance(exc, InfeasibleError)
        status = Status.INFEASIBLE if infeasible else Status.FAILED
        return unsolved(joint, accounts, objective, status, str(exc), start)
    return household_result(
        joint, accounts, optimum, objective, joint_plain, results, start
    )


def _check_accounts(
    household_id: str,
    accounts: Sequence[Account],
    per_account: Mapping[str, Sequence[Constraint | TradeRule]],
    options: SolveOptions,
) -> None:
    """Reject an empty household, repeated or unknown ids, and ``buy_any``."""
    if not accounts:
        raise InputError("a household needs at least one account", field="accounts")
    ids = [a.account_id for a in accounts]
    repeated = {i for i in ids if ids.count(i) > 1}
    if repeated:
        raise InputError(
            f"account appears twice in household {household_id!r}",
            account_id=sorted(repeated)[0],
            field="account_id",
        )
    unknown = sorted(set(per_account) - set(ids))
    if unknown:
        raise InputError(
            f"account_constraints for an account not in household {household_id!r}",
            account_id=unknown[0],
            field="account_constraints",
        )
    for aid, items in per_account.items():
        _check_kinds(list(items), ACCOUNT_CONSTRAINTS, aid, "account_constraints")
    if options.buy_any:
        raise InputError("buy_any is not supported for a household", field="buy_any")


def _check_kinds(
    items: Sequence[object], kinds: tuple[type, ...], owner: str, field: str
) -> None:
    """Reject a term or constraint the household program does not support."""
    for item in items:
        if not isinstance(item, kinds):
            known = ", ".join(k.__name__ for k in kinds)
            raise InputError(
                f"{type(item).__name__} is not supported here (supported: {known})",
                account_id=owner,
                field=field,
            )


def _cash_floors(
    joint: Joint,
    plain: Sequence[Constraint],
    per_account: Mapping[str, Sequence[Constraint | TradeRule]],
) -> np.ndarray:
    """Return each account's cash floor, a fraction of the household's value."""
    shared = max((c.fraction for c in plain if isinstance(c, MinCash)), default=0.0)
    own = []
    for account in joint.accounts:
        given = per_account.get(account.account_id, ())
        fractions = [c.fraction for c in given if isinstance(c, MinCash)]
        own.append(max([shared, *fractions]))
    floors: np.ndarray = np.array(own) * joint.scale
    return floors


def _joint_rules(
    joint: Joint,
    rules: Sequence[TradeRule],
    per_account: Mapping[str, Sequence[Constraint | TradeRule]],
) -> list[TradeRule]:
    """Return the accounts' restrictions and the household's wash sales as masks."""
    s = joint.snapshot
    out: list[TradeRule] = []
    restricted = TradeMask.everything(s)
    given = False
    for account, entries, lots in zip(
        joint.accounts, joint.entries, joint.lots, strict=True
    ):
        for item in per_account.get(account.account_id, ()):
            if isinstance(item, Restrictions):
                mask = item.mask(account)
                restricted.can_buy[entries] &= mask.can_buy
                restricted.can_sell[lots] &= mask.can_sell
                restricted.must_sell[lots] |= mask.must_sell
                given = True
    if given:
        out.append(AccountRestrictions(restricted))
    for rule in rules:
        if isinstance(rule, WashSaleRule):
            out.append(HouseholdWashSales(household_wash_mask(joint, rule)))
    return out


def household_wash_mask(joint: Joint, rule: WashSaleRule) -> TradeMask:
    """Forbid the buys and loss sales that would wash across the accounts.

    A loss sold in a taxable account in the window blocks buys of the asset
    in every account (an IRA's buy washes it too); a purchase in any
    account in the window blocks selling the asset's taxable loss lots.
    """
    s = joint.snapshot
    n = joint.accounts[0].n_assets
    losses, bought = np.zeros(n, bool), np.zeros(n, bool)
    for account in joint.accounts:
        sold_at_loss, purchased = rule.recent(account)
        losses |= sold_at_loss & account.taxable
        bought |= purchased
    mask = TradeMask.everything(s)
    assert s.group is not None  # joint snapshots have groups
    mask.can_buy[losses[s.group]] = False
    taxable = np.concatenate(
        [np.full(a.n_lots, a.taxable) for a in joint.accounts]
    ).astype(bool)
    blocked = bought[s.group[s.lot_asset]] & at_a_loss(s) & taxable
    mask.can_sell[blocked] = False
    return mask
