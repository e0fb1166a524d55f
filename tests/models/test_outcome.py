"""Outcomes of stacked candidates (rounding scores many at once)."""

import numpy as np
import pytest

from models import LinearCost, MarketImpact, TaxCost
from models.snapshot import build_snapshot
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from models.terms import Outcome


def test_stacked_candidates_give_each_rows_per_asset_values_and_no_totals():
    market = synthetic_market(30, n_factors=4, seed=3)
    targets = synthetic_targets(market, seed=3)
    s = build_snapshot(synthetic_account(market, targets, seed=3), targets, market)
    rng = np.random.default_rng(0)
    buys = rng.uniform(0, 0.01, size=(5, s.n_assets))
    sales = rng.uniform(0, 1, size=(5, s.n_lots)) * s.lot_capacity
    stacked = Outcome(s, buys, sales)
    for k in range(5):
        alone = Outcome(s, buys[k], sales[k])
        np.testing.assert_allclose(stacked.sells[k], alone.sells, rtol=1e-15)
        np.testing.assert_allclose(stacked.traded[k], alone.traded, rtol=1e-15)
        for term in (LinearCost(), MarketImpact(coefficient=3.0), TaxCost(0.5)):
            np.testing.assert_allclose(
                term.per_asset(stacked)[k], term.per_asset(alone), rtol=1e-14
            )
            # and the per-asset values add up to the term, from the raw lots
            assert term.per_asset(alone).sum() == pytest.approx(term.evaluate(alone))
        by_hand = np.bincount(s.lot_asset, sales[k], s.n_assets)
        np.testing.assert_allclose(alone.sells, by_hand, rtol=1e-14)
    with pytest.raises(ValueError, match="stacked"):
        _ = stacked.cash
