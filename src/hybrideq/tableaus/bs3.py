"""BS3: the Bogacki–Shampine 3(2) pair with FSAL (no interpolant of its own).

P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge–Kutta formulas",
Appl. Math. Lett. 2 (1989) 321–325.

Numbers copied from SciML/OrdinaryDiffEq.jl (snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee; the file last changed in da6a633b4f99),
``lib/OrdinaryDiffEqLowOrderRK/src/low_order_rk_tableaus.jl``, the rational (generic ``T``)
method of ``BS3ConstantCache``, lines 51–67, written here as ``p / q``:

- ``c``: ``c1, c2`` at lines 57–58 (our ``c[1], c[2]``), ``c[3] = 1``;
- ``a``: ``a21, a32, a41..a43`` at lines 52–56 (``a31 = 0``);
- ``b``: the last row ``a41..a43`` with ``b4 = 0`` (``u = uprev + dt*(a41*k1 + a42*k2 +
  a43*k3)``, ``k4 = f(u, t + dt)``: ``low_order_rk_perform_step.jl`` lines 21–22), so the
  method is FSAL;
- ``btilde``: lines 63–66, **negated**. There ``btilde = b̂ − b`` (the commented ``b̂`` at
  lines 59–62: ``7/24 − 2/9 = 5/72``, ``btilde4 = +1/8``); our convention is
  ``btilde = b − b̂``;
- ``stability_size``: OrdinaryDiffEq defines no ``alg_stability_size`` for ``BS3``
  (``lib/OrdinaryDiffEqLowOrderRK/src/alg_utils.jl`` has one for ``DP5`` only), so ``None``;
- no dense output: cubic Hermite interpolation is used (as OrdinaryDiffEq does for BS3).
"""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau

__all__ = ["BS3"]

BS3: ExplicitRKTableau = ExplicitRKTableau(
    name="BS3",
    order=3,
    # c1, c2: lines 57-58.
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    # a21, a32, a41, a42, a43: lines 52-56.
    a=(
        (),
        (1 / 2,),
        (0.0, 3 / 4),
        (2 / 9, 1 / 3, 4 / 9),
    ),
    b=(2 / 9, 1 / 3, 4 / 9, 0.0),
    # -(btilde1..btilde4) of lines 63-66.
    btilde=(-5 / 72, 1 / 12, 1 / 9, -1 / 8),
    embedded_order=2,
    fsal=True,
    dense=None,
    dense_order=None,
    stiffness_stages=None,
    stability_size=None,
    source=(
        "Bogacki & Shampine, Appl. Math. Lett. 2 (1989) 321-325; SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqLowOrderRK/src/low_order_rk_tableaus.jl (BS3ConstantCache)"
    ),
)
