"""Jacobians for the implicit solvers: the user's, automatic (autograd), or finite differences.

Every sample's Jacobian ``J_b = ∂f_b/∂y_b`` is ``(n, n)``; a batch gives ``(batch, n, n)``.
Rows of ``f`` depend on their own sample only (the batch rule), so the Jacobians of all
samples come from batched evaluations:

- automatic: reverse mode, one ``torch.autograd.grad`` per output component ``i`` with the
  cotangent ``e_i`` for every sample, which gives row ``i`` of every ``J_b`` at once
  (``n`` backward passes whatever the batch size). Under a differentiated solve
  (``DirectBackprop``) the rows are built with ``create_graph=True``, so the discrete
  solve's gradient sees how ``J`` depends on ``y`` and ``p``. (``torch.func``'s
  forward-mode ``jvp``/``vmap`` gives the same numbers but measured 3–6× slower than
  this loop on the library's problems with torch 2.13 on CPU, so it is not used.)
- finite differences: ``(f(t, y + δ_j e_j) − f(t, y)) / δ_j`` with
  ``δ_j = √ε · max(|y_j|, 1)``, one batched evaluation per column;
- the user's ``jac(t, y, p)``.

``∂f/∂t`` (Rosenbrock methods) is a forward difference in ``t`` with ``δ = √ε·max(|t|, 1)``:
one evaluation, and exactly zero for an autonomous ``f``.

Sparse Jacobians (large systems, ``linsolve="sparse"`` or ``"gmres"``, see
:mod:`._linsolve`) never form ``n × n``: with a :class:`SparsePattern` the provider returns
the values on the pattern, ``(B, nnz)`` in the pattern's row-major order, from

- the user's ``jac`` returning a torch sparse tensor (:func:`user_sparse_jacobian`);
- colored finite differences (Curtis, Powell & Reid, *J. Inst. Math. Appl.* 13 (1974)
  117–120): columns that share no row are perturbed together, so one evaluation gives
  every column of a color, ``J_ij = (f_i(y + Σ_{k∈c} δ_k e_k) − f_i(y))/δ_j`` for the one
  ``j ∈ c`` in row ``i``'s pattern. A greedy coloring in natural order needs ``2w + 1``
  colors for a banded matrix of half-bandwidth ``w`` (5 for the Brusselator) instead of
  ``n`` evaluations, and gives exactly the values of the column-by-column differences;
- colored reverse mode: rows that share no column are one color, and one backward pass
  with the cotangent ``Σ_{i∈c} e_i`` gives ``g_j = Σ_{i∈c} J_ij = J_ij`` for the one row
  ``i ∈ c`` that has column ``j``. Under ``DirectBackprop`` the passes are taped
  (``create_graph``), as the dense rows are.

The coloring is computed once per pattern (SciPy's ``group_columns`` when available, a
Python greedy loop otherwise). A pattern that misses a true nonzero gives a wrong
Jacobian silently (the colors then overlap); it must hold every entry ``f`` can touch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "JacobianProvider",
    "MatrixFreeJacobian",
    "SparsePattern",
    "user_jacobian",
    "user_sparse_jacobian",
]

RHSFn = Callable[[Tensor, Tensor], Tensor]


def user_jacobian(
    jac: Callable[..., Any],
    p: Any,
    batched: bool,
    state_shape: tuple[int, ...],
    n: int,
    dtype: torch.dtype,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap ``jac(t, y, p)`` as ``(t (B,), y (B, n)) -> (B, n, n)``, checking its shape once."""
    checked = False

    def call(t: Tensor, y: Tensor) -> Tensor:
        nonlocal checked
        batch = y.shape[0]
        if batched:
            out = jac(t, y.reshape(batch, *state_shape), p)
        else:
            out = jac(t[0], y.reshape(state_shape), p)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=dtype, device=y.device)
        if out.layout != torch.strided:
            out = out.to_dense()
        if not checked:
            expected = (batch, n, n) if batched else (n, n)
            if tuple(out.shape) != expected:
                what = f"({batch}, {n}, {n}) for this batch" if batched else f"({n}, {n})"
                raise ValueError(
                    f"jac returned shape {tuple(out.shape)}; it must return the Jacobian "
                    f"∂f/∂y of shape {what} (n = number of state components)"
                )
            if out.dtype != dtype:
                raise TypeError(
                    f"jac returned dtype {out.dtype} but the state is {dtype}; make jac "
                    "compute in the dtype of y"
                )
            checked = True
        return out.reshape(batch, n, n)

    return call


def _greedy_coloring(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """Greedy coloring of the columns of an ``(n, n)`` pattern, in natural order.

    Two columns conflict when they have an entry in the same row. Column ``j`` takes the
    smallest color none of its conflicting, already colored columns has.
    """
    try:  # SciPy's compiled loop (the one least_squares' jac_sparsity uses)
        import scipy.sparse as sp
        from scipy.optimize._numdiff import group_columns

        mat = sp.csc_matrix((np.ones(rows.shape[0], dtype=np.int8), (rows, cols)), shape=(n, n))
        return np.asarray(group_columns(mat, order=np.arange(n)), dtype=np.int64)
    except ImportError:  # pragma: no cover - private SciPy API moved: the same loop in Python
        return _greedy_coloring_python(rows, cols, n)


def _greedy_coloring_python(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """:func:`_greedy_coloring` without SciPy (distance-2 greedy on the column graph)."""
    col_rows: list[list[int]] = [[] for _ in range(n)]
    row_cols: list[list[int]] = [[] for _ in range(n)]
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        col_rows[j].append(i)
        row_cols[i].append(j)
    colors = [-1] * n
    forbidden = [-1] * (n + 1)  # forbidden[c] == j: color c is taken near column j
    for j in range(n):
        for i in col_rows[j]:
            for k in row_cols[i]:
                c = colors[k]
                if c >= 0:
                    forbidden[c] = j
        c = 0
        while forbidden[c] == j:
            c += 1
        colors[j] = c
    return np.asarray(colors, dtype=np.int64)


class SparsePattern:
    """A Jacobian's sparsity pattern, fixed for a solve: ``nnz`` entries ``(rows, cols)``.

    The entries are unique and sorted row-major (the order of a coalesced COO tensor);
    sparse Jacobians are ``(B, nnz)`` values in this order.

    Args:
        rows: row indices ``(nnz,)``.
        cols: column indices ``(nnz,)``.
        n: the matrix is ``(n, n)``.
    """

    def __init__(self, rows: Tensor, cols: Tensor, n: int) -> None:
        keys = torch.unique(rows.to(torch.int64) * n + cols.to(torch.int64))  # sorted
        self.n = n
        self.keys = keys
        self.rows = keys // n
        self.cols = keys % n
        self.nnz = int(keys.numel())
        self._groups: dict[tuple[str, torch.dtype, torch.device], Any] = {}
        self._colors: dict[str, np.ndarray] = {}

    @classmethod
    def from_tensor(cls, pattern: Tensor) -> SparsePattern:
        """From a (boolean or valued) sparse or dense ``(n, n)`` tensor: its stored entries."""
        n = int(pattern.shape[-1])
        if pattern.layout == torch.strided:
            idx = torch.nonzero(pattern != 0).T
        else:
            idx = pattern.to_sparse_coo().coalesce().indices()
        return cls(idx[0], idx[1], n)

    @property
    def device(self) -> torch.device:
        return self.keys.device

    def to(self, device: torch.device) -> SparsePattern:
        """The same pattern with its index tensors on ``device``."""
        if device == self.device:
            return self
        out = SparsePattern(self.rows.to(device), self.cols.to(device), self.n)
        out._colors = self._colors
        return out

    def transpose(self) -> tuple[SparsePattern, Tensor]:
        """The pattern of ``Jᵀ`` and the permutation ``perm`` with ``vals_T = vals[:, perm]``
        (entry ``(i, j)`` of ``Jᵀ`` is entry ``(j, i)`` of ``J``)."""
        pt = SparsePattern(self.cols, self.rows, self.n)
        return pt, self.locate(pt.cols, pt.rows)

    def locate(self, rows: Tensor, cols: Tensor) -> Tensor:
        """Positions of the entries ``(rows, cols)`` in the pattern; ``ValueError`` if absent."""
        keys = rows.to(torch.int64) * self.n + cols.to(torch.int64)
        pos = torch.searchsorted(self.keys, keys).clamp_max(max(self.nnz - 1, 0))
        found = self.keys[pos] == keys if self.nnz else torch.zeros_like(keys, dtype=torch.bool)
        if not bool(found.all()):
            k = int(torch.nonzero(~found)[0, 0])
            raise ValueError(
                f"jac returned an entry at ({int(rows[k])}, {int(cols[k])}) outside the "
                "sparsity pattern; give a jac_prototype that holds every entry jac returns"
            )
        return pos

    def colors(self, by: str) -> np.ndarray:
        """Greedy colors ``(n,)`` of the columns (``by="col"``) or rows (``by="row"``)."""
        if by not in self._colors:
            r = self.rows.cpu().numpy()
            c = self.cols.cpu().numpy()
            self._colors[by] = (
                _greedy_coloring(r, c, self.n) if by == "col" else _greedy_coloring(c, r, self.n)
            )
        return self._colors[by]

    def ncolors(self, by: str) -> int:
        """How many colors :meth:`colors` uses (evaluations or passes per Jacobian)."""
        col = self.colors(by)
        return int(col.max()) + 1 if col.size else 0

    def groups(
        self, by: str, dtype: torch.dtype, device: torch.device
    ) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Per color: a 0/1 mask ``(n,)`` of its columns (rows) and the pattern positions
        of their entries; and the permutation that puts the concatenated groups back in
        pattern order."""
        key = (by, dtype, device)
        if key not in self._groups:
            colors = torch.as_tensor(self.colors(by), device=self.device)
            owner = self.cols if by == "col" else self.rows
            entry_color = colors[owner]
            groups = []
            order = []
            for c in range(self.ncolors(by)):
                mask = (colors == c).to(dtype=dtype, device=device)
                ent = torch.nonzero(entry_color == c)[:, 0]
                groups.append((mask, ent.to(device)))
                order.append(ent)
            perm = torch.cat(order) if order else torch.zeros(0, dtype=torch.int64)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(perm.numel(), device=perm.device)
            self._groups[key] = (groups, inverse.to(device))
        groups, inverse = self._groups[key]
        return groups, inverse

    def matvec(self, values: Tensor, v: Tensor) -> Tensor:
        """``J v`` for a batch: ``values`` ``(B, nnz)``, ``v`` ``(B, n)``."""
        prod = values * v[:, self.cols]
        return torch.zeros_like(v).index_add(1, self.rows, prod)

    def norm_inf(self, values: Tensor) -> Tensor:
        """``‖J‖_∞ = max_i Σ_j |J_ij|`` per sample ``(B,)``."""
        v = values.detach().abs()
        sums = v.new_zeros(v.shape[0], self.n).index_add_(1, self.rows, v)
        return sums.amax(-1)

    def diagonal(self, values: Tensor) -> Tensor:
        """The diagonal ``(B, n)`` (zero where the pattern has no diagonal entry)."""
        on = self.rows == self.cols
        idx = torch.nonzero(on)[:, 0]
        return values.new_zeros(values.shape[0], self.n).index_add(
            1, self.rows[idx], values[:, idx]
        )

    def to_dense(self, values: Tensor) -> Tensor:
        """``(B, n, n)`` (for checks on small problems)."""
        out = values.new_zeros(values.shape[0], self.n * self.n)
        return out.index_add(1, self.keys, values).reshape(-1, self.n, self.n)


def sparse_pattern_of(out: Any, n: int) -> SparsePattern | None:
    """The pattern of a sparse Jacobian a user's ``jac`` returned, or ``None`` if dense.

    ``out`` is a torch sparse ``(n, n)`` or ``(B, n, n)`` tensor, or a list of ``(n, n)``
    ones (the union of their entries is taken).
    """
    items: Sequence[Any] = out if isinstance(out, (list, tuple)) else [out]
    rows, cols = [], []
    for item in items:
        if not isinstance(item, Tensor) or item.layout == torch.strided:
            return None
        coo = item.to_sparse_coo().coalesce()
        idx = coo.indices()
        rows.append(idx[-2])
        cols.append(idx[-1])
    if not rows:
        return None
    return SparsePattern(torch.cat(rows), torch.cat(cols), n)


def user_sparse_jacobian(
    jac: Callable[..., Any],
    p: Any,
    batched: bool,
    state_shape: tuple[int, ...],
    pattern: SparsePattern,
    dtype: torch.dtype,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap ``jac(t, y, p)`` as ``(t (B,), y (B, n)) -> (B, nnz)``: its values on ``pattern``.

    ``jac`` may return a torch sparse tensor (COO, CSR, …) of shape ``(n, n)`` for one
    problem, ``(B, n, n)`` (COO) or a list of ``B`` ``(n, n)`` tensors for a batch; entries
    outside the pattern are an error, pattern entries it leaves out are zero. A dense
    result is read on the pattern (it still costs the dense matrix: a warning says so once
    where that matrix takes 64 MiB or more).
    """
    n = pattern.n
    warned = False

    def values_of(item: Tensor) -> Tensor:
        """One sparse ``(n, n)`` or ``(B, n, n)`` tensor's values as ``(1 or B, nnz)``."""
        coo = item.to_sparse_coo().coalesce()
        idx, vals = coo.indices(), coo.values()
        if vals.dtype != dtype:
            raise TypeError(
                f"jac returned dtype {vals.dtype} but the state is {dtype}; make jac "
                "compute in the dtype of y"
            )
        idx = idx.to(pattern.device)
        same = idx.shape[0] == 2 and idx.shape[1] == pattern.nnz
        if same and torch.equal(idx[0] * n + idx[1], pattern.keys):  # the pattern itself
            return vals.reshape(1, -1)
        pos = pattern.locate(idx[-2], idx[-1])
        if idx.shape[0] == 2:
            return vals.new_zeros(1, pattern.nnz).index_put(
                (torch.zeros_like(pos), pos), vals, True
            )
        batch = int(item.shape[0])
        return vals.new_zeros(batch, pattern.nnz).index_put((idx[0], pos), vals, True)

    def call(t: Tensor, y: Tensor) -> Tensor:
        batch = y.shape[0]
        if batched:
            out = jac(t, y.reshape(batch, *state_shape), p)
        else:
            out = jac(t[0], y.reshape(state_shape), p)
        if isinstance(out, (list, tuple)):
            if len(out) != batch:
                raise ValueError(
                    f"jac returned a list of {len(out)} matrices for a batch of {batch}"
                )
            rows = [
                values_of(item) if item.layout != torch.strided else _dense(item, 1) for item in out
            ]
            return torch.cat(rows, 0)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=dtype, device=y.device)
        if out.layout == torch.strided:
            return _dense(out, batch)
        expected = (batch, n, n) if batched else (n, n)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"jac returned shape {tuple(out.shape)}; it must return the Jacobian "
                f"∂f/∂y of shape {expected} (n = number of state components)"
            )
        return values_of(out).expand(batch, -1)

    def _dense(out: Tensor, batch: int) -> Tensor:
        nonlocal warned
        if not warned and n * n * out.element_size() >= 64 * 2**20:
            warnings.warn(
                f"jac returns a dense ({n}, {n}) matrix; the sparse linear solver reads its "
                "values on the pattern, but the dense matrix is still formed. Return a torch "
                "sparse tensor (or drop jac to use colored differentiation) to save memory",
                stacklevel=8,
            )
            warned = True
        dense = out.reshape(-1, n, n)
        vals = dense[:, pattern.rows, pattern.cols]
        return vals.expand(batch, -1) if vals.shape[0] == 1 and batch > 1 else vals

    return call


@dataclass
class MatrixFreeJacobian:
    """The Jacobian of a matrix-free (Krylov) solve: where ``J`` is taken, not ``J`` itself.

    ``J v`` is ``(f(t, y + εv) − f)/ε`` at the point ``(t, y)`` with ``f = f(t, y)``, or,
    where the Jacobian is known sparse (``values`` on ``pattern``) or dense (``dense``),
    the product with it. ``jnorm`` is ``‖J‖_∞``, exact from the values or estimated from one
    product ``‖J s‖_∞`` with a fixed random sign vector ``s`` (a lower bound).
    """

    t: Tensor
    y: Tensor
    f: Tensor
    jnorm: Tensor
    values: Tensor | None = None
    pattern: SparsePattern | None = None
    dense: Tensor | None = None

    def where(self, need: Tensor, old: MatrixFreeJacobian) -> MatrixFreeJacobian:
        """This Jacobian for the samples in ``need``, ``old`` elsewhere."""
        c = need[:, None]

        def pick(a: Tensor | None, b: Tensor | None, cond: Tensor) -> Tensor | None:
            return None if a is None or b is None else torch.where(cond, a, b)

        return MatrixFreeJacobian(
            t=torch.where(need, self.t, old.t),
            y=torch.where(c, self.y, old.y),
            f=torch.where(c, self.f, old.f),
            jnorm=torch.where(need, self.jnorm, old.jnorm),
            values=pick(self.values, old.values, c),
            pattern=self.pattern,
            dense=pick(self.dense, old.dense, need[:, None, None]),
        )

    def diagonal(self) -> Tensor | None:
        """``diag(J)`` ``(B, n)`` where known (values or dense), else ``None``."""
        if self.values is not None and self.pattern is not None:
            return self.pattern.diagonal(self.values)
        if self.dense is not None:
            return self.dense.diagonal(dim1=-2, dim2=-1)
        return None


class JacobianProvider:
    """Computes ``J = ∂f/∂y`` and, when asked, ``∂f/∂t`` ``(B, n)``.

    ``J`` comes in the representation the linear solver takes (``output``): ``"dense"``
    ``(B, n, n)``; ``"sparse"``: the values ``(B, nnz)`` on ``pattern``; ``"matrix_free"``:
    a :class:`MatrixFreeJacobian` (the point ``(t, y, f)``, plus the values on ``pattern``
    when one is known, or the user's dense ``jac``).

    Args:
        rhs: the internal right-hand side ``(t (B,), y (B, n)) -> (B, n)``.
        n: number of state components.
        jac: a callable ``(t, y) -> (B, n, n)`` (already wrapped; with a pattern,
            ``(t, y) -> (B, nnz)``, see :func:`user_sparse_jacobian`), or ``None``.
        autodiff: use autograd (``True``) or finite differences (``False``) where ``jac``
            is not given. Automatic differentiation falls back to finite differences, with
            a warning, when ``f`` cannot be differentiated (NumPy code, ``.item()``).
        need_ft: whether ``∂f/∂t`` is needed (Rosenbrock methods).
        pattern: the sparsity pattern (``"sparse"`` output; optional for
            ``"matrix_free"``).
        output: ``"dense"``, ``"sparse"`` or ``"matrix_free"``.
    """

    def __init__(
        self,
        rhs: RHSFn,
        n: int,
        jac: Callable[[Tensor, Tensor], Tensor] | None,
        autodiff: bool,
        need_ft: bool,
        *,
        pattern: SparsePattern | None = None,
        output: str = "dense",
    ) -> None:
        if output not in ("dense", "sparse", "matrix_free"):
            raise ValueError(f"unknown Jacobian output {output!r}")
        if output == "sparse" and pattern is None:
            raise ValueError("a sparse Jacobian needs a sparsity pattern")
        self.rhs, self.n = rhs, n
        self.jac = jac
        self.autodiff = autodiff
        self.need_ft = need_ft
        self.pattern = pattern
        self.output = output
        self.nf = 0  # evaluations of f spent on finite differences
        # Keep automatic Jacobians on autograd's tape (direct backpropagation of a solve
        # whose inputs require grad); otherwise they are constants.
        self.differentiable = False
        self._signs: Tensor | None = None
        self._autonomous: bool | None = None  # decided on the first ∂f/∂t

    def __call__(self, t: Tensor, y: Tensor, f0: Tensor | None = None) -> tuple[Any, Tensor | None]:
        """``J`` and ``∂f/∂t`` (or ``None``) at ``(t, y)``; ``f0 = f(t, y)`` if known."""
        if self.output == "sparse":
            vals = self._sparse_values(t, y, f0)
            return vals, self._ft(t, y, f0) if self.need_ft else None
        if self.output == "matrix_free":
            return self._matrix_free(t, y, f0), None
        if self.jac is not None:
            return self.jac(t, y), self._ft(t, y, f0) if self.need_ft else None
        if self.autodiff:
            try:
                jac, _ = self._reverse_mode(t, y)
                return jac, self._ft(t, y, f0) if self.need_ft else None
            except Exception as e:  # f is not differentiable (NumPy code, .item()): fall back
                warnings.warn(
                    f"automatic Jacobian failed ({type(e).__name__}: {e}); using finite "
                    "differences instead. Pass jac= to the ODEProblem, or autodiff=False to "
                    "the solver to silence this",
                    stacklevel=6,
                )
                self.autodiff = False
        return self._finite_differences(t, y, f0)

    def _reverse_mode(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        create = self.differentiable and torch.is_grad_enabled()
        with torch.enable_grad():
            # Always a fresh leaf: autograd.grad from a non-leaf state would walk the whole
            # solve's graph on every Jacobian (quadratic in the number of steps). With
            # create_graph the rows keep their dependence on p (and module parameters),
            # not on the state: see docs/design.md.
            yv = y.detach().requires_grad_(True)
            out = self.rhs(t, yv)
            if not out.requires_grad:  # f does not depend on y at all
                return torch.zeros(*y.shape, self.n, dtype=y.dtype, device=y.device), None
            rows = []
            for i in range(self.n):
                cot = torch.zeros_like(out)
                cot[:, i] = 1.0
                (g,) = torch.autograd.grad(
                    out, yv, cot, retain_graph=True, create_graph=create, allow_unused=True
                )
                rows.append(torch.zeros_like(y) if g is None else g)
        return torch.stack(rows, 1), None

    def _f0(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        if f0 is None:
            self.nf += 1
            return self.rhs(t, y)
        return f0

    def _ft(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor | None:
        if self._autonomous is None:
            self._autonomous = self._probe_autonomous(t, y)
        if self._autonomous:
            return None  # ∂f/∂t ≡ 0: the Rosenbrock stages drop their d_i terms
        eps = torch.finfo(y.dtype).eps
        dt = eps**0.5 * t.abs().clamp_min(1.0)
        f0 = self._f0(t, y, f0)
        self.nf += 1
        return (self.rhs(t + dt, y) - f0) / dt[:, None]

    def _probe_autonomous(self, t: Tensor, y: Tensor) -> bool:
        """Whether autograd shows that ``f`` does not read ``t`` (then ``∂f/∂t ≡ 0``).

        One evaluation with ``t`` and ``y`` as leaves that require grad: if ``f``'s output
        is on the tape but ``t`` is not in its graph, ``f`` is autonomous. An ``f`` that
        autograd cannot follow (NumPy code, or one that reads ``y`` only through
        ``.item()``) keeps the finite difference. A ``t`` read through ``.item()`` or
        ``float(t)`` escapes the tape too: pass ``autodiff=False`` to the solver for such
        an ``f``, and ``∂f/∂t`` is always differenced.
        """
        if not self.autodiff:
            return False
        try:
            with torch.enable_grad():
                tv = t.detach().requires_grad_(True)
                yv = y.detach().requires_grad_(True)
                self.nf += 1
                out = self.rhs(tv, yv)
                if not out.requires_grad:
                    return False
                (g,) = torch.autograd.grad(out.sum(), tv, allow_unused=True)
        except Exception:  # not differentiable: keep differencing
            return False
        return g is None

    def _finite_differences(
        self, t: Tensor, y: Tensor, f0: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        f0 = self._f0(t, y, f0)
        eps = torch.finfo(y.dtype).eps
        delta = eps**0.5 * y.abs().clamp_min(1.0)  # (B, n)
        cols = []
        for j in range(self.n):
            yj = y.clone()
            yj[:, j] = yj[:, j] + delta[:, j]
            cols.append((self.rhs(t, yj) - f0) / delta[:, j : j + 1])
        self.nf += self.n
        jac = torch.stack(cols, -1)
        return jac, self._ft(t, y, f0) if self.need_ft else None

    # ----------------------------------------------------------------- sparse Jacobians

    def _sparse_values(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        """The values ``(B, nnz)`` on the pattern: user's, colored autograd or colored FD."""
        if self.jac is not None:
            return self.jac(t, y)
        if self.autodiff:
            try:
                return self._colored_reverse(t, y)
            except Exception as e:  # f is not differentiable: fall back, as the dense path
                warnings.warn(
                    f"automatic Jacobian failed ({type(e).__name__}: {e}); using finite "
                    "differences instead. Pass jac= to the ODEProblem, or autodiff=False to "
                    "the solver to silence this",
                    stacklevel=6,
                )
                self.autodiff = False
        return self._colored_differences(t, y, f0)

    def _colored_differences(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        """Colored forward differences: one evaluation per column color."""
        pattern = self.pattern
        assert pattern is not None
        f0 = self._f0(t, y, f0)
        eps = torch.finfo(y.dtype).eps
        delta = eps**0.5 * y.abs().clamp_min(1.0)  # (B, n), as the dense differences
        groups, inverse = pattern.groups("col", y.dtype, y.device)
        rows, cols = pattern.rows, pattern.cols
        parts = []
        for mask, ent in groups:
            # y + Σ_{j∈c} δ_j e_j; (f(·) − f0)_i/δ_j for the entries (i, j) of color c.
            df = self.rhs(t, y + delta * mask) - f0
            parts.append(df[:, rows[ent]] / delta[:, cols[ent]])
        self.nf += len(groups)
        if not parts:
            return y.new_zeros(y.shape[0], 0)
        return torch.cat(parts, 1)[:, inverse]

    def _colored_reverse(self, t: Tensor, y: Tensor) -> Tensor:
        """Colored reverse mode: one backward pass per row color."""
        pattern = self.pattern
        assert pattern is not None
        create = self.differentiable and torch.is_grad_enabled()
        groups, inverse = pattern.groups("row", y.dtype, y.device)
        cols = pattern.cols
        with torch.enable_grad():
            yv = y if (create and y.requires_grad) else y.detach().requires_grad_(True)
            out = self.rhs(t, yv)
            if not out.requires_grad:  # f does not depend on y at all
                return y.new_zeros(y.shape[0], pattern.nnz)
            parts = []
            for mask, ent in groups:
                # Σ_{i∈c} ∇f_i: column j holds J_ij of the one row i ∈ c that touches j.
                (g,) = torch.autograd.grad(
                    out,
                    yv,
                    mask.expand_as(out),
                    retain_graph=True,
                    create_graph=create,
                    allow_unused=True,
                )
                parts.append(y.new_zeros(y.shape[0], ent.numel()) if g is None else g[:, cols[ent]])
        if not parts:
            return y.new_zeros(y.shape[0], 0)
        return torch.cat(parts, 1)[:, inverse]

    def _matrix_free(self, t: Tensor, y: Tensor, f0: Tensor | None) -> MatrixFreeJacobian:
        """The point of a Krylov solve's products, with what is cheaply known about ``J``."""
        f0 = self._f0(t, y, f0)
        if self.pattern is not None:
            vals = self._sparse_values(t, y, f0)
            return MatrixFreeJacobian(
                t, y, f0, self.pattern.norm_inf(vals), values=vals, pattern=self.pattern
            )
        if self.jac is not None:  # the user's dense Jacobian: products with it
            dense = self.jac(t, y)
            jnorm = dense.detach().abs().sum(-1).amax(-1)
            return MatrixFreeJacobian(t, y, f0, jnorm, dense=dense)
        # ‖J‖_∞ ≥ ‖J s‖_∞ for a sign vector s: one difference along fixed random signs.
        if self._signs is None or self._signs.shape != y.shape:
            gen = torch.Generator().manual_seed(0x5EED)
            s = torch.randint(0, 2, y.shape, generator=gen).to(dtype=y.dtype) * 2 - 1
            self._signs = s.to(y.device)
        s = self._signs
        eps = torch.finfo(y.dtype).eps
        d = eps**0.5 * (1.0 + torch.linalg.vector_norm(y.detach(), dim=-1)) / y.shape[1] ** 0.5
        with torch.no_grad():
            js = (self.rhs(t, y + d[:, None] * s) - f0) / d[:, None]
        self.nf += 1
        return MatrixFreeJacobian(t, y, f0, js.abs().amax(-1))
