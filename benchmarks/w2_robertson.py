"""W2 (BENCHMARKS.md): Robertson, t ∈ [0, 1e5], a work-precision diagram, float64.

y1' = −k1 y1 + k3 y2 y3, y2' = k1 y1 − k2 y2² − k3 y2 y3, y3' = k2 y2², k = (0.04, 3e7, 1e4),
y0 = (1, 0, 0). rtol = 1e-3 … 1e-8 (quick: 1e-3, 1e-5, 1e-7) with atol = 1e-4·rtol (y2 peaks
at 3.7e-5 and ends near 7e-8, so atol must sit far below rtol).

Contenders: scipy solve_ivp BDF / Radau / LSODA (NumPy right-hand side and analytic
Jacobian, as a scipy user writes them), diffrax Kvaerno5 (JAX right-hand side, jit, compile
time apart) and the hybrideq stiff solvers Rodas5P / QNDF / KenCarp4 / Rosenbrock23 /
TRBDF2 / Kvaerno5 where this version has them (otherwise a "not available" row). The
hybrideq contenders solve ``hybrideq.library.robertson()`` when the library has it and it
agrees with the equations here, otherwise the same equations defined in ``_stiff.py``.

Timing and errors come from :func:`hybrideq.workprecision`: per tolerance every contender
runs once untimed, then ``--repeats`` times round robin; the median is reported. Error:
RMS over the components of ``(y − ref) / (|ref| + 1e-4)`` at t = 1e5 (1e-4 = atol/rtol, the
IVP test set's mixed error); ``scd = −log10`` of its largest component. Reference: scipy
Radau at rtol = 1e-12 (``hybrideq.library.reference("robertson")`` where it is at t = 1e5).

Run from the repository root::

    python benchmarks/w2_robertson.py --quick
    python benchmarks/w2_robertson.py --plot benchmarks/results/w2_robertson.png
"""

from __future__ import annotations

import _common as C  # first: pins the thread count before torch/numpy/jax load
import _stiff as S

TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
TOLERANCES_QUICK = (1e-3, 1e-5, 1e-7)
ATOL_RATIO = 1e-4
EQUAL_ERROR = (1e-3, 1e-5, 1e-7)


def main() -> None:
    parser = C.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--atol-ratio", type=float, default=ATOL_RATIO, help="atol = R·rtol (default 1e-4)"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args()
    C.setup()
    hq = C.import_hybrideq()
    meta = C.machine_info()
    spec = S.PROBLEMS["robertson"]
    tolerances = TOLERANCES_QUICK if args.quick else TOLERANCES
    warmup, repeats = 1, args.repeats or (2 if args.quick else 3)
    title = f"W2 {spec.title}, rtol {tolerances[0]:g}…{tolerances[-1]:g}, atol = {args.atol_ratio:g}·rtol, float64"
    C.print_header(title, args, meta)
    print(
        f"   timing: {warmup} warm-up run(s), median of {repeats} timed runs per tolerance, "
        "the contenders taking turns (round robin)"
    )
    problem, origin = S.load_problem(hq, spec)
    print(f"   hybrideq problem: {origin}")
    reference, how = S.reference_for(hq, spec)
    print(f"   reference ({how}): {reference.source}")

    wp, skipped = S.run_study(
        hq, spec, problem, reference, tolerances, args.atol_ratio, args, warmup, repeats
    )
    rows = S.rows_of(wp, skipped)
    C.print_table(title, rows, S.COLUMNS)
    S.print_failures(rows)
    eq = S.equal_error_rows(wp, EQUAL_ERROR)
    C.print_table(
        "time to reach an error (fastest run with error ≤ target)",
        eq,
        S.equal_error_columns(EQUAL_ERROR),
    )
    print("Notes:")
    print(
        f"  - error: RMS over components of |y - ref| / (|ref| + {args.atol_ratio:g}) at "
        f"t = {spec.tspan[1]:g}; scd = -log10(max component). '× scipy BDF' = time / scipy "
        "BDF's time at the same rtol."
    )
    print(
        "  - scipy: NumPy RHS and analytic Jacobian; it reports no rejected steps. diffrax: "
        "time of the compiled call, 'compile' = trace + lower + compile; no NFE/Jacobian "
        "counts (diffrax reports steps only)."
    )
    paths = C.write_results(
        "w2_robertson_quick" if args.quick else "w2_robertson",
        rows,
        {
            **meta,
            "problem": spec.title,
            "hybrideq_problem": origin,
            "reference": reference.source,
            "tolerances": list(tolerances),
            "atol_ratio": args.atol_ratio,
            "warmup": warmup,
            "repeats": repeats,
        },
        json_path=args.json,
        extra={"equal_error": eq},
    )
    print("results written to " + ", ".join(str(p) for p in paths))
    if args.plot:
        S.plot_studies([wp], args.plot, title)


if __name__ == "__main__":
    main()
