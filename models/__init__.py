"""Accounts, market data, risk models, objective terms and constraints."""

from models.account import Account
from models.constraints import (
    AssetBounds,
    FactorBounds,
    GainBudget,
    GroupBounds,
    LongOnly,
    MaxCash,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
)
from models.errors import InputError, RebalanceError, RiskScaleWarning
from models.market import Market, tiered_lot_sizes
from models.objective import LinearCost, MarketImpact, TaxCost, TaxDrag, TrackingError
from models.risk import CovarianceRiskModel, FactorRiskModel, RiskModel
from models.risk_estimation import pca_factor_model, shrunk_covariance
from models.rules import Restrictions, WashSaleRule

__all__ = [
    "Account",
    "AssetBounds",
    "CovarianceRiskModel",
    "FactorBounds",
    "FactorRiskModel",
    "GainBudget",
    "GroupBounds",
    "InputError",
    "LinearCost",
    "LongOnly",
    "Market",
    "MarketImpact",
    "MaxCash",
    "MaxTrackingError",
    "MaxTurnover",
    "MinCash",
    "NoBuyAndSell",
    "RebalanceError",
    "Restrictions",
    "RiskModel",
    "RiskScaleWarning",
    "TaxCost",
    "TaxDrag",
    "TrackingError",
    "WashSaleRule",
    "pca_factor_model",
    "shrunk_covariance",
    "tiered_lot_sizes",
]
