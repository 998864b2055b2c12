"""Automatic stiffness switching (``AutoTsit5(Rodas5P())``), decided per sample.

OrdinaryDiffEq.jl's ``AutoSwitch`` rule (``OrdinaryDiffEqCore/src/composite_algs.jl``;
REFERENCES.md §6), applied to every sample separately after each accepted step:

- stiffness ``= |eigen_est · dt| / stability_size(nonstiff)``; a sample is *detected stiff*
  when it exceeds ``nonstifftol = 9/10`` (on the non-stiff method) or ``stifftol = 9/10``
  (on the stiff method);
- ``eigen_est`` is Shampine's estimate from two explicit stages with equal ``c`` on the
  non-stiff method, and ``‖J‖_∞`` whenever the stiff method recomputes ``J``;
- consecutive detections are counted (positive runs for stiff, negative for non-stiff);
  a sample moves to the stiff method when the count exceeds ``maxstiffstep = 10`` and its
  next step is multiplied by ``dtfac = 2``; it moves back when the count falls below
  ``−maxnonstiffstep = −3`` and its step is divided by ``dtfac``.

When every running sample uses the same method, only that method is evaluated; a mixed
batch evaluates both on the whole batch (``f`` sees whole batches only) and keeps each
sample's own result. Dense output concatenates both methods' interpolation vectors, the
unused method's set to zero, so one interpolant serves every step.

**A variable-order BDF as the stiff method** (``AutoTsit5(QNDF())``; :mod:`._bdf`). The
BDF stepper is self-controlled and keeps a history per sample (order, backward
differences, step). While a sample is on it, its next step and order are the BDF's own
choice (:meth:`~._bdf.BDFStepper.propose`), not the stiff PI controller's. A sample that
switches into BDF restarts it: order 1 from its current ``(t, y, f)``, with the step the
switching rule gives (the explicit proposal times ``dtfac``), and a new Jacobian there
(:meth:`~._bdf.BDFStepper.restart`); a history left behind when a sample switched out is
never reused. OrdinaryDiffEq.jl restarts its multistep methods the same way:
``choose_algorithm!`` (``OrdinaryDiffEqCore/src/perform_step/composite_perform_step.jl``)
calls ``initialize!`` on the cache it switches to, and FBDF's ``initialize!``
(``OrdinaryDiffEqBDF/src/bdf_perform_step.jl``) runs ``reinitFBDF!``
(``bdf_utils.jl``) with ``derivative_discontinuity`` set, which resets the order to 1 and
clears the history (the default ``transfer_cache!`` hands nothing over). Its QNDF's
``initialize!`` resets only the dense-output vectors, so a QNDF history from before a
non-stiff stretch would be picked up again; we restart QNDF as FBDF does. The BDF's
``f(t_{n+1}, y_{n+1})`` is the converged Newton value, not a new evaluation, so a sample
that switches back to the explicit method evaluates ``f`` once at its current point before
its first explicit step. Dense output needs nothing special: the BDF interpolant
(:func:`~._bdf.dense_rows`) has the same ``y0 + Σ P_j(θ) V_j`` form over the step.

Not reproduced: OrdinaryDiffEq's ``switch_max``/``do_error_check`` shortcut, which skips the
error test of a non-stiff step right after a stiffness detection.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hybrideq.engines.torch._bdf import BDFStepper
from hybrideq.engines.torch._controller import PIController, PIState
from hybrideq.engines.torch._dirk import DIRKStepper
from hybrideq.engines.torch._implicit_loop import StepAttempt
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._loop import RHS
from hybrideq.engines.torch._rosenbrock import RosenbrockStepper
from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["CompositeStepper", "ExplicitRKStepper"]


class ExplicitRKStepper:
    """An explicit Runge–Kutta step in the implicit loop's stepper form (for composites)."""

    def __init__(self, tableau: ExplicitRKTableau, rhs: RHS) -> None:
        self.tab = tableau
        self.rhs = rhs
        self.order = tableau.order
        self.scheme = InterpolationScheme.of(tableau)
        self.eigen_est: Tensor | None = None

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        tab = self.tab
        h = dt[:, None]
        ks = [f0]
        states = [y]
        evals = 0
        for i in range(1, tab.stages):
            acc = torch.zeros_like(y)
            for j, a in enumerate(tab.a[i]):
                if a != 0.0:
                    acc = acc.add(ks[j], alpha=a)
            yi = y + h * acc
            ks.append(self.rhs(t + tab.c[i] * dt, yi))
            states.append(yi)
            evals += 1
        if tab.fsal:
            y1 = states[-1]
            f1 = ks[-1]
        else:
            inc = torch.zeros_like(y)
            for j, bj in enumerate(tab.b):
                if bj != 0.0:
                    inc = inc.add(ks[j], alpha=bj)
            y1 = y + h * inc
            f1 = self.rhs(t + dt, y1)
            evals += 1
        err = torch.zeros_like(y)
        assert tab.btilde is not None
        for j, bj in enumerate(tab.btilde):
            if bj != 0.0:
                err = err.add(ks[j], alpha=bj)
        err = err * h
        ks_all = ks
        if self.scheme.needs_extras:
            ks_all = list(ks)
            for e_i, row in enumerate(tab.extra_a):
                acc = torch.zeros_like(y)
                for j, a in enumerate(row):
                    if a != 0.0:
                        acc = acc.add(ks_all[j], alpha=a)
                ks_all.append(self.rhs(t + tab.extra_c[e_i] * dt, y + h * acc))
                evals += 1
        v = self.scheme.vectors(dt, y, y1, ks_all, f1)
        # Shampine's eigenvalue estimate from two stages with equal c.
        if tab.stiffness_stages is not None:
            i, j = tab.stiffness_stages
            gj = y1 if (j == tab.stages - 1 and tab.fsal) else states[j]
            num = torch.linalg.vector_norm(ks[j] - ks[i], dim=-1)
            den = torch.linalg.vector_norm(gj - states[i], dim=-1)
            self.eigen_est = torch.where(den > 0, num / torch.where(den > 0, den, 1), 0.0)
        zeros = torch.zeros_like(active)
        return StepAttempt(
            y1=y1,
            err=err,
            ok=torch.ones_like(active),
            v=v,
            f1=f1,
            evals=evals,
            njac=zeros,
            nlu=zeros,
        )

    def after(self, accept: Tensor, failed: Tensor) -> None:
        pass


class CompositeStepper:
    """Per-sample switching between a non-stiff explicit stepper and a stiff one.

    The stiff stepper is a one-step method (Rosenbrock, ESDIRK), stepped by the stiff PI
    controller, or the variable-order BDF, which chooses its own steps (module docstring).
    """

    def __init__(
        self,
        nonstiff: ExplicitRKStepper,
        stiff: RosenbrockStepper | DIRKStepper | BDFStepper,
        stability_size: float,
        ctl_nonstiff: PIController,
        ctl_stiff: PIController,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
        maxstiffstep: int = 10,
        maxnonstiffstep: int = 3,
        nonstifftol: float = 0.9,
        stifftol: float = 0.9,
        dtfac: float = 2.0,
        stiffalgfirst: bool = False,
    ) -> None:
        self.nonstiff, self.stiff = nonstiff, stiff
        self.multistep = isinstance(stiff, BDFStepper)
        # The loop's initial step is computed for this order; a BDF starts at order 1.
        self.order = stiff.order if (self.multistep and stiffalgfirst) else nonstiff.order
        self.stability_size = stability_size
        self.maxstiffstep, self.maxnonstiffstep = maxstiffstep, maxnonstiffstep
        self.nonstifftol, self.stifftol, self.dtfac = nonstifftol, stifftol, dtfac
        rows_a = self.nonstiff.scheme.coeffs
        rows_b = self.stiff.scheme.coeffs
        self.ja = len(rows_a)
        self.scheme = InterpolationScheme.polynomial(
            f"composite:{nonstiff.tab.name}:{stiff.scheme_key}", tuple(rows_a) + tuple(rows_b)
        )
        self.is_stiff = torch.full((batch,), stiffalgfirst, dtype=torch.bool, device=device)
        self.count = torch.zeros(batch, dtype=torch.int64, device=device)
        self.ctl_a: PIState = ctl_nonstiff.start(batch, dtype, device)
        self.ctl_b: PIState = ctl_stiff.start(batch, dtype, device)
        self.last_eigen = torch.zeros(batch, dtype=dtype, device=device)
        self.last_stiff = self.is_stiff.clone()
        self.switched = torch.zeros(batch, dtype=torch.int64, device=device)
        # Samples back on the explicit method after BDF, whose f0 is still the BDF's
        # Newton value: f is evaluated again until their first accepted explicit step.
        self.refresh_f0 = torch.zeros(batch, dtype=torch.bool, device=device)
        self.stiff_attempted = False  # the stiff stepper attempted the last step
        # Per loop iteration (BDF only): which samples were on the stiff method, and the
        # BDF order of each accepted BDF step (0 elsewhere).
        self.stiff_log: list[Tensor] = []
        self.order_log: list[Tensor] = []
        self._unlogged = False

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        stiff_rows = self.is_stiff & active
        nonstiff_rows = active & ~self.is_stiff
        any_stiff = bool(stiff_rows.any())
        any_nonstiff = bool(nonstiff_rows.any())
        self.last_stiff = self.is_stiff.clone()
        self.stiff_attempted = any_stiff
        self._unlogged = self.multistep
        extra = 0
        a = None
        if any_nonstiff:
            f0_a = f0
            refresh = self.refresh_f0 & nonstiff_rows
            if self.multistep and bool(refresh.any()):
                f0_a = torch.where(refresh[:, None], self.nonstiff.rhs(t, y), f0)
                extra = 1
            a = self.nonstiff.attempt(t, y, f0_a, dt, nonstiff_rows)
        b = self.stiff.attempt(t, y, f0, dt, stiff_rows) if any_stiff else None
        batch, n = y.shape
        if b is not None:
            # ‖J‖_∞ where the stiff method recomputed J.
            jnorm = self.stiff.jnorm
            self.last_eigen = torch.where(b.njac.bool(), jnorm, self.last_eigen)
        if a is not None and self.nonstiff.eigen_est is not None:
            self.last_eigen = torch.where(~self.is_stiff, self.nonstiff.eigen_est, self.last_eigen)
        zeros_a = torch.zeros(batch, self.ja, n, dtype=y.dtype, device=y.device)
        zeros_b = torch.zeros(
            batch, len(self.stiff.scheme.coeffs), n, dtype=y.dtype, device=y.device
        )
        if a is not None and b is None:
            v = torch.cat([a.v, zeros_b], 1)
            return StepAttempt(a.y1, a.err, a.ok, v, a.f1, a.evals + extra, a.njac, a.nlu)
        if b is not None and a is None:
            v = torch.cat([zeros_a, b.v], 1)
            return StepAttempt(b.y1, b.err, b.ok, v, b.f1, b.evals, b.njac, b.nlu)
        assert a is not None and b is not None and a.err is not None and b.err is not None
        sc = self.is_stiff[:, None]
        y1 = torch.where(sc, b.y1, a.y1)
        f1: Tensor | None = None
        if a.f1 is not None and b.f1 is not None:
            f1 = torch.where(sc, b.f1, a.f1)
        # where, not a product: the unused method's vectors may hold Inf/NaN.
        scv = sc[:, :, None]
        v = torch.cat([torch.where(scv, 0.0, a.v), torch.where(scv, b.v, 0.0)], 1)
        return StepAttempt(
            y1=y1,
            err=torch.where(sc, b.err, a.err),
            ok=torch.where(self.is_stiff, b.ok, a.ok),
            v=v,
            f1=f1,
            evals=a.evals + b.evals + extra,
            njac=b.njac * self.is_stiff,
            nlu=b.nlu * self.is_stiff,
        )

    def after(self, accept: Tensor, failed: Tensor) -> None:
        self.nonstiff.after(accept, failed)
        if not self.multistep:
            self.stiff.after(accept, failed)
            return
        assert isinstance(self.stiff, BDFStepper)
        # The BDF commits its history and order only for the samples it stepped.
        self.stiff.after(accept & self.last_stiff, failed & self.last_stiff)
        if self._unlogged:  # once per attempt (a jump at a stop time calls again)
            self._unlogged = False
            self.stiff_log.append(self.last_stiff)
            if self.stiff_attempted:
                self.order_log.append(self.stiff.order_log[-1])
            else:
                self.order_log.append(torch.zeros_like(self.count))

    def orders(self) -> tuple[Tensor, Tensor]:
        """Per loop iteration ``(iterations, B)``: on the stiff method, and the BDF order.

        The order is that of each accepted BDF step (0 elsewhere); BDF composites only.
        """
        if not self.order_log:
            empty = torch.zeros(0, self.count.shape[0], dtype=torch.int64, device=self.count.device)
            return empty.bool(), empty
        return torch.stack(self.stiff_log), torch.stack(self.order_log)

    def propose(self, dt: Tensor, eest: Tensor, accept: Tensor, failed: Tensor) -> Tensor:
        e = torch.where(failed, 0.0, eest)
        dt_a = self.ctl_a.propose(dt, e, accept & ~self.last_stiff)
        if self.multistep:
            # The BDF's own step (and order) selection; where it did not step, dt as is.
            if self.stiff_attempted:
                assert isinstance(self.stiff, BDFStepper)
                dt_b = self.stiff.propose(dt, eest, accept & self.last_stiff, failed)
            else:
                dt_b = dt
        else:
            dt_b = self.ctl_b.propose(dt, e, accept & self.last_stiff)
        dt_new = torch.where(self.last_stiff, dt_b, dt_a)
        # The switching rule, on accepted steps only.
        stiffness = (self.last_eigen * dt).abs() / self.stability_size
        tol = torch.where(self.last_stiff, self.stifftol, self.nonstifftol)
        detected = stiffness > tol
        count = torch.where(
            detected,
            torch.where(self.count < 0, 1, self.count + 1),
            torch.where(self.count > 0, -1, self.count - 1),
        )
        self.count = torch.where(accept, count, self.count)
        to_stiff = accept & ~self.is_stiff & (self.count > self.maxstiffstep)
        to_nonstiff = accept & self.is_stiff & (self.count < -self.maxnonstiffstep)
        dt_new = torch.where(to_stiff, dt_new * self.dtfac, dt_new)
        dt_new = torch.where(to_nonstiff, dt_new / self.dtfac, dt_new)
        self.is_stiff = (self.is_stiff | to_stiff) & ~to_nonstiff
        self.switched = self.switched + (to_stiff | to_nonstiff).long()
        if self.multistep:
            if bool(to_stiff.any()):
                assert isinstance(self.stiff, BDFStepper)
                self.stiff.restart(to_stiff)
            done_a = accept & ~self.last_stiff  # an accepted explicit step: f1 evaluated
            self.refresh_f0 = (self.refresh_f0 & ~done_a) | to_nonstiff
        return dt_new
