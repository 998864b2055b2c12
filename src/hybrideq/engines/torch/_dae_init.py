"""Consistent initial values for index-1 DAEs in mass-matrix form ``M y' = f(t, y, p)``.

With a singular constant ``M`` some equations carry no derivative: in *semi-explicit* form
the zero rows ``R`` of ``M`` are the algebraic equations ``0 = g(t, y) = f_R(t, y)`` and the
zero columns ``C`` the algebraic variables ``y_C``; the other rows and columns form an
invertible block. An index-1 DAE has ``∂g/∂y_C`` invertible, so ``y_C`` is fixed by the
differential variables, and a ``y0`` with ``g(t0, y0) ≠ 0`` is *inconsistent*: no solution
passes through it. The Rosenbrock and BDF steps then start by jumping onto the constraint
inside their first step, which costs rejected steps and wrecks the first error estimates.

What DifferentialEquations.jl does for an ``ODEProblem`` with a mass matrix
(OrdinaryDiffEq.jl, ``lib/OrdinaryDiffEqNonlinearSolve/src/initialize_dae.jl``:
``BrownFullBasicInit``, ``CheckInit``), written for a batch:

- ``"brown"``: Brown, Hindmarsh & Petzold's basic initialisation (*Consistent initial
  condition calculation for differential-algebraic systems*, SIAM J. Sci. Comput. 19
  (1998) 1495–1512): keep the differential variables, solve ``g(t0, y) = 0`` for ``y_C`` by
  Newton's method with the block ``∂g/∂y_C`` (the problem's ``jac`` if it has one, else
  autograd, else finite differences) and a backtracking line search on the residual norm
  (step halved up to five times while the norm does not fall). Every sample of the batch
  iterates on its own and stops when converged; ``f`` is still called on the whole batch
  (the batch rule: ``p`` may be per sample).
- ``"check"``: only check; an inconsistent sample does not start and ends with
  ``ReturnCode.InitialFailure`` (OrdinaryDiffEq's ``CheckInit`` raises an error).
- ``"auto"`` (the default): ``"brown"`` for the samples whose ``y0`` is inconsistent,
  nothing for the others (OrdinaryDiffEq's default for mass-matrix problems with implicit
  solvers, which returns at once when the residual is within tolerance).
- ``"none"``: nothing.

Consistency is measured in the solver's norm: the RMS over the algebraic equations of
``g_i / (atol_i + rtol_i·|y_i|)``, ``i`` the row index (for ``M = diag(I, 0)`` row ``i`` and
variable ``i`` coincide); ``y0`` is consistent when it is ``≤ 1``. Newton iterates until the
norm is ``≤ 1e-3`` or for 10 iterations; a sample whose norm is then still above 1 (or not
finite, or whose ``∂g/∂y_C`` is singular) has failed: it keeps its ``y0`` and ends with
``ReturnCode.InitialFailure`` without being integrated. Under ``stepping="joint"`` the
batch is one system: one failed sample fails them all.

A singular ``M`` that is not in semi-explicit form (e.g. ``[[1, 1], [1, 1]]``) has its
constraints in the left null space ``W`` of ``M`` (``0 = Wᵀ f``): ``"check"`` and ``"auto"``
measure ``Wᵀ f`` (as the projection ``W Wᵀ f`` in the same norm), but Brown's method needs
the algebraic variables, so an inconsistent ``y0`` there (or ``"brown"`` at all) raises a
``ValueError`` that says how to write the problem instead.

Gradients: the Newton iterations are not recorded. When the solve is differentiated, one
more Newton step ``y_C = y_C* − J*⁻¹ g(t0, y_D, y_C*)`` with a constant ``J* = ∂g/∂y_C``
at the solution is taken on autograd's tape; its value is ``y_C*`` and its derivative is
the implicit-function theorem's ``dy_C/dθ = −J*⁻¹ (∂g/∂y_D · dy_D/dθ + ∂g/∂θ)`` for the
differential initial values and the parameters ``θ``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from hybrideq.engines.torch._loop import LoopResult
from hybrideq.solution import ReturnCode

__all__ = ["INIT_ALGS", "DAEInit", "MassStructure", "initialize_dae", "mass_structure"]

INIT_ALGS = ("auto", "brown", "check", "none")

_TIGHT = 1e-3  # Newton's target, a fraction of the consistency tolerance (norm ≤ 1)
_MAX_NEWTON = 10
_MAX_HALVINGS = 5
_INITIAL_FAILURE = int(ReturnCode.InitialFailure)

RHSFn = Callable[[Tensor, Tensor], Tensor]
JacFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class MassStructure:
    """Which equations and variables of ``M y' = f`` are algebraic.

    Attributes:
        singular: whether ``M`` is singular (otherwise there is nothing to initialise).
        semi_explicit: zero rows ``rows`` and zero columns ``cols`` of equal number, the
            rest of ``M`` invertible.
        rows: the algebraic equations (zero rows of ``M``), ``(k,)`` indices.
        cols: the algebraic variables (zero columns of ``M``), ``(k,)`` indices.
        projector: for a singular ``M`` not in semi-explicit form, the orthogonal
            projector ``W Wᵀ`` ``(n, n)`` onto its left null space; ``k`` its rank.
        k: the number of algebraic equations.
    """

    singular: bool
    semi_explicit: bool
    rows: Tensor
    cols: Tensor
    projector: Tensor | None
    k: int


def _full_rank(m: Tensor) -> bool:
    """Whether the square matrix ``m`` is invertible (exact zeros and an SVD rank test)."""
    if m.shape[0] == 0:
        return True
    if bool((m == torch.diag(m.diagonal())).all()):  # diagonal: no SVD needed
        return bool((m.diagonal() != 0).all())
    return int(torch.linalg.matrix_rank(m)) == m.shape[0]


def mass_structure(mass: Tensor) -> MassStructure:
    """Classify ``mass`` ``(n, n)``: regular, semi-explicit singular, or other singular."""
    m = mass.detach()
    n = m.shape[0]
    zero_rows = (m == 0).all(1)
    zero_cols = (m == 0).all(0)
    rows = torch.nonzero(zero_rows)[:, 0]
    cols = torch.nonzero(zero_cols)[:, 0]
    k = int(rows.numel())
    if k == int(cols.numel()) and _full_rank(m[~zero_rows][:, ~zero_cols]):
        return MassStructure(k > 0, True, rows, cols, None, k)  # k = 0: M is regular
    # Singular, not in semi-explicit form: the constraints are Wᵀ f = 0, W the left null
    # space of M (columns of U with negligible singular values).
    u, s, _ = torch.linalg.svd(m.to(torch.float64) if m.dtype != torch.float64 else m)
    tol = s.max().clamp_min(1e-300) * n * torch.finfo(m.dtype).eps
    w = u[:, s <= tol].to(m.dtype)
    return MassStructure(True, False, rows, cols, w @ w.T, int(w.shape[1]))


def _not_semi_explicit_error() -> ValueError:
    return ValueError(
        "mass_matrix is singular but not in semi-explicit form (zero rows for the algebraic "
        "equations, zero columns for the algebraic variables, the rest invertible), so the "
        "initial values cannot be made consistent. Write the DAE in semi-explicit form (e.g. "
        "M = diag(1, …, 1, 0, …, 0) with the constraints as the last equations), give a "
        "consistent y0 and pass initializealg='check', or pass initializealg='none'"
    )


@dataclass
class DAEInit:
    """The outcome of the initialisation, per sample.

    Attributes:
        y0: the initial state to integrate from ``(B, n)`` (corrected where it was
            inconsistent and Newton converged; the user's elsewhere).
        failed: ``(B,)`` samples that must not be integrated (``InitialFailure``).
        nf: ``(B,)`` evaluations of ``f`` each sample took part in.
        njac: ``(B,)`` Jacobian blocks computed for each sample.
    """

    y0: Tensor
    failed: Tensor
    nf: Tensor
    njac: Tensor

    def hold(self, t0: Tensor, t1: Tensor, saveat: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Spans and save times that keep failed samples at ``t0``.

        A failed sample gets the empty span ``t1 = t0`` (the loops finish it at once and
        save ``y0`` at save times equal to ``t0``); its save times are mirrored to run
        forwards, so the loop's save pointer sees an increasing row.
        """
        if not bool(self.failed.any()):
            return t1, saveat
        t1 = torch.where(self.failed, t0, t1)
        if saveat is not None:
            mirrored = t0[:, None] + (saveat - t0[:, None]).abs()
            saveat = torch.where(self.failed[:, None], mirrored, saveat)
        return t1, saveat

    def finish(self, res: LoopResult, saveat: Tensor | None) -> LoopResult:
        """Add the counters to the loop's result and mark failed samples."""
        res.nf = res.nf + self.nf
        if "njac" in res.records:
            res.records["njac"] = res.records["njac"] + self.njac
        if bool(self.failed.any()):
            res.retcode = torch.where(self.failed, _INITIAL_FAILURE, res.retcode)
            if saveat is not None:
                res.t = saveat
        return res


class _AlgebraicSystem:
    """``g(x) = f_R(t0, y0 with y_C = x)`` and its Jacobian block ``∂g/∂x`` for a batch."""

    def __init__(
        self,
        rhs: RHSFn,
        t0: Tensor,
        y0: Tensor,
        rows: Tensor,
        cols: Tensor,
        jac: JacFn | None,
        autodiff: bool,
    ) -> None:
        self.rhs, self.t0 = rhs, t0
        self.y0 = y0.detach()
        self.rows, self.cols = rows, cols
        self.jac = jac
        self.autodiff = autodiff

    def state(self, x: Tensor) -> Tensor:
        return self.y0.index_copy(1, self.cols, x)

    def residual(self, x: Tensor) -> Tensor:
        return self.rhs(self.t0, self.state(x))[:, self.rows]

    def jacobian(self, x: Tensor, g: Tensor) -> tuple[Tensor, int]:
        """``∂g/∂x`` ``(B, k, k)`` at ``x`` where ``g(x) = g``, and the evaluations of ``f``
        it took (for ``nf``)."""
        y = self.state(x)
        if self.jac is not None:
            full = self.jac(self.t0, y).detach()
            return full[:, self.rows][:, :, self.cols], 0
        if self.autodiff:
            try:
                return self._reverse_mode(y), 0
            except Exception as e:  # f is not differentiable (NumPy code, .item())
                warnings.warn(
                    f"automatic Jacobian failed ({type(e).__name__}: {e}); using finite "
                    "differences for the DAE initialisation instead. Pass jac= to the "
                    "ODEProblem, or autodiff=False to the solver to silence this",
                    stacklevel=6,
                )
                self.autodiff = False
        return self._finite_differences(y, g)

    def _reverse_mode(self, y: Tensor) -> Tensor:
        with torch.enable_grad():
            yv = y.detach().requires_grad_(True)
            out = self.rhs(self.t0, yv)
            k = int(self.rows.numel())
            if not out.requires_grad:  # f does not depend on y
                return y.new_zeros(y.shape[0], k, k)
            rows = []
            for r in self.rows.tolist():
                cot = torch.zeros_like(out)
                cot[:, r] = 1.0
                (g,) = torch.autograd.grad(out, yv, cot, retain_graph=True, allow_unused=True)
                rows.append(y.new_zeros(y.shape[0], k) if g is None else g[:, self.cols])
        return torch.stack(rows, 1).detach()

    def _finite_differences(self, y: Tensor, g: Tensor) -> tuple[Tensor, int]:
        eps = torch.finfo(y.dtype).eps
        cols = []
        for j in self.cols.tolist():
            delta = eps**0.5 * y[:, j].abs().clamp_min(1.0)
            yj = y.clone()
            yj[:, j] = yj[:, j] + delta
            cols.append((self.rhs(self.t0, yj)[:, self.rows] - g) / delta[:, None])
        return torch.stack(cols, -1), len(cols)


def _rms(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x, dim=-1) / max(x.shape[-1], 1) ** 0.5


def initialize_dae(
    rhs: RHSFn,
    mass: Tensor,
    y0: Tensor,
    t0: Tensor,
    rtol: Tensor,
    atol: Tensor,
    alg: str,
    *,
    jac: JacFn | None = None,
    autodiff: bool = True,
    differentiable: bool = False,
    joint: bool = False,
) -> DAEInit | None:
    """Make ``y0`` ``(B, n)`` consistent with ``M y' = f(t0, y0)`` (see the module docstring).

    Args:
        rhs: the problem's internal right-hand side ``(t (B,), y (B, n)) -> (B, n)``.
        mass: the mass matrix ``(n, n)``.
        y0: the user's initial states ``(B, n)``.
        t0: the initial times ``(B,)``.
        rtol: relative tolerance (a scalar or ``(1, n)`` tensor).
        atol: absolute tolerance (a scalar or ``(1, n)`` tensor).
        alg: ``"auto"``, ``"brown"``, ``"check"`` or ``"none"``.
        jac: the problem's Jacobian ``(t, y) -> (B, n, n)``, if it has one.
        autodiff: autograd (``True``) or finite differences for ``∂g/∂y_C`` without ``jac``.
        differentiable: record the corrected ``y0``'s dependence on the differential
            initial values and the parameters (one more Newton step on the tape).
        joint: the batch is stepped as one system (``stepping="joint"``): one sample's
            failure is the whole batch's, and every sample keeps its ``y0``.

    Returns:
        ``None`` where there is nothing to do (``"none"``, or a regular ``M``), else a
        :class:`DAEInit`.

    Raises:
        ValueError: for ``"brown"`` with a singular ``M`` not in semi-explicit form, and for
            ``"auto"`` when such a problem's ``y0`` is inconsistent.
    """
    if alg == "none":
        return None
    structure = mass_structure(mass)
    if not structure.singular:
        return None
    if alg == "brown" and not structure.semi_explicit:
        raise _not_semi_explicit_error()
    batch = y0.shape[0]
    device = y0.device
    nf = torch.zeros(batch, dtype=torch.int64, device=device)
    njac = torch.zeros_like(nf)
    rows, cols = structure.rows.to(device), structure.cols.to(device)

    def norm(y: Tensor, g: Tensor) -> Tensor:
        """Weighted RMS of the algebraic residual ``g`` (``(B, k)`` rows, or ``(B, n)``)."""
        scale = (atol + rtol * y.abs()).expand(y.shape)
        if structure.projector is not None:
            return torch.linalg.vector_norm(g / scale, dim=-1) / structure.k**0.5
        return _rms(g / scale[:, rows])

    with torch.no_grad():
        y_d = y0.detach()
        f0 = rhs(t0, y_d)
        nf += 1
        if structure.projector is not None:
            r0 = f0 @ structure.projector.T
        else:
            r0 = f0[:, rows]
        nr0 = norm(y_d, r0)
        bad = ~(nr0 <= 1)  # NaN residuals are inconsistent too
    if alg == "check":
        return DAEInit(y0, bad.any().expand_as(bad) if joint else bad, nf, njac)
    todo = bad if alg == "auto" else torch.ones_like(bad)
    if not bool(todo.any()):
        return DAEInit(y0, bad, nf, njac)
    if not structure.semi_explicit:
        raise _not_semi_explicit_error()

    system = _AlgebraicSystem(rhs, t0, y_d, rows, cols, jac, autodiff)
    with torch.no_grad():
        x = y_d[:, cols]
        r, nr = r0, nr0
        running = todo & torch.isfinite(nr)
        jac_x: Tensor | None = None
        for _ in range(_MAX_NEWTON):
            running = running & (nr > _TIGHT)
            if not bool(running.any()):
                break
            jmat, evals = system.jacobian(x, r)
            nf += running * evals
            njac += running
            delta, info = torch.linalg.solve_ex(jmat, -r[:, :, None])
            delta = delta[:, :, 0]
            solvable = (
                (info == 0) & torch.isfinite(delta).all(-1) & torch.isfinite(jmat).all((1, 2))
            )
            running = running & solvable
            # Backtracking: halve the step while the norm (with this point's weights)
            # does not fall.
            y_now = system.state(x)
            lam = torch.ones_like(nr)
            searching = running.clone()
            x_new, r_new = x.clone(), r.clone()
            for _ in range(_MAX_HALVINGS + 1):
                if not bool(searching.any()):
                    break
                x_try = torch.where(searching[:, None], x + lam[:, None] * delta, x)
                r_try = system.residual(x_try)
                nf += searching
                nr_try = norm(y_now, r_try)
                better = searching & (nr_try < nr)  # NaN never is
                x_new = torch.where(better[:, None], x_try, x_new)
                r_new = torch.where(better[:, None], r_try, r_new)
                searching = searching & ~better
                lam = lam * 0.5
            moved = running & ~searching
            running = moved  # no decrease along the Newton direction: stalled
            x = torch.where(moved[:, None], x_new, x)
            r = torch.where(moved[:, None], r_new, r)
            nr = torch.where(moved, norm(system.state(x), r), nr)
        converged = torch.isfinite(nr) & (nr <= 1)
        failed = todo & ~converged
        fixed = todo & converged
        if bool(fixed.any()) and differentiable:
            jac_x, evals = system.jacobian(x, r)
            nf += fixed * evals
            njac += fixed
    y_fixed = y0.index_copy(1, cols, x)  # y_D keeps its graph; x is a constant
    if differentiable and bool(fixed.any()):
        assert jac_x is not None
        # One Newton step on the tape from the solution: the implicit-function derivative.
        y_tape = y0.index_copy(1, cols, x)
        g = rhs(t0, y_tape)[:, rows]
        nf += fixed
        eye = torch.eye(int(cols.numel()), dtype=x.dtype, device=device).expand_as(jac_x)
        j_safe = torch.where(fixed[:, None, None], jac_x, eye)
        step = torch.linalg.solve(j_safe, g[:, :, None])[:, :, 0]
        x_tape = x - torch.where(fixed[:, None], step, torch.zeros_like(step))
        y_fixed = y0.index_copy(1, cols, x_tape)
    if joint and bool(failed.any()):
        return DAEInit(y0, torch.ones_like(failed), nf, njac)
    y_out = torch.where(fixed[:, None], y_fixed, y0)
    return DAEInit(y_out, failed, nf, njac)
