"""LeanVec: learned linear dimensionality reduction for inner-product search.

After Tepper et al., "LeanVec: Search your vectors faster by making them fit"
(Intel). A ``D``-dimensional inner product ``<q, x>`` is approximated by a
``d``-dimensional one, ``<A^T q, B^T (x - mu)>``, with ``A`` (queries) and ``B``
(database) both ``D x d``. Subtracting the database mean ``mu`` leaves every
ranking unchanged, since ``<q, mu>`` is the same for all database vectors.

**LeanVec-ID** (queries look like the database): ``A = B`` = the top-``d``
principal directions of the centred database (an orthonormal basis, from the
eigendecomposition of its ``D x D`` covariance).

**LeanVec-OOD** (queries come from elsewhere, e.g. text queries against image
embeddings): minimise the inner-product error ``||Q X^T - Q A B^T X^T||_F^2``.
Expanding the norm gives ``tr(Cq M Cx M^T)`` with ``M = I - A B^T``,
``Cq = Q^T Q / m`` and ``Cx = X^T X / n``: the data enter only through two
``D x D`` second moments. Those are accumulated once (from a sample of at most
``sample`` rows), and every optimisation step then costs ``O(D^2 d)`` whatever
the number of vectors ``N``.

The loss is minimised over ``||A||_2 <= 1`` and ``||B||_2 <= 1`` (spectral norm)
by alternating Frank-Wolfe steps: one on ``A`` with ``B`` fixed, then one on
``B`` with ``A`` fixed; an "iteration" below is one such pair. A step takes the
gradient ``G``, solves the linear subproblem ``min <G, S>`` over the spectral
ball with a thin SVD (``S = -U V^T`` for ``G = U Sigma V^T``), and moves towards
``S``. With the other map fixed the loss is a convex quadratic along the segment,
so the step size is the *exact* line-search minimiser, in closed form (two more
``O(D^2 d)`` products). It replaces the classic ``1 / (t + 1)`` schedule: it never
increases the loss, and on the synthetic test problems it stopped 2-20x sooner at
an equal or lower loss. Iteration stops when the relative loss change falls
below ``tol``.

Both maps start at the leading eigenvectors of ``Cq^1/2 Cx Cq^1/2`` (the
left singular vectors of ``Cq^1/2 Cx^1/2``, whose truncated SVD gives the
unconstrained low-rank optimum): orthonormal, so feasible, and equal to the PCA basis when
queries follow the database. The PCA basis itself is a stationary point in
``A`` and stalls the first step; see ``_initial_maps`` for the measurements.

**Solvers.** That Frank-Wolfe is the paper's method (``solver="frank_wolfe"``). The
default, ``solver="closed_form"``, skips the iterations: dropping the norm bound, the
minimiser of ``||Cq^1/2 (I - A B^T) Cx^1/2||_F`` over rank-``d`` products is the
truncated SVD of ``S = Cq^1/2 Cx^1/2`` pulled back, ``A B^T = Cq^-1/2 U_d Sigma_d V_d^T
Cx^-1/2`` (a ridge of ``ridge * max eigenvalue`` keeps the inverse roots finite). ``B``
is then made orthonormal (a QR factor, ``A`` absorbing the rest), so the database side
is a plain projection, as PCA's is. Measured on the Debian MiniLM set (56k descriptions,
16k synopsis training queries, held-out synopses): the error on held-out queries was
0.05168 at d=96 and 0.00737 at d=192, against Frank-Wolfe's 0.05207 / 0.00746 (tol 1e-4,
21 / 48 iterations) and PCA's 0.05723 / 0.00856, in 0.05 s instead of 0.5 / 1.6 s; with
64-4,000 training queries it also generalised better (Frank-Wolfe at 64 queries: 0.24,
worse than PCA; closed form 0.079).

**Choosing d.** ``dim_out=None`` lets the data choose: the fewest principal directions
keeping ``KEPT_VARIANCE`` of the centred database's variance (``dims_keeping``). A
projection hides from every row the part of its centred vector outside the kept subspace;
a true neighbour shares much of that part with the query, a random row does not, so a
neighbour loses score to the projection that a random row keeps, and the lost variance is
what decides how far down the primary ranking the true neighbours fall. A fixed ``D/4``
kept about 40% of GloVe-50's variance and 72% of MiniLM-384's and no beam width recovered
recall@10 0.95 from those rankings (``docs/adr/0006-leanvec.md``).

``lvq_encode`` / ``lvq_decode`` implement the paper's per-vector scalar
quantisation (LVQ): B-bit codes plus a per-vector step and offset. They exist to
compare reconstruction error in benchmarks; the server quantises with faiss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from index.serialization import Buffer, IndexFormatError, pack, unpack

Variant = Literal["id", "ood"]
Solver = Literal["closed_form", "frank_wolfe"]
DEFAULT_RIDGE = 1e-2
"""Closed-form solver: added to the second moments' eigenvalues, relative to the largest.
Held-out error on the Debian set was flat for 1e-3..1e-2 with 16k queries and best at
1e-2 with 200-1,600 (where 1e-3 over-fitted the query moment)."""

KEPT_VARIANCE = 0.9
"""Default ``dim_out``: the fewest dimensions keeping this fraction of the centred data's
variance (module docstring; measured in ``docs/adr/0006-leanvec.md``)."""

_KIND = "leanvec"
_VERSION = 1
_MOMENT_CHUNK = 16_384  # rows per float64 block when accumulating second moments


@dataclass(frozen=True, slots=True)
class _Moments:
    """Second moments of queries (uncentred) and database (centred), in float64."""

    query: np.ndarray
    data: np.ndarray

    @property
    def energy(self) -> float:
        """``tr(Cq Cx)``: the mean squared (centred) inner product, the loss's scale."""
        return float(np.sum(self.query * self.data))


@dataclass(frozen=True, slots=True, eq=False)
class LeanVecModel:
    """A trained LeanVec reduction: ``<q, x> ~ <q A, (x - mean) B> + <q, mean>``.

    ``train_loss`` is the relative inner-product error on the training moments
    (for ``"id"`` the queries are taken to follow the database). ``iterations``
    counts Frank-Wolfe iterations (one step on ``A`` and one on ``B``).
    """

    variant: Variant
    dim_in: int
    dim_out: int
    mean: np.ndarray
    query_map: np.ndarray
    data_map: np.ndarray
    train_loss: float
    iterations: int

    def __post_init__(self) -> None:
        expected = {
            "mean": (self.dim_in,),
            "query_map": (self.dim_in, self.dim_out),
            "data_map": (self.dim_in, self.dim_out),
        }
        for name, shape in expected.items():
            array = getattr(self, name)
            if array.shape != shape or array.dtype != np.float32:
                raise ValueError(
                    f"{name} must be float32 of shape {shape}; got {array.dtype} {array.shape}"
                )

    def project_queries(self, queries: np.ndarray) -> np.ndarray:
        """``(n, D) -> (n, d)`` float32: ``queries @ A`` (queries are not centred)."""
        rows = _as_rows("queries", queries, self.dim_in, allow_empty=True)
        return np.ascontiguousarray(rows @ self.query_map)

    def project_data(self, data: np.ndarray) -> np.ndarray:
        """``(n, D) -> (n, d)`` float32: ``(data - mean) @ B``."""
        rows = _as_rows("data", data, self.dim_in, allow_empty=True)
        return np.ascontiguousarray((rows - self.mean) @ self.data_map)

    def to_bytes(self) -> bytes:
        """A versioned blob (``index.serialization`` container) that ``from_bytes`` reads."""
        header = {
            "kind": _KIND,
            "version": _VERSION,
            "variant": self.variant,
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "train_loss": self.train_loss,
            "iterations": self.iterations,
        }
        arrays = [self.mean, self.query_map]
        if self.variant == "ood":
            arrays.append(self.data_map)
        return pack(header, [array.astype("<f4").tobytes() for array in arrays])

    @classmethod
    def from_bytes(cls, data: Buffer) -> LeanVecModel:
        """Read ``to_bytes`` output; anything else raises ``IndexFormatError``."""
        header, blobs = _unpack_checked(data)
        try:
            variant = _parse_variant(header["variant"])
            dim_in, dim_out = int(header["dim_in"]), int(header["dim_out"])
            mean, query_map, *data_map = _read_arrays(blobs, variant, dim_in, dim_out)
            return cls(
                variant=variant,
                dim_in=dim_in,
                dim_out=dim_out,
                mean=mean,
                query_map=query_map,
                data_map=data_map[0] if data_map else query_map,
                train_loss=float(header["train_loss"]),
                iterations=int(header["iterations"]),
            )
        except IndexFormatError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise IndexFormatError(f"corrupt LeanVec model: {err}") from err


def train_id(
    data: np.ndarray,
    dim_out: int | None,
    *,
    sample: int = 100_000,
    seed: int = 0,
    kept_variance: float = KEPT_VARIANCE,
) -> LeanVecModel:
    """LeanVec-ID: PCA of (a sample of ``sample`` rows of) ``data``; one map for both sides.

    The mean is taken over all of ``data`` (one cheap pass); the covariance over
    the sample. ``train_loss`` assumes queries follow the database distribution.
    ``dim_out=None`` keeps ``kept_variance`` of the variance (``dims_keeping``).
    """
    rows = _as_rows("data", data)
    _check_dims(rows.shape[1], dim_out, sample)
    mean = rows.mean(axis=0, dtype=np.float64)
    sampled = _sample_rows(rows, sample, np.random.default_rng(seed))
    covariance = _second_moment(sampled, mean)
    dims = dim_out if dim_out is not None else dims_keeping(covariance, kept_variance)
    basis = _top_eigenvectors(covariance, dims)
    moments = _Moments(query=covariance + np.outer(mean, mean), data=covariance)
    return _model("id", mean, basis, basis, _relative_loss(moments, basis, basis), 0)


def train_ood(
    data: np.ndarray,
    queries: np.ndarray,
    dim_out: int | None,
    *,
    sample: int = 100_000,
    solver: Solver = "closed_form",
    ridge: float = DEFAULT_RIDGE,
    max_iters: int = 300,
    tol: float = 1e-3,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    kept_variance: float = KEPT_VARIANCE,
) -> LeanVecModel:
    """LeanVec-OOD: separate query and database maps fitted to a query sample.

    ``closed_form`` (default) or the paper's alternating Frank-Wolfe with exact line
    search (see the module docstring). For Frank-Wolfe, ``progress(iteration,
    relative_loss)`` is called after every iteration; the loss it reports never
    increases (up to rounding). ``max_iters``, ``tol`` and ``progress`` are
    Frank-Wolfe's, ``ridge`` the closed form's. ``dim_out=None`` keeps ``kept_variance``
    of the database's variance, as ``train_id`` does: the data map is a projection too.
    """
    rows = _as_rows("data", data)
    query_rows = _as_rows("queries", queries, rows.shape[1])
    _check_dims(rows.shape[1], dim_out, sample)
    if max_iters < 0 or not tol >= 0.0:
        raise ValueError(f"max_iters must be >= 0 and tol >= 0; got {max_iters}, {tol}")
    if solver not in ("closed_form", "frank_wolfe"):
        raise ValueError(f"solver must be 'closed_form' or 'frank_wolfe'; got {solver!r}")
    if not ridge > 0.0:
        raise ValueError(f"ridge must be > 0; got {ridge}")
    rng = np.random.default_rng(seed)
    mean = rows.mean(axis=0, dtype=np.float64)
    moments = _Moments(
        query=_second_moment(_sample_rows(query_rows, sample, rng), None),
        data=_second_moment(_sample_rows(rows, sample, rng), mean),
    )
    if moments.energy <= 0.0:
        raise ValueError("the queries are orthogonal to every centred data vector: nothing to fit")
    dims = dim_out if dim_out is not None else dims_keeping(moments.data, kept_variance)
    if solver == "closed_form":
        query_map, data_map = _closed_form(moments, dims, ridge)
        loss, iterations = _relative_loss(moments, query_map, data_map), 0
    else:
        query_map, data_map, loss, iterations = _fit(moments, dims, max_iters, tol, progress)
    return _model("ood", mean, query_map, data_map, loss, iterations)


def dims_keeping(covariance: np.ndarray, fraction: float) -> int:
    """The fewest leading principal directions of ``covariance`` whose eigenvalues sum to
    ``fraction`` (in (0, 1]) of its trace: ``D`` for a zero covariance."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"kept variance must be in (0, 1]; got {fraction}")
    values = np.maximum(np.linalg.eigvalsh(covariance)[::-1], 0.0)
    total = float(values.sum())
    if total <= 0.0:
        return len(values)
    kept = np.cumsum(values) / total
    # the small tolerance lets fraction=1 stop at the rank instead of at rounding noise
    return min(int(np.searchsorted(kept, fraction - 1e-9)) + 1, len(values))


def inner_product_error(model: LeanVecModel, queries: np.ndarray, data: np.ndarray) -> float:
    """``||Q Xc^T - (Q A)(Xc B)^T||_F^2 / ||Q Xc^T||_F^2`` with ``Xc = data - mean``.

    Computed through the ``D x D`` second moments (a trace formula), so the cost
    is ``O((n + m) D^2)`` and never forms the ``m x n`` inner-product matrix.
    """
    query_rows = _as_rows("queries", queries, model.dim_in)
    rows = _as_rows("data", data, model.dim_in)
    moments = _Moments(
        query=_second_moment(query_rows, None),
        data=_second_moment(rows, model.mean.astype(np.float64)),
    )
    return _relative_loss(
        moments, model.query_map.astype(np.float64), model.data_map.astype(np.float64)
    )


def lvq_encode(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vector B-bit scalar quantisation (LVQ): ``x ~ codes * step + offset``.

    ``offset`` is each row's minimum and ``step = (max - min) / (2**bits - 1)``;
    ``bits`` is 8 or 4 (4-bit codes are stored unpacked, one per uint8, 0..15).
    Returns ``codes (n, D) uint8``, ``step (n,) float32``, ``offset (n,) float32``.
    """
    if bits not in (4, 8):
        raise ValueError(f"LVQ supports 4 or 8 bits; got {bits}")
    rows = _as_rows("x", x)
    levels = (1 << bits) - 1
    offset = rows.min(axis=1)
    span = rows.max(axis=1).astype(np.float64) - offset
    step = (span / levels).astype(np.float32)
    divisor = np.where(step > 0.0, step, np.float32(1.0))  # constant rows: all codes 0
    scaled = np.rint((rows - offset[:, None]) / divisor[:, None])
    codes = np.clip(scaled, 0, levels).astype(np.uint8)
    return codes, step, offset


def lvq_decode(codes: np.ndarray, step: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Reconstruct ``codes * step + offset`` as float32 ``(n, D)``."""
    codes = np.asarray(codes)
    step = np.asarray(step, dtype=np.float32)
    offset = np.asarray(offset, dtype=np.float32)
    if codes.ndim != 2 or step.shape != (codes.shape[0],) or offset.shape != step.shape:
        raise ValueError(
            "expected codes (n, D), step (n,) and offset (n,); got "
            f"{codes.shape}, {step.shape}, {offset.shape}"
        )
    decoded = codes.astype(np.float32) * step[:, None] + offset[:, None]
    return np.ascontiguousarray(decoded, dtype=np.float32)


# --- optimisation -------------------------------------------------------------------


def _fit(
    moments: _Moments,
    dim_out: int,
    max_iters: int,
    tol: float,
    progress: Callable[[int, float], None] | None,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Alternating Frank-Wolfe from ``_initial_maps``: ``(A, B, relative loss, iterations)``."""
    query_map, data_map = _initial_maps(moments, dim_out)
    loss = _relative_loss(moments, query_map, data_map)
    iterations = 0
    while iterations < max_iters and loss > 0.0:
        query_map = _frank_wolfe_step(moments.query, moments.data, query_map, data_map)
        data_map = _frank_wolfe_step(moments.data, moments.query, data_map, query_map)
        previous, loss = loss, _relative_loss(moments, query_map, data_map)
        iterations += 1
        if progress is not None:
            progress(iterations, loss)
        if abs(previous - loss) <= tol * previous:
            break
    return query_map, data_map, loss, iterations


def _closed_form(moments: _Moments, dim_out: int, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """The unconstrained optimum (module docstring), with ``B`` orthonormal."""
    query_root, query_inverse_root = _psd_roots(moments.query, ridge)
    data_root, data_inverse_root = _psd_roots(moments.data, ridge)
    left, singular, right_t = np.linalg.svd(query_root @ data_root)
    scale = np.sqrt(singular[:dim_out])
    query_map = query_inverse_root @ left[:, :dim_out] * scale
    data_basis, triangle = np.linalg.qr(data_inverse_root @ right_t[:dim_out].T * scale)
    return query_map @ triangle.T, data_basis


def _psd_roots(moment: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """``(C + r I)^1/2`` and its inverse, ``r = ridge * largest eigenvalue``."""
    values, vectors = np.linalg.eigh(moment)
    values = np.maximum(values, 0.0)
    values = values + ridge * max(float(values.max()), np.finfo(np.float64).tiny)
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse_root = (vectors / np.sqrt(values)) @ vectors.T
    return root, inverse_root


def _initial_maps(moments: _Moments, dim_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``A = B`` = the leading eigenvectors of ``Cq^1/2 Cx Cq^1/2``.

    Those are the left singular vectors of ``Cq^1/2 Cx^1/2``, whose truncated SVD
    gives the unconstrained optimum; for in-distribution queries (``Cq ~ Cx``)
    they are the PCA basis. The PCA basis itself is a poor start: with
    ``A = B = PCA`` the gradient in ``A`` is exactly zero, so the first step
    goes nowhere and the ``tol`` test can stop training at the ID solution (it
    did, after one iteration, on the test problem). Measured on four synthetic
    problems (D=64, d=16) against PCA, the eigenvectors of ``Cq`` and of
    ``Cq / tr(Cq) + Cx / tr(Cx)``, and the right singular vectors: this start
    reached the lowest or near-lowest loss at ``tol=1e-3``, in 5-70 iterations.
    """
    root = _psd_sqrt(moments.query)
    basis = _top_eigenvectors(root @ moments.data @ root, dim_out)
    return basis, basis.copy()


def _frank_wolfe_step(
    own_moment: np.ndarray, other_moment: np.ndarray, own: np.ndarray, other: np.ndarray
) -> np.ndarray:
    """One Frank-Wolfe step on ``own`` with ``other`` fixed, exact line search.

    For ``own = A``: ``own_moment = Cq``, ``other_moment = Cx``, ``other = B``;
    for ``own = B`` the roles swap, because the loss is symmetric in them.
    """
    other_gram = other.T @ (other_moment @ other)
    gradient = -2.0 * own_moment @ (other_moment @ other - own @ other_gram)
    left, _, right = np.linalg.svd(gradient, full_matrices=False)
    direction = -(left @ right) - own
    slope = float(np.sum(gradient * direction))
    curvature = float(np.sum((direction.T @ own_moment @ direction) * other_gram))
    stepped: np.ndarray = own + _line_search(slope, curvature) * direction
    return stepped


def _line_search(slope: float, curvature: float) -> float:
    """Minimiser over ``[0, 1]`` of ``slope * t + curvature * t**2``."""
    if curvature <= 0.0:
        return 1.0 if slope < 0.0 else 0.0
    return min(max(-slope / (2.0 * curvature), 0.0), 1.0)


def _relative_loss(moments: _Moments, query_map: np.ndarray, data_map: np.ndarray) -> float:
    """``tr(Cq M Cx M^T) / tr(Cq Cx)`` with ``M = I - A B^T``, in ``O(D^2 d)``.

    Expanded as ``tr(Cq Cx) - 2 tr(A^T Cq Cx B) + tr((A^T Cq A)(B^T Cx B))``.
    """
    energy = moments.energy
    query_side = moments.query @ query_map
    data_side = moments.data @ data_map
    cross = float(np.sum(query_side * data_side))
    quadratic = float(np.sum((query_map.T @ query_side) * (data_map.T @ data_side)))
    error = max(energy - 2.0 * cross + quadratic, 0.0)
    if energy <= 0.0:
        return 0.0 if error <= 0.0 else float("inf")
    return error / energy


def _top_eigenvectors(moment: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` leading eigenvectors (columns), signs fixed for reproducibility."""
    _, vectors = np.linalg.eigh(moment)
    top = vectors[:, ::-1][:, :count]
    pivots = top[np.abs(top).argmax(axis=0), np.arange(count)]
    return np.ascontiguousarray(top * np.where(pivots < 0.0, -1.0, 1.0))


def _psd_sqrt(moment: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(moment)
    root: np.ndarray = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
    return root


def _second_moment(rows: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """``(rows - shift)^T (rows - shift) / n`` in float64, accumulated in blocks."""
    total = np.zeros((rows.shape[1], rows.shape[1]), dtype=np.float64)
    for start in range(0, rows.shape[0], _MOMENT_CHUNK):
        block = rows[start : start + _MOMENT_CHUNK].astype(np.float64)
        if shift is not None:
            block -= shift
        total += block.T @ block
    moment: np.ndarray = total / rows.shape[0]
    return moment


# --- validation and plumbing -----------------------------------------------------------


def _as_rows(
    name: str, values: np.ndarray, dim: int | None = None, *, allow_empty: bool = False
) -> np.ndarray:
    rows = np.ascontiguousarray(values, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D (n, dim) array with dim >= 1; got {rows.shape}")
    if dim is not None and rows.shape[1] != dim:
        raise ValueError(f"{name} has dimension {rows.shape[1]}; expected {dim}")
    if rows.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(rows).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return rows


def _check_dims(dim_in: int, dim_out: int | None, sample: int) -> None:
    if dim_out is not None and not 1 <= dim_out <= dim_in:
        raise ValueError(f"dim_out must be in 1..{dim_in} (the input dimension); got {dim_out}")
    if sample < 1:
        raise ValueError(f"sample must be >= 1; got {sample}")


def _sample_rows(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if rows.shape[0] <= limit:
        return rows
    return rows[np.sort(rng.choice(rows.shape[0], size=limit, replace=False))]


def _model(
    variant: Variant,
    mean: np.ndarray,
    query_map: np.ndarray,
    data_map: np.ndarray,
    loss: float,
    iterations: int,
) -> LeanVecModel:
    query32 = np.ascontiguousarray(query_map, dtype=np.float32)
    data32 = query32 if variant == "id" else np.ascontiguousarray(data_map, dtype=np.float32)
    return LeanVecModel(
        variant=variant,
        dim_in=query32.shape[0],
        dim_out=query32.shape[1],
        mean=mean.astype(np.float32),
        query_map=query32,
        data_map=data32,
        train_loss=float(loss),
        iterations=iterations,
    )


def _unpack_checked(data: Buffer) -> tuple[dict[str, Any], list[Buffer]]:
    try:
        header, blobs = unpack(data)
    except IndexFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise IndexFormatError(f"corrupt LeanVec model header: {err}") from err
    if header.get("kind") != _KIND:
        raise IndexFormatError(f"not a LeanVec model (kind {header.get('kind')!r})")
    if header.get("version") != _VERSION:
        raise IndexFormatError(
            f"unknown LeanVec model version {header.get('version')!r}; this Quiver reads {_VERSION}"
        )
    return header, blobs


def _parse_variant(value: object) -> Variant:
    if value == "id":
        return "id"
    if value == "ood":
        return "ood"
    raise IndexFormatError(f"unknown LeanVec variant {value!r}")


def _read_arrays(
    blobs: list[Buffer], variant: Variant, dim_in: int, dim_out: int
) -> list[np.ndarray]:
    """``[mean, query_map]`` plus ``data_map`` for "ood" (the "id" maps are one array)."""
    shapes = [(dim_in,), (dim_in, dim_out)] + [(dim_in, dim_out)] * (variant == "ood")
    if len(blobs) != len(shapes):
        raise IndexFormatError(f"LeanVec model has {len(blobs)} arrays; expected {len(shapes)}")
    return [_array_from(blob, shape) for blob, shape in zip(blobs, shapes, strict=True)]


def _array_from(blob: Buffer, shape: tuple[int, ...]) -> np.ndarray:
    expected = int(np.prod(shape)) * 4
    if len(blob) != expected:
        raise IndexFormatError(f"LeanVec array of shape {shape} needs {expected} bytes")
    array = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)
    if not np.isfinite(array).all():
        raise IndexFormatError("LeanVec model holds non-finite values")
    return array
