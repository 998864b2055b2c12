"""W3 (BENCHMARKS.md): stiff work-precision on HIRES, Pollution and Van der Pol μ = 1e6.

- HIRES (8 components, t ∈ [0, 321.8122]) and Pollution (20 species, 25 reactions,
  t ∈ [0, 60]) from the IVP test set; errors against its published reference values.
- Van der Pol in the "scaled" form of SciMLBenchmarks, y1' = y2, y2' = μ((1 − y1²)y2 − y1),
  μ = 1e6, y0 = (2, 0), t ∈ [0, 6.3]; no published reference exists, so the error is
  against ``hybrideq.library.reference("van_der_pol_scaled")`` or scipy Radau at
  rtol = 1e-12 (computed once and cached in ``results/``).

rtol = 1e-4 … 1e-8 (quick: 1e-4, 1e-6), atol = 1e-4·rtol. Contenders as W2: scipy BDF /
Radau / LSODA (NumPy right-hand side, analytic Jacobian), diffrax Kvaerno5 (JAX, jit) and
the hybrideq stiff solvers this version has. Error: RMS over the components of
``(y − ref) / (|ref| + 1e-4)`` at t_end; ``scd = −log10`` of its largest component (the IVP
test set's mixed significant correct digits).

Run from the repository root::

    python benchmarks/w3_stiff.py --quick
    python benchmarks/w3_stiff.py --plot benchmarks/results/w3_stiff.png
    python benchmarks/w3_stiff.py --problems hires,pollution
"""

from __future__ import annotations

from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import _stiff as S

PROBLEMS = ("hires", "pollution", "van_der_pol")
TOLERANCES = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
TOLERANCES_QUICK = (1e-4, 1e-6)
ATOL_RATIO = 1e-4
EQUAL_ERROR = (1e-3, 1e-5, 1e-7)


def main() -> None:
    parser = C.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--problems",
        default=",".join(PROBLEMS),
        help=f"comma-separated, from {', '.join(PROBLEMS)} (default: all)",
    )
    parser.add_argument(
        "--atol-ratio", type=float, default=ATOL_RATIO, help="atol = R·rtol (default 1e-4)"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args()
    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = [p for p in names if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; choose from {', '.join(PROBLEMS)}")
    C.setup()
    hq = C.import_hybrideq()
    meta = C.machine_info()
    tolerances = TOLERANCES_QUICK if args.quick else TOLERANCES
    warmup, repeats = 1, args.repeats or (2 if args.quick else 3)
    title = (
        f"W3 stiff work-precision, rtol {tolerances[0]:g}…{tolerances[-1]:g}, "
        f"atol = {args.atol_ratio:g}·rtol, float64"
    )
    C.print_header(title, args, meta)
    print(
        f"   timing: {warmup} warm-up run(s), median of {repeats} timed runs per tolerance, "
        "the contenders taking turns (round robin)"
    )

    all_rows: list[dict[str, Any]] = []
    equal: list[dict[str, Any]] = []
    studies = []
    sources: dict[str, Any] = {}
    for name in names:
        spec = S.PROBLEMS[name]
        print(f"\n-- {spec.title}")
        problem, origin = S.load_problem(hq, spec)
        print(f"   hybrideq problem: {origin}")
        reference, how = S.reference_for(hq, spec)
        print(f"   reference ({how}): {reference.source}")
        sources[name] = {"hybrideq_problem": origin, "reference": reference.source}
        wp, skipped = S.run_study(
            hq, spec, problem, reference, tolerances, args.atol_ratio, args, warmup, repeats
        )
        studies.append(wp)
        rows = S.rows_of(wp, skipped, problem=name)
        C.print_table(f"W3 {spec.title}", rows, S.COLUMNS)
        S.print_failures(rows)
        eq = S.equal_error_rows(wp, EQUAL_ERROR, problem=name)
        C.print_table(
            f"{name}: time to reach an error (fastest run with error ≤ target)",
            eq,
            S.equal_error_columns(EQUAL_ERROR),
        )
        all_rows += rows
        equal += eq

    print("Notes:")
    print(
        f"  - error: RMS over components of |y - ref| / (|ref| + {args.atol_ratio:g}) at "
        "t_end; scd = -log10(max component), the IVP test set's mixed significant correct "
        "digits. '× scipy BDF' = time / scipy BDF's time at the same rtol."
    )
    print(
        "  - scipy: NumPy RHS and analytic Jacobian; it reports no rejected steps. diffrax: "
        "time of the compiled call, 'compile' = trace + lower + compile; no NFE/Jacobian "
        "counts (diffrax reports steps only)."
    )
    paths = C.write_results(
        "w3_stiff_quick" if args.quick else "w3_stiff",
        all_rows,
        {
            **meta,
            "problems": sources,
            "tolerances": list(tolerances),
            "atol_ratio": args.atol_ratio,
            "warmup": warmup,
            "repeats": repeats,
        },
        json_path=args.json,
        extra={"equal_error": equal},
    )
    print("results written to " + ", ".join(str(p) for p in paths))
    if args.plot:
        S.plot_studies(studies, args.plot, title)


if __name__ == "__main__":
    main()
