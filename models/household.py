"""Several accounts of one family as one program: the joint snapshot.

The household's universe holds one entry per (account, asset), so every
account keeps its own lots, trades and orders, while the tracking error is
that of the household's total holdings: the risk root is ``[G; diag(sqrt
d)] M`` with ``M`` summing the entries of one asset, and a target split in
proportion to the accounts' values (any split gives the same tracking
error, which only sees ``M w``). Cash is pooled in the snapshot;
``AccountCash`` keeps each account's own cash at its floor, since money
does not move between accounts. Every quantity is a fraction of the
household's value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.errors import InputError
from models.risk import RiskRoot
from models.snapshot import Snapshot
from models.terms import Expr, Outcome, ProgramVars, Row, TradeMask, one_way_turnover

MAX_FLOW_ACCOUNTS = 5  # MaxTurnover's rows double twice with each such account

SEPARATOR = "/"  # between account and asset in the joint universe's labels


@dataclass(frozen=True)
class Joint:
    """A household's joint snapshot and where each account sits in it."""

    snapshot: Snapshot
    accounts: tuple[Snapshot, ...]  # each account alone, on one universe
    scale: np.ndarray  # each account's share of the household's value
    entries: tuple[slice, ...]  # each account's universe entries
    lots: tuple[slice, ...]  # each account's lots

    @cached_property
    def membership(self) -> sp.csr_array:
        """Return the (accounts x entries) 0/1 matrix of who holds which entry."""
        n = self.accounts[0].n_assets
        rows = np.repeat(np.arange(len(self.accounts)), n)
        return sp.csr_array(
            (np.ones(len(rows)), (rows, np.arange(len(rows)))),
            shape=(len(self.accounts), len(rows)),
        )

    @cached_property
    def cash_before(self) -> np.ndarray:
        """Return each account's cash before trading, fraction of the household."""
        cash: np.ndarray = np.array([a.cash for a in self.accounts]) * self.scale
        return cash

    @cached_property
    def flows(self) -> tuple[np.ndarray, np.ndarray]:
        """Return each account's deposit and withdrawal, fraction of the household."""
        deposit = np.array([a.deposit for a in self.accounts]) * self.scale
        return deposit, np.array([a.withdrawal for a in self.accounts]) * self.scale

    def turnover(self, o: Outcome) -> float:
        """Return the household's one-way turnover: its accounts' own, summed.

        Each account's trades less its own cash flow's (``Outcome.turnover``,
        in the household's value): a sale in one account does not raise
        another's withdrawal.
        """
        bought, sold = self.membership @ o.buys, self.membership @ o.sells
        return float(one_way_turnover(bought, sold, *self.flows).sum())

    def cash_after(self, o: Outcome) -> np.ndarray:
        """Return each account's cash after an outcome, fraction of the household."""
        spent = o.buys - o.sells + self.snapshot.cost_rate * o.traded
        after: np.ndarray = self.cash_before - self.membership @ spent
        return after


def joint_snapshot(household_id: str, accounts: Sequence[Snapshot]) -> Joint:
    """Stack accounts that share one universe into the household's snapshot.

    Raises
    ------
    InputError
        When the accounts' universes, dates or targets differ (a bug in the
        caller: they are built on the household's universe and target).
    """
    first = accounts[0]
    for other in accounts[1:]:
        same = other.universe.equals(first.universe) and other.as_of == first.as_of
        if not same or not np.array_equal(other.target, first.target):
            raise InputError(
                "accounts of a household must share universe, date and target",
                account_id=other.account_id,
            )
    value = sum(a.value for a in accounts)
    scale = np.array([a.value / value for a in accounts])
    n, k = first.n_assets, len(accounts)
    universe = pd.Index(
        [f"{a.account_id}{SEPARATOR}{asset}" for a in accounts for asset in a.universe],
        name="asset",
    )
    sizes = np.cumsum([0, *(a.n_lots for a in accounts)])

    shares = list(zip(accounts, scale, strict=True))

    def tile(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name) for a in accounts])

    def scaled(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name) * f for a, f in shares])

    def total(name: str) -> float:
        return float(sum(getattr(a, name) * f for a, f in shares))

    lots = pd.concat(
        [
            a.lots.assign(
                asset=universe[j * n + a.lot_asset],
                lot_id=a.account_id + SEPARATOR + a.lots["lot_id"].astype(str),
            )
            for j, a in enumerate(accounts)
        ],
        ignore_index=True,
    )
    lot_asset = np.concatenate(
        [j * n + a.lot_asset for j, a in enumerate(accounts)]
    ).astype(int)
    snapshot = Snapshot(
        account_id=household_id,
        as_of=first.as_of,
        universe=universe,
        value=value,
        cash=total("cash"),
        prices=tile("prices"),
        current=scaled("current"),
        target=scaled("target"),
        target_cash=first.target_cash,
        cost_rate=tile("cost_rate"),
        lot_size=tile("lot_size"),
        min_trade_value=tile("min_trade_value"),
        tax_drag=tile("tax_drag"),
        impact_scale=tile("impact_scale"),
        sector=pd.Series(np.tile(first.sector.to_numpy(), k), index=universe),
        risk=_summed_root(first.risk, k),
        lots=lots,
        lot_asset=lot_asset,
        lot_quantity=tile("lot_quantity"),
        lot_capacity=scaled("lot_capacity"),
        lot_gain_fraction=tile("lot_gain_fraction"),
        lot_long_term=tile("lot_long_term"),
        lot_tax_rate=tile("lot_tax_rate"),
        holdings=sp.csr_array(sp.block_diag([a.holdings for a in accounts])),
        recent_trades=None,
        deposit=total("deposit"),
        withdrawal=total("withdrawal"),
        group=np.tile(np.arange(n), k),
        lot_taxable=np.concatenate([np.full(a.n_lots, a.taxable) for a in accounts]),
    )
    return Joint(
        snapshot,
        tuple(accounts),
        scale,
        tuple(slice(j * n, (j + 1) * n) for j in range(k)),
        tuple(slice(sizes[j], sizes[j + 1]) for j in range(k)),
    )


def _summed_root(root: RiskRoot, copies: int) -> RiskRoot:
    """Return the root of ``M' Sigma M``: the risk of the summed entries."""
    specific = np.diag(np.sqrt(root.d))
    stacked = np.vstack([root.G, specific]) if root.G.size else specific
    return RiskRoot(
        G=np.tile(stacked, (1, copies)),
        d=np.zeros(root.d.size * copies),
        loadings=np.tile(root.loadings, (copies, 1)),
        factors=root.factors,
    )


@dataclass(frozen=True)
class AccountCash:
    """Each account's cash after its trades at least its floor (hard).

    ``floor`` is per account, a fraction of the household's value; money
    does not move between a household's accounts.
    """

    joint: Joint
    floor: np.ndarray
    name: ClassVar[str] = "account_cash"
    unit: ClassVar[str] = "fraction of the household's value"
    is_soft: ClassVar[bool] = False

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``K (b - sells + cost) <= cash0 - floor`` per account."""
        s, member = x.snapshot, self.joint.membership
        costs = sp.csr_array(member.multiply(s.cost_rate[None, :]))
        spent: Expr = member @ x.buys - member @ x.sells + costs @ x.traded
        return [spent <= self.joint.cash_before - self.floor]

    def violation(self, o: Outcome) -> float:
        """Return the largest shortfall below an account's floor."""
        shortfall = self.floor - self.joint.cash_after(o)
        return float(max(0.0, shortfall.max(initial=0.0)))


@dataclass(frozen=True)
class HouseholdTurnover:
    """The household's ``MaxTurnover``: its accounts' own turnover, summed.

    ``sum_a ((B_a - d_a)+ + (S_a - w_a)+) / 2 <= limit`` in linear rows: one
    per choice, for each account with a cash flow, of which of its two
    parts count (the sum of the parts is the largest such choice).
    """

    joint: Joint
    limit: float
    name: ClassVar[str] = "max_turnover"
    unit: ClassVar[str] = "fraction of the household's value"
    is_soft: ClassVar[bool] = True

    def __post_init__(self) -> None:
        deposit, withdrawal = self.joint.flows
        if int(((deposit > 0) | (withdrawal > 0)).sum()) > MAX_FLOW_ACCOUNTS:
            raise InputError(
                f"max_turnover supports at most {MAX_FLOW_ACCOUNTS} accounts "
                "with a cash flow in one household",
                account_id=self.joint.snapshot.account_id,
                field="max_turnover",
            )

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``Cb buys + Cs sells <= 2 limit + credit``, a row per choice."""
        deposit, withdrawal = self.joint.flows
        flowing = np.flatnonzero((deposit > 0) | (withdrawal > 0))
        member = self.joint.membership.toarray()
        rows_b, rows_s, credits = [], [], []
        for choice in itertools.product((True, False), repeat=2 * len(flowing)):
            count_b = np.ones(len(member), bool)
            count_s = np.ones(len(member), bool)
            count_b[flowing], count_s[flowing] = choice[0::2], choice[1::2]
            rows_b.append(count_b @ member)
            rows_s.append(count_s @ member)
            credits.append(deposit @ count_b + withdrawal @ count_s)
        counted_b = sp.csr_array(np.array(rows_b))
        counted_s = sp.csr_array(np.array(rows_s))
        limit = 2 * self.limit + np.array(credits)
        return [counted_b @ x.buys + counted_s @ x.sells <= limit]

    def violation(self, o: Outcome) -> float:
        """Return the household's turnover above the cap."""
        return max(0.0, self.joint.turnover(o) - self.limit)


@dataclass(frozen=True)
class FixedMask:
    """A trade rule computed beforehand for the joint snapshot."""

    fixed: TradeMask
    name: ClassVar[str] = "fixed_mask"

    def mask(self, snapshot: Snapshot) -> TradeMask:
        """Return the mask computed beforehand."""
        return self.fixed


class AccountRestrictions(FixedMask):
    """Each account's ``Restrictions``, placed in the joint snapshot."""

    name: ClassVar[str] = "restrictions"


class HouseholdWashSales(FixedMask):
    """Wash sales across the household's accounts (``solver.household``)."""

    name: ClassVar[str] = "wash_sale"
