"""Published reference values of the stiff test problems.

The values marked *test set* are copied digit for digit from the *Test Set for IVP Solvers*
(F. Mazzia, C. Magherini et al., University of Bari, https://archimede.uniba.it/~testset/),
from the ``solut``/``*soln`` subroutines of its Fortran problem files. The same digits are
in the R package deTestSet (K. Soetaert, J. Cash, F. Mazzia; CRAN), function
``reference()`` in ``R/ex_reference.R`` and ``polsoln`` in ``src/Ex_pollution.f``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reference", "reference"]

_TESTSET = "Mazzia & Magherini, Test Set for IVP Solvers, https://archimede.uniba.it/~testset/"
_RADAU5_CRAY = (
    "computed by the test set with RADAU5 in true double precision on a Cray C90, "
    "uround = 1.01e-19, rtol = atol = h0 = 1.1e-18"
)
_RADAU_ALPHA = (
    "computed by the test set with RADAU on an Alphaserver DS20E, uround = 1.01e-19, "
    "rtol = h0 = 1.1e-18"
)


@dataclass(frozen=True)
class Reference:
    """A reference value ``y(t)`` of a library problem at its final time.

    Attributes:
        t: the time of the value, the end of the problem's span.
        y: the state at ``t``, one float per component.
        source: where the digits come from.
        note: how they were computed, and which problem settings they belong to.
    """

    t: float
    y: tuple[float, ...]
    source: str
    note: str


_REFERENCES: dict[str, Reference] = {
    "hires": Reference(
        t=321.8122,
        y=(
            0.7371312573325668e-3,
            0.1442485726316185e-3,
            0.5888729740967575e-4,
            0.1175651343283149e-2,
            0.2386356198831331e-2,
            0.6238968252742796e-2,
            0.2849998395185769e-2,
            0.2850001604814231e-2,
        ),
        source=f"{_TESTSET}, problem HIRES (hires.f, subroutine solut); deTestSet R/ex_reference.R",
        note=f"hires() with its defaults; {_RADAU5_CRAY}.",
    ),
    "pollution": Reference(
        t=60.0,
        y=(
            0.5646255480022769e-1,
            0.1342484130422339,
            0.4139734331099427e-8,
            0.5523140207484359e-2,
            0.2018977262302196e-6,
            0.1464541863493966e-6,
            0.7784249118997964e-1,
            0.3245075353396018,
            0.7494013383880406e-2,
            0.1622293157301561e-7,
            0.1135863833257075e-7,
            0.2230505975721359e-2,
            0.2087162882798630e-3,
            0.1396921016840158e-4,
            0.8964884856898295e-2,
            0.4352846369330103e-17,
            0.6899219696263405e-2,
            0.1007803037365946e-3,
            0.1772146513969984e-5,
            0.5682943292316392e-4,
        ),
        source=f"{_TESTSET}, problem POLLU (pollu.f, subroutine solut); deTestSet "
        "src/Ex_pollution.f, subroutine polsoln",
        note=f"pollution() with its defaults; {_RADAU5_CRAY}.",
    ),
    "robertson": Reference(
        t=1e11,
        y=(0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050),
        source=f"{_TESTSET}, problem ROBER (rober.f, subroutine solut); deTestSet R/ex_reference.R",
        note="robertson(tspan=(0.0, 1e11)): the test set's span is [0, 1e11], longer "
        f"than the library's default (0, 1e5); {_RADAU_ALPHA}, atol = 1.1e-18.",
    ),
    "orego": Reference(
        t=360.0,
        y=(0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3),
        source=f"{_TESTSET}, problem OREGO (orego.f, subroutine solut); deTestSet R/ex_reference.R",
        note=f"orego() with its defaults; {_RADAU_ALPHA}, atol = 1.1e-40.",
    ),
    "van_der_pol": Reference(
        t=2000.0,
        y=(0.1706167732170469e1, -0.8928097010248125e-3),
        source=f"{_TESTSET}, problem VDPOL (vdpolm.f, subroutine solut); deTestSet "
        "R/ex_reference.R",
        note="van_der_pol() with its defaults (form='testset', μ = 1e3, y0 = (2, 0)); "
        f"{_RADAU_ALPHA}, atol = 1.1e-18.",
    ),
    "van_der_pol_scaled": Reference(
        t=6.3,
        y=(-1.419600849524987, 1.3982502709270315),
        source="computed for hybrideq (no published value exists for this form)",
        note="van_der_pol(form='scaled') with its defaults (μ = 1e6, y0 = (2, 0), "
        "t ∈ [0, 6.3]): scipy.integrate.solve_ivp(method='Radau', rtol=atol=3e-14, "
        "analytic Jacobian), SciPy 1.17.1, float64. The same run at rtol=atol=1e-13 "
        "differs by 2e-14 (y1) and 7e-14 (y2) relative; the same run reproduces the "
        "test set's VDPOL value at the equivalent time t = 2 (τ = 2000, y2 scaled by "
        "1000) to 3e-15 relative. Trust about 12 significant digits.",
    ),
}


def reference(name: str) -> Reference:
    """The reference value of a stiff library problem at the end of its span.

    Names: ``"hires"``, ``"pollution"``, ``"robertson"`` (at ``t = 1e11``), ``"orego"``,
    ``"van_der_pol"`` (the test-set form, ``μ = 1e3``) and ``"van_der_pol_scaled"``
    (``μ = 1e6``, computed here, not published). The test-set values carry all 16 digits
    that the test set publishes; its authors computed them with RADAU5 at
    ``rtol = atol = 1.1e-18`` in extended precision.

    Args:
        name: the problem's name, as in ``hybrideq.library``.

    Returns:
        The reference, with its time, values, source and notes.

    Raises:
        KeyError: no reference for ``name``; the message lists the known names.

    Example:
        >>> import hybrideq as hq
        >>> ref = hq.library.reference("orego")
        >>> ref.t, ref.y[0]
        (360.0, 1.000814870318523)
    """
    try:
        return _REFERENCES[name]
    except KeyError:
        known = ", ".join(repr(k) for k in _REFERENCES)
        raise KeyError(f"no reference value for {name!r}; known: {known}") from None
