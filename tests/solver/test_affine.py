"""The matrix path's affine algebra against the same algebra on dense arrays."""

import numpy as np
import pytest
import scipy.sparse as sp

from solver.program.affine import Affine, Entries, cone, power_cones, weighted_squares


def dense(a: Affine) -> tuple[np.ndarray, np.ndarray]:
    return a.M.toarray(), a.c


def random_affine(rng: np.random.Generator, rows: int, width: int) -> Affine:
    M = sp.random_array((rows, width), density=0.3, random_state=rng)
    return Affine(Entries.of(M), rng.normal(size=rows))


@pytest.mark.parametrize("seed", range(5))
def test_affine_operations_equal_dense_algebra(seed):
    rng = np.random.default_rng(seed)
    x, y = random_affine(rng, 6, 9), random_affine(rng, 6, 7)  # y is narrower
    X, cx = dense(x)
    Y = np.hstack([dense(y)[0], np.zeros((6, 2))])
    cy = y.c
    G = rng.normal(size=(3, 6))
    checks = {
        "sum": (x + y, X + Y, cx + cy),
        "difference": (x - y, X - Y, cx - cy),
        "scaled": (2.5 * x - 3.0, 2.5 * X, 2.5 * cx - 3.0),
        "negated": (-x + 1.0, -X, 1.0 - cx),
        "dense product": (G @ x, G @ X, G @ cx),
        "row vector": (G[0] @ x, G[:1] @ X, np.atleast_1d(G[0] @ cx)),
        "sparse product": (sp.csr_array(G) @ x, G @ X, G @ cx),
        "rows": (x[[4, 1]], X[[4, 1]], cx[[4, 1]]),
        "repeated rows": (x[[2, 2, 0]], X[[2, 2, 0]], cx[[2, 2, 0]]),
        "mask": (x[cx > 0], X[cx > 0], cx[cx > 0]),
        "slice": (x[1:4], X[1:4], cx[1:4]),
        "one row": (x[3], X[[3]], cx[[3]]),
        "total": ((x + y).sum(), (X + Y).sum(axis=0, keepdims=True), [(cx + cy).sum()]),
    }
    for name, (got, M, c) in checks.items():
        np.testing.assert_allclose(got.M.toarray(), M, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(got.c, c, atol=1e-12, err_msg=name)
    rows = x <= y  # x - y <= 0: A v + s = b with A = X - Y, b = cy - cx
    np.testing.assert_allclose(rows.A.toarray(), X - Y, atol=1e-12)
    np.testing.assert_allclose(rows.b, cy - cx, atol=1e-12)


def test_affine_rejects_what_dense_algebra_would_not_broadcast():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="adding 3 rows to 2"):
        random_affine(rng, 3, 4) + random_affine(rng, 2, 4)
    with pytest.raises(ValueError, match=r"\(2, 5\) @ \(3, 4\)"):
        np.ones((2, 5)) @ random_affine(rng, 3, 4)
    with pytest.raises(ValueError, match="cannot narrow"):
        Entries.of(np.eye(3)).widened(2)


def test_quadratic_and_cone_rows_equal_dense_algebra():
    rng = np.random.default_rng(1)
    x = random_affine(rng, 4, 6)
    w = rng.uniform(0.5, 2.0, size=4)
    X, c = dense(x)
    q = weighted_squares(x, w)  # sum w (Xv + c)^2 = v'(X'WX)v + 2(c W X)v + const
    P = q.matrix(6).toarray()
    np.testing.assert_allclose(P, 2 * X.T @ np.diag(w) @ X, atol=1e-12)
    np.testing.assert_allclose(q.linear.M.toarray(), [2 * (w * c) @ X], atol=1e-12)
    diagonal = Affine(Entries.pick(3, np.array([5, 0, 2]), 6).scaled(2.0), np.ones(3))
    got = weighted_squares(diagonal, np.array([1.0, 2.0, 3.0])).P
    # row i picks column (5, 0, 2)[i] times 2: 2 w_i 2^2 there
    np.testing.assert_allclose(got, [16.0, 0, 24.0, 0, 0, 8.0])
    soc = cone(0.5, [x, x[:2]])
    np.testing.assert_allclose(soc.A.toarray(), np.vstack([np.zeros(6), -X, -X[:2]]))
    np.testing.assert_allclose(soc.b, np.r_[0.5, c, c[:2]])
    t = Affine(Entries.pick(4, np.arange(4), 6), np.zeros(4))
    cones = power_cones(t, x, 1.5)
    A = cones.A.toarray()
    np.testing.assert_allclose(A[0::3], -np.eye(4, 6))
    np.testing.assert_allclose(A[1::3], 0.0)
    np.testing.assert_allclose(A[2::3], -X)
    np.testing.assert_allclose(
        cones.b, np.column_stack([np.zeros(4), np.ones(4), c]).ravel()
    )
