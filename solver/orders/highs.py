"""A mixed-integer linear program handed straight to HiGHS.

The rows and bounds are built by the caller as arrays; here they become a
``highspy`` model, are solved, and what HiGHS found and proved is read
back, with the limit that stopped it (its model status).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

FEASIBLE = 2  # HiGHS ``primal_solution_status`` of a feasible point


@dataclass(frozen=True)
class HighsRun:
    """What one HiGHS solve returned: status, bound, point and work done.

    ``values`` is None unless HiGHS holds a feasible point; ``lower`` is its
    proven lower bound on the objective (the MIP dual bound).
    """

    status: str
    lower: float
    values: np.ndarray | None
    nodes: int
    iterations: int


@dataclass(frozen=True)
class Program:
    """``min c'v`` s.t. ``lower <= A v <= upper`` and ``v <= col_upper``.

    The first ``n_binary`` columns are binaries (``v >= 0``); the rest, the
    epigraph variables, are free below.
    """

    c: np.ndarray
    A: sp.csr_array
    lower: np.ndarray
    upper: np.ndarray
    col_upper: np.ndarray
    n_binary: int

    def with_rows(self, A: sp.csr_array, upper: np.ndarray) -> Program:
        """Return the program with rows ``A v <= upper`` added."""
        return Program(
            self.c,
            sp.csr_array(sp.vstack([self.A, A])),
            np.r_[self.lower, np.full(len(upper), -np.inf)],
            np.r_[self.upper, upper],
            self.col_upper,
            self.n_binary,
        )


def solve_program(program: Program, options: dict[str, Any]) -> HighsRun:
    """Solve with HiGHS; return its status, lower bound, point and work."""
    A = sp.csc_array(program.A)
    width, n_binary = A.shape[1], program.n_binary
    model = highspy.HighsModel()
    lp = model.lp_
    lp.num_col_, lp.num_row_ = width, A.shape[0]
    lp.col_cost_ = program.c
    lp.col_lower_ = np.r_[np.zeros(n_binary), np.full(width - n_binary, -np.inf)]
    lp.col_upper_ = program.col_upper
    lp.row_lower_ = program.lower
    lp.row_upper_ = program.upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    kinds = highspy.HighsVarType
    lp.integrality_ = [kinds.kInteger] * n_binary + [kinds.kContinuous] * (
        width - n_binary
    )
    with _quiet_stdout():  # HiGHS prints a banner on first use
        highs = highspy.Highs()  # type: ignore[no-untyped-call]  # unannotated __init__
    for name, value in {"output_flag": False, **options}.items():
        if highs.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS rejects the option {name}={value!r}")
    highs.passModel(model)
    highs.run()
    info = highs.getInfo()
    values = None
    if int(info.primal_solution_status) == FEASIBLE:
        values = np.asarray(highs.getSolution().col_value)
    return HighsRun(
        status=highs.getModelStatus().name,
        lower=float(info.mip_dual_bound),
        values=values,
        nodes=int(info.mip_node_count),
        iterations=int(info.simplex_iteration_count),
    )


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send what native code writes to file descriptor 1 to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
