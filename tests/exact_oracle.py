"""Exact ℓ2 distance to the decision boundary of a tiny two-layer ReLU network (test helper).

f(z) = Σ_j v_j relu(w_j·z + b_j). On the region R_S of an activation pattern S ⊆ {1..k},
R_S = {z : σ_j (w_j·z + b_j) ≥ 0} with σ_j = +1 for j ∈ S and −1 otherwise, f is affine:
f_S(z) = a_S·z + c_S with a_S = Σ_{j∈S} v_j w_j and c_S = Σ_{j∈S} v_j b_j. The points whose
sign is strictly opposite to s = sign f(x) are ∪_S {z ∈ R_S : s f_S(z) < 0}; when that set
is non-empty its closure is the polyhedron P_S = R_S ∩ {s f_S ≤ 0}, so the distance from x
to the set of adversarial points is min over S of the distance from x to P_S, a convex QP.

The QP is solved exactly by active-set enumeration (d ≤ 3): the minimiser z* of ‖z − x‖
over a polyhedron is the orthogonal projection of x onto the affine set of some ≤ d
linearly independent active constraints (KKT: x − z* lies in the cone of the active
normals, and by Carathéodory a linearly independent subset suffices), so the minimum of
‖proj − x‖ over all such subsets whose projection is feasible is the exact optimum.
Whether {z ∈ R_S : s f_S(z) < 0} is non-empty (it is not when P_S only touches the
hyperplane f_S = 0, e.g. at the apex 0 of a bias-free net's cones) is decided by a linear
program, only for the patterns that could give the minimum.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import optimize

_FEAS_TOL = 1e-9


def relu_two_layer(W, b, v):
    """The network as numpy float64 arrays: W (k, d), b (k,), v (k,)."""
    return np.asarray(W, np.float64), np.asarray(b, np.float64), np.asarray(v, np.float64)


def from_jaxadv(net_name: str, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, b, v) of a jaxadv ``two_layer`` (ReLU) or ``shallow`` (ReLU) network."""
    if net_name.startswith("two_layer"):
        W = np.asarray(params["W"], np.float64)
        k = W.shape[0]
        return W, np.zeros(k), np.asarray(params["a"], np.float64) / np.sqrt(k)
    return relu_two_layer(params["w"], params["b"], params["v"])


def evaluate(W, b, v, z):
    """f at points z (..., d)."""
    return np.maximum(np.asarray(z) @ W.T + b, 0) @ v


def _strictly_adversarial_exists(A_ub, b_ub, a, c, s, d) -> bool:
    # min s·(a·z) over the region (boxed to keep the LP bounded): the open half-space
    # {s f_S < 0} meets the region iff the minimum of s·f_S is < 0.
    box = 1e6
    res = optimize.linprog(s * a, A_ub=A_ub, b_ub=b_ub, bounds=[(-box, box)] * d, method="highs")
    return res.status == 0 and res.fun + s * c < -1e-9 * (1 + np.abs(a).sum())


def exact_distance(W, b, v, x) -> float:
    """The exact ℓ2 distance from x to the set of strictly sign-flipped points (inf if none)."""
    W, b, v = relu_two_layer(W, b, v)
    x = np.asarray(x, np.float64)
    k, d = W.shape
    f0 = evaluate(W, b, v, x)
    s = np.sign(f0)
    if s == 0:
        return np.inf
    patterns = np.array(list(itertools.product([0.0, 1.0], repeat=k)))  # (P, k)
    sig = 2 * patterns - 1
    a_S = (patterns * v) @ W  # (P, d)
    c_S = (patterns * v) @ b  # (P,)
    # Constraints G z ≤ h, per pattern: region rows −σ_j (w_j·z + b_j) ≤ 0, and s·f_S(z) ≤ 0.
    G = np.concatenate([-sig[:, :, None] * W[None], (s * a_S)[:, None, :]], axis=1)  # (P, k+1, d)
    h = np.concatenate([sig * b[None], (-s * c_S)[:, None]], axis=1)  # (P, k+1)
    best = np.full(len(patterns), np.inf)
    for m in range(0, d + 1):
        for idx in itertools.combinations(range(k + 1), m):
            if m == 0:
                z = np.broadcast_to(x, (len(patterns), d))
            else:
                M = G[:, list(idx), :]  # (P, m, d)
                r = h[:, list(idx)]
                gram = M @ np.swapaxes(M, 1, 2)
                ok = np.abs(np.linalg.det(gram)) > 1e-12 * np.prod(np.linalg.norm(M, axis=2) ** 2, axis=1)
                gram = np.where(ok[:, None, None], gram, np.eye(m))
                lam = np.linalg.solve(gram, (np.einsum("pmd,d->pm", M, x) - r)[..., None])[..., 0]
                z = x - np.einsum("pmd,pm->pd", M, lam)
                z = np.where(ok[:, None], z, np.nan)
            viol = np.einsum("pcd,pd->pc", G, z) - h
            scale = 1 + np.abs(G).sum(axis=2) * (1 + np.abs(z).max(axis=1, keepdims=True)) + np.abs(h)
            feasible = np.all(viol <= _FEAS_TOL * scale, axis=1)
            dist = np.where(feasible, np.linalg.norm(z - x, axis=1), np.inf)
            best = np.minimum(best, dist)
    for i in np.argsort(best):
        if not np.isfinite(best[i]):
            break
        if _strictly_adversarial_exists(G[i, :k], h[i, :k], a_S[i], c_S[i], s, d):
            return float(best[i])
    return np.inf
