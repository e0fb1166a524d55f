"""Run-wide settings of a batch: ``config.toml``, CLI flags, account overrides."""

from __future__ import annotations

import datetime as dt
import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from models import (
    LinearCost,
    MarketImpact,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.account import check_tax_rate
from models.constraints import GainBudget
from models.errors import InputError
from models.terms import Constraint, Term, TradeRule
from solver.result import SolveOptions
from solver.triggers import AnyTrigger, parse_triggers

logger = logging.getLogger(__name__)

ACCOUNT_OVERRIDES = (
    "max_turnover",
    "max_tracking_error",
    "min_cash",
    "tax_rate_short",
    "tax_rate_long",
    "gain_budget",
)


SETTING_HELP = {
    "as_of": "trade date, YYYY-MM-DD: holding periods, wash-sale window, calendar "
    "triggers",
    "tracking_error_weight": "weight of the squared annual tracking error, the "
    "objective being in fractions of the account value V: w prices a 1%% "
    "tracking error at w x 0.0001 of V; see docs/weights.md",
    "cost_weight": "multiplier of the linear trading cost (prices' cost_bps)",
    "tax_weight": "multiplier of the estimated tax of the sales",
    "loss_factor": "share of a harvested loss's tax value the objective counts, "
    "in [0, 1]",
    "impact_weight": "weight of market impact (needs adv and volatility in prices)",
    "max_turnover": "cap on one-way turnover, a fraction of V in [0, 1]",
    "max_tracking_error": "cap on the annual tracking error after trades, a "
    "fraction (0.02 = 2%%)",
    "min_cash": "cash floor after trades and costs, a fraction of V in [0, 1]",
    "solver": "first solver, an installed cvxpy solver",
    "rounding": "how continuous trades become whole shares and lots",
    "sides": "under no_buy_and_sell: auto (3 solves at most), net (2 at most: "
    "relax-fix-resolve, faster) or exact (branch and bound)",
    "time_limit_seconds": "time limit of each solve, seconds; a limited answer "
    "says so in its message",
}


@dataclass(frozen=True)
class RunConfig:
    """Settings of one batch run; ``None`` leaves a constraint out.

    Every field can be set in ``config.toml`` (top level or a ``[run]``
    table) and by a CLI flag of the same name; the flag wins, and the
    ``accounts`` table's override columns win over both for their account.
    """

    as_of: str | None = None
    tracking_error_weight: float = 100.0
    cost_weight: float = 1.0
    tax_weight: float = 1.0
    loss_factor: float = 1.0
    impact_weight: float = 0.0
    max_turnover: float | None = None
    max_tracking_error: float | None = None
    min_cash: float | None = 0.0
    gain_budget: float | None = None
    tax_rate_short: float = 0.408
    tax_rate_long: float = 0.238
    no_buy_and_sell: bool = True
    wash_sale: bool = True
    solver: str = "CLARABEL"
    rounding: str = "auto"
    sides: str = "auto"  # under no_buy_and_sell: "auto", "net" or "exact"
    buy_any: bool = False  # buy any priced, risk-modelled asset (substitutes)
    time_limit_seconds: float | None = None
    elastic: bool = False  # relax soft limits of infeasible accounts (relaxed)
    triggers: tuple[str, ...] = ()  # e.g. ("drift:0.05", "calendar:quarterly")

    @classmethod
    def help(cls, name: str) -> str:
        """Return a setting's meaning, unit and default, for ``--help``."""
        default = next(f.default for f in fields(cls) if f.name == name)
        shown = "today" if name == "as_of" else "none" if default is None else default
        return f"{SETTING_HELP[name]} (default: {shown})"

    @classmethod
    def load(cls, path: Path | None, overrides: dict[str, Any]) -> RunConfig:
        """Read ``path`` (if given) and apply the non-None ``overrides``.

        Raises
        ------
        InputError
            The file is missing or unreadable, or a setting is unknown, of
            the wrong type or out of range; ``field`` names the setting.
        """
        values: dict[str, Any] = {}
        if path is not None:
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise InputError(f"cannot read {path}: {exc}", field="config") from exc
            tables = {k for k, v in data.items() if isinstance(v, dict) and k != "run"}
            if tables:
                raise InputError(
                    f"unknown table(s) {sorted(tables)} in {path}; settings go at "
                    "the top level or under [run]",
                    field="config",
                )
            values.update(data.get("run", {}))
            values.update({k: v for k, v in data.items() if not isinstance(v, dict)})
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown setting(s) {unknown}; known: {sorted(known)}",
                field=unknown[0],
            )
        if isinstance(values.get("as_of"), dt.date):  # TOML reads 2026-11-24 as a date
            values["as_of"] = values["as_of"].isoformat()
        if isinstance(values.get("triggers"), str | list):
            triggers = values["triggers"]
            values["triggers"] = (
                (triggers,) if isinstance(triggers, str) else tuple(triggers)
            )
        return cls(**values).check()

    def check(self) -> RunConfig:
        """Reject a setting of the wrong type or out of range; return self.

        Every run-wide setting is checked here, once, before any account is
        solved: the terms, constraints, options and triggers it asks for are
        built once, so their own checks apply.

        Raises
        ------
        InputError
            Naming the setting in ``field``.
        """
        for f in fields(self):
            _check_type(f.name, str(f.type), getattr(self, f.name))
        if self.as_of is not None:
            try:
                dt.date.fromisoformat(self.as_of)
            except ValueError:
                raise InputError(
                    f"must be a date YYYY-MM-DD, got {self.as_of!r}", field="as_of"
                ) from None
        for name in ("tax_rate_short", "tax_rate_long"):
            check_tax_rate(getattr(self, name), name)
        installed = cp.installed_solvers()  # type: ignore[no-untyped-call]
        if self.solver not in installed:
            raise InputError(
                f"not an installed solver: {self.solver!r}; installed: "
                f"{sorted(installed)}",
                field="solver",
            )
        self.objective()
        self.constraints()
        self.options()
        self.trigger()
        return self

    def resolved(self) -> RunConfig:
        """Return this config with ``as_of`` set: today's date when it was not."""
        if self.as_of is not None:
            return self
        today = dt.date.today().isoformat()
        logger.warning("as_of not given; using today's date, %s", today)
        return replace(self, as_of=today)

    def options(self) -> SolveOptions:
        """Return the solver options."""
        return SolveOptions(
            solver=self.solver,
            rounding=self.rounding,
            sides=self.sides,
            buy_any=self.buy_any,
            time_limit_seconds=self.time_limit_seconds,
            elastic=self.elastic,
        )

    def trigger(self) -> AnyTrigger | None:
        """Return the trigger gating every account, or None to always solve."""
        return parse_triggers(self.triggers)

    def objective(self) -> tuple[Term, ...]:
        """Return the weighted objective terms."""
        terms: list[Term] = [
            TrackingError(self.tracking_error_weight),
            LinearCost(self.cost_weight),
            TaxCost(loss_factor=self.loss_factor, weight=self.tax_weight),
        ]
        if self.impact_weight:
            terms.append(MarketImpact(weight=self.impact_weight))
        return tuple(terms)

    def for_account(self, row: Mapping[str, Any]) -> RunConfig:
        """Return this config with the account's override columns applied."""
        updates: dict[str, Any] = {
            name: float(row[name])
            for name in ACCOUNT_OVERRIDES
            if name in row and pd.notna(row[name])
        }
        return replace(self, **updates) if updates else self

    def constraints(self) -> tuple[Constraint | TradeRule, ...]:
        """Return the constraints and trade rules this config asks for."""
        out: list[Constraint | TradeRule] = []
        if self.max_turnover is not None:
            out.append(MaxTurnover(self.max_turnover))
        if self.max_tracking_error is not None:
            out.append(MaxTrackingError(self.max_tracking_error))
        if self.min_cash is not None:
            out.append(MinCash(self.min_cash))
        if self.gain_budget is not None and np.isfinite(self.gain_budget):
            out.append(GainBudget(self.gain_budget))
        if self.no_buy_and_sell:
            out.append(NoBuyAndSell())
        if self.wash_sale:
            out.append(WashSaleRule())
        return tuple(out)


def _check_type(name: str, kind: str, value: object) -> None:
    """Check one setting against its annotation (``float | None``, ``bool``...)."""
    if value is None and "None" in kind:
        return
    if kind.startswith("float"):
        good = isinstance(value, int | float) and not isinstance(value, bool)
        if good and not math.isfinite(float(value)):  # type: ignore[arg-type]
            raise InputError(f"must be a finite number, got {value!r}", field=name)
        expected = "a number"
    elif kind.startswith("bool"):
        good, expected = isinstance(value, bool), "true or false"
    elif kind.startswith("tuple"):
        good = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
        expected = "a list of strings"
    else:
        good, expected = isinstance(value, str), "a string"
    if not good:
        raise InputError(
            f"must be {expected}, got {value!r} ({type(value).__name__})", field=name
        )
