"""
    HybridEqEngine

The Julia side of hybrideq's Julia engine. Python (juliacall) calls these functions; they
build SciML problems from generated Julia code (sympy models) or from Python callbacks
(torch right-hand sides), solve them with OrdinaryDiffEq/StochasticDiffEq, and hand the
results back as plain Julia arrays that Python views without copying.

Layout: a state is a `Vector{Float64}` of length `n`; a batch of `B` states is an `n × B`
column-major `Matrix`, which is the same bytes as a C-contiguous `(B, n)` torch tensor.
Saved trajectories come back as `n × T` matrices (`(T, n)` on the Python side).

Facts relied on (docs/julia.md lists the files and commits read):
- `solve` keywords `reltol, abstol, saveat, dt, dtmin, dtmax, maxiters, dense, adaptive`
  (OrdinaryDiffEqCore `src/solve.jl`); `sol.retcode::SciMLBase.ReturnCode.T`,
  `sol.stats::DEStats` (SciMLBase `src/retcodes.jl`, `src/solutions/ode_solutions.jl`).
- `ODEFunction{true}(f; jac, vjp, vjp_p, mass_matrix)` with in-place hooks `jac(J,u,p,t)`,
  `vjp(out,λ,u,p,t)`, `vjp_p(out,λ,u,p,t)` (SciMLBase `src/scimlfunctions.jl`; `vjp_p`
  since v2.147). SciMLSensitivity uses `vjp`/`vjp_p` before any AD when they are given
  (`src/derivative_wrappers.jl`, since v7.97).
- `adjoint_sensitivities(sol, alg; sensealg, t, dgdu_discrete)` returns `(du0, dp')` with
  `dgdu_discrete(out, u, p, t, i)` writing `∂L/∂u(t_i)` (SciMLSensitivity
  `src/sensitivity_interface.jl`).
- Ensembles: `EnsembleProblem(prob; prob_func = (prob, ctx) -> ...)` with `ctx.sim_id`
  (SciMLBase v3 `src/ensemble/basic_ensemble_solve.jl`).
"""
module HybridEqEngine

using LinearAlgebra: LinearAlgebra, I
using ADTypes: AutoFiniteDiff, AutoForwardDiff
using SciMLBase: SciMLBase, ODEProblem, ODEFunction, SDEProblem, SDEFunction,
    EnsembleProblem, EnsembleSerial, EnsembleThreads, NullParameters, ReturnCode,
    successful_retcode, remake
using OrdinaryDiffEqTsit5: Tsit5, AutoTsit5
using OrdinaryDiffEqVerner: Vern7, AutoVern7
using OrdinaryDiffEqLowOrderRK: DP5, BS3, Euler, RK4
using OrdinaryDiffEqRosenbrock: Rosenbrock23, Rodas4, Rodas5P
using OrdinaryDiffEqSDIRK: TRBDF2, Kvaerno5, KenCarp4
using OrdinaryDiffEqBDF: QNDF, QBDF
using OrdinaryDiffEqNonlinearSolve: OrdinaryDiffEqNonlinearSolve
using StochasticDiffEq: StochasticDiffEq, EM, EulerHeun, RKMil, SRIW1, SOSRI, SOSRI2, SRA1,
    SOSRA, ImplicitEM, WienerProcess
using SciMLSensitivity: SciMLSensitivity, adjoint_sensitivities, InterpolatingAdjoint,
    QuadratureAdjoint, GaussAdjoint, BacksolveAdjoint, ZygoteVJP, EnzymeVJP, ReverseDiffVJP
using PythonCall: PythonCall, Py

export algorithm, load_model, model_problem, python_problem, model_sde_problem,
    python_sde_problem, solve_exported, ensemble_exported, adjoint_exported, retcode_name,
    NLNewton, enable_gpu, ensemble_kernel, ensemble_em, ensemble_array, solve_dense,
    ensemble_dense, interpolate_exported

const NLNewton = OrdinaryDiffEqNonlinearSolve.NLNewton

# --------------------------------------------------------------------------- algorithms

"""
    algorithm(expr::AbstractString)

The algorithm object for a constructor expression from hybrideq's solver table
(`hybrideq.engines.julia._algorithms`), e.g. `"Rodas5P(autodiff = AutoFiniteDiff())"`.
Evaluated in this module, where every constructor the table names is imported.
"""
algorithm(expr::AbstractString) = Core.eval(@__MODULE__, Meta.parse(expr))

# --------------------------------------------------------------------------- sympy models

"""
    load_model(source::AbstractString; name = "HybridEqModel") -> Module

Evaluate the Julia source of a `hybrideq.symbolic` model (`SymbolicODE.julia_source()`:
`module HybridEqModel` defining `f!`, `jac!`, `f`, optionally `mass_matrix(p)`;
`SymbolicSDE`: `f!`, `g!`) inside a fresh host module, so that models never replace one
another, and return the model module.
"""
function load_model(source::AbstractString; name::AbstractString = "HybridEqModel")
    host = Module(:HybridEqModels)
    Base.include_string(host, source)
    isdefined(host, Symbol(name)) || error("the model source defines no module $(name)")
    return getfield(host, Symbol(name))
end

_params(p) = p === nothing ? NullParameters() : Vector{Float64}(p)
_tspan(tspan) = (Float64(tspan[1]), Float64(tspan[2]))

"""
    model_problem(model::Module, u0, tspan, p) -> ODEProblem

An in-place `ODEProblem` whose right-hand side, analytic Jacobian and time derivative are
the model's generated `f!`, `jac!` and `tgrad!` (`ODEFunction` keywords `jac`, `tgrad`:
SciMLBase `src/scimlfunctions.jl`): no Python runs while it is integrated.
"""
function model_problem(model::Module, u0, tspan, p)
    f! = getfield(model, Symbol("f!"))
    jac! = getfield(model, Symbol("jac!"))
    pp = _params(p)
    M = isdefined(model, :mass_matrix) ? getfield(model, :mass_matrix)(pp) : I
    kw = isdefined(model, Symbol("tgrad!")) ? (; tgrad = getfield(model, Symbol("tgrad!"))) : (;)
    fun = ODEFunction{true}(f!; jac = jac!, mass_matrix = M, kw...)
    return ODEProblem(fun, Vector{Float64}(u0), _tspan(tspan), pp)
end

"""
    model_sde_problem(model::Module, u0, tspan, p; noise_shape = nothing, scalar = false)

An `SDEProblem` with the model's generated drift `f!` and diffusion `g!`; `noise_shape`
`(n, m)` makes the noise non-diagonal (`noise_rate_prototype = zeros(n, m)`), `scalar`
uses one Wiener process for every component.
"""
function model_sde_problem(model::Module, u0, tspan, p; noise_shape = nothing, scalar = false)
    f! = getfield(model, Symbol("f!"))
    g! = getfield(model, Symbol("g!"))
    return _sde_problem(f!, g!, u0, tspan, p, noise_shape, scalar)
end

function _sde_problem(f!, g!, u0, tspan, p, noise_shape, scalar)
    kw = (;)
    if noise_shape !== nothing
        kw = (; noise_rate_prototype = zeros(Float64, Int(noise_shape[1]), Int(noise_shape[2])))
    elseif scalar
        # the third argument (Z0) is needed by the SRI/SRA methods (StochasticDiffEqCore solve.jl)
        kw = (; noise = WienerProcess(0.0, 0.0, 0.0))
    end
    return SDEProblem(SDEFunction{true}(f!, g!), Vector{Float64}(u0), _tspan(tspan), _params(p); kw...)
end

# --------------------------------------------------------------------------- Python callbacks

"""
    PyCallback(fn)

A Julia function that calls the Python callable `fn` with its arguments. Arrays cross as
juliacall `ArrayValue` wrappers over the same memory (PythonCall converts a Julia array to
Python without copying), so `fn` writes its result into the first argument in place.
"""
struct PyCallback
    fn::Py
end

# Python writes into `out` through a NumPy view, which exists only for a strided Float64
# array; anything else (a view, a dual-number array) goes through a plain buffer.
_plain(x) = x isa Array{Float64} ? x : Array{Float64}(x)
_plain(x::Number) = Float64(x)
_plain(x::NullParameters) = x

function _call(c::PyCallback, out, args...)
    if out isa Array{Float64}
        c.fn(out, map(_plain, args)...)
    else
        buffer = Array{Float64}(undef, size(out))
        c.fn(buffer, map(_plain, args)...)
        out .= buffer
    end
    return nothing
end

# Fixed arities, not varargs: SciMLBase decides in-place vs out-of-place from the number of
# arguments of each method (`isinplace` in src/utils.jl): 4 for f!/jac!, 5 for vjp!/vjp_p!.
(c::PyCallback)(out, u, p, t) = _call(c, out, u, p, t)
(c::PyCallback)(out, λ, u, p, t) = _call(c, out, λ, u, p, t)

# Python's None arrives as `nothing` (juliacall's default conversion); a callable as `Py`.
_hook(x) = x === nothing ? nothing : PyCallback(Py(x))

"""
    python_problem(f, u0, tspan, p; jac = nothing, vjp = nothing, vjp_p = nothing,
                   mass_matrix = nothing) -> ODEProblem

An in-place `ODEProblem` whose right-hand side is the Python callable `f(du, u, p, t)`
(a torch function behind it). `jac(J, u, p, t)`, `vjp(out, λ, u, p, t)` and
`vjp_p(out, λ, u, p, t)` are optional Python hooks: the stiff solvers use `jac` (else
finite differences: the algorithm gets `AutoFiniteDiff()`), the adjoints use `vjp` and
`vjp_p` (computed by `torch.func.vjp`), so no Julia AD ever runs through Python.
"""
function python_problem(f, u0, tspan, p; jac = nothing, vjp = nothing, vjp_p = nothing,
        mass_matrix = nothing)
    kw = (;)
    (j = _hook(jac)) === nothing || (kw = (; kw..., jac = j))
    (v = _hook(vjp)) === nothing || (kw = (; kw..., vjp = v))
    (vp = _hook(vjp_p)) === nothing || (kw = (; kw..., vjp_p = vp))
    mass_matrix === nothing || (kw = (; kw..., mass_matrix = Matrix{Float64}(mass_matrix)))
    fun = ODEFunction{true}(PyCallback(Py(f)); kw...)
    return ODEProblem(fun, Vector{Float64}(u0), _tspan(tspan), _params(p))
end

"""
    python_sde_problem(f, g, u0, tspan, p; noise_shape = nothing, scalar = false)

An `SDEProblem` with Python drift `f(du, u, p, t)` and diffusion `g(du, u, p, t)`.
"""
python_sde_problem(f, g, u0, tspan, p; noise_shape = nothing, scalar = false) =
    _sde_problem(PyCallback(Py(f)), PyCallback(Py(g)), u0, tspan, p, noise_shape, scalar)

# --------------------------------------------------------------------------- solving

"""
    retcode_name(retcode) -> String

The name of a `SciMLBase.ReturnCode` member (`"Success"`, `"MaxIters"`, ...).
"""
retcode_name(retcode) = String(Symbol(retcode))

_stat(stats, name) = stats === nothing ? -1 : Int(getfield(stats, name))

function _export(sol, n::Int)
    # one column per saved time (`reduce(hcat, ...)` would return a lone vector unchanged)
    u = Matrix{Float64}(undef, n, length(sol.u))
    for (j, v) in enumerate(sol.u)
        u[:, j] .= vec(v)
    end
    s = sol.stats
    stats = (
        nf = _stat(s, :nf), nw = _stat(s, :nw), nsolve = _stat(s, :nsolve),
        njacs = _stat(s, :njacs), nnonliniter = _stat(s, :nnonliniter),
        naccept = _stat(s, :naccept), nreject = _stat(s, :nreject),
    )
    return (t = Vector{Float64}(sol.t), u = u, retcode = retcode_name(sol.retcode), stats = stats)
end

"""
    solve_exported(prob, alg; kwargs...) -> NamedTuple

Solve and export: `(t, u, retcode, stats)` with `u` an `n × T` `Matrix{Float64}` (Python
views it as `(T, n)` without copying) and `stats` the counters of `sol.stats`. A failed
solve keeps what it computed; its `retcode` says why it stopped.
"""
function solve_exported(prob, alg; kwargs...)
    sol = SciMLBase.solve(prob, alg; _options(kwargs)...)
    return _export(sol, length(prob.u0))
end

"""
    solve_dense(prob, alg; kwargs...) -> NamedTuple

`solve_exported`, plus the solution itself (`sol`) for dense output through
[`interpolate_exported`](@ref).
"""
function solve_dense(prob, alg; kwargs...)
    sol = SciMLBase.solve(prob, alg; _options(kwargs)...)
    return (exported = _export(sol, length(prob.u0)), sol = sol)
end

"""
    interpolate_exported(sol, ts) -> Matrix{Float64}

The solution's dense output `sol(τ)` at each time of `ts`, as an `n × length(ts)` matrix
(the method's own interpolant: SciMLBase solution call syntax).
"""
function interpolate_exported(sol, ts)
    times = Vector{Float64}(vec(ts))
    out = Matrix{Float64}(undef, length(sol.prob.u0), length(times))
    for (j, τ) in enumerate(times)
        out[:, j] .= vec(sol(τ))
    end
    return out
end

# Options from Python arrive as PyArrays and Ints; give `solve` plain types: save times
# and vector tolerances as Vector{Float64}, the SDE seed as the UInt64 it is declared as
# (StochasticDiffEqCore `src/solve.jl`).
function _options(kwargs)
    out = Dict{Symbol, Any}()
    for (k, v) in pairs(kwargs)
        out[k] = if v isa AbstractArray
            Vector{Float64}(vec(v))
        elseif k === :seed
            UInt64(v)
        else
            v
        end
    end
    return (; out...)
end

"""
    ensemble_exported(prob, alg, u0s::AbstractMatrix, ps; threads = true, kwargs...)

Solve one problem per column of `u0s` (`n × B`; `ps`: `np × B` or `nothing`) as an
`EnsembleProblem` (`EnsembleThreads()` for Julia right-hand sides; pass `threads = false`
for Python callbacks, which must hold the GIL) and export each solution.
"""
function ensemble_exported(prob, alg, u0s::AbstractMatrix, ps; threads = true, kwargs...)
    sim = _ensemble(prob, alg, u0s, ps, threads; kwargs...)
    return [_export(sim.u[i], length(prob.u0)) for i in 1:size(u0s, 2)]
end

"""
    ensemble_dense(prob, alg, u0s::AbstractMatrix, ps; threads = true, kwargs...)

`ensemble_exported`, plus the solutions themselves (`sols`) for dense output through
[`interpolate_exported`](@ref): `(exported, sols)`.
"""
function ensemble_dense(prob, alg, u0s::AbstractMatrix, ps; threads = true, kwargs...)
    sim = _ensemble(prob, alg, u0s, ps, threads; kwargs...)
    B = size(u0s, 2)
    return (exported = [_export(sim.u[i], length(prob.u0)) for i in 1:B],
        sols = [sim.u[i] for i in 1:B])
end

function _ensemble(prob, alg, u0s::AbstractMatrix, ps, threads::Bool; kwargs...)
    function prob_func(prob, ctx)
        i = ctx.sim_id
        newp = ps === nothing ? prob.p : Vector{Float64}(view(ps, :, i))
        return remake(prob; u0 = Vector{Float64}(view(u0s, :, i)), p = newp)
    end
    ens = EnsembleProblem(prob; prob_func = prob_func, safetycopy = false)
    ensalg = threads ? EnsembleThreads() : EnsembleSerial()
    return SciMLBase.solve(ens, alg, ensalg; trajectories = size(u0s, 2), _options(kwargs)...)
end

"""
    adjoint_exported(prob, alg, sensealg, t, dLdu::AbstractMatrix; kwargs...)

Gradients of a loss `L(u(t_1), …, u(t_T))` with respect to `u0` and `p` by
SciMLSensitivity's continuous adjoints: `dLdu` is `n × T` (`∂L/∂u(t_i)` in column `i`),
`sensealg` one of `InterpolatingAdjoint`, `QuadratureAdjoint`, `GaussAdjoint`,
`BacksolveAdjoint`. Returns `(du0, dp, retcode)`.
"""
function adjoint_exported(prob, alg, sensealg, t, dLdu::AbstractMatrix; kwargs...)
    ts = Vector{Float64}(t)
    # a dense forward solution: the adjoints interpolate it (no `saveat`)
    options = _options(kwargs)
    sol = SciMLBase.solve(prob, alg; options...)
    if !successful_retcode(sol.retcode)
        return (du0 = fill(NaN, length(prob.u0)), dp = fill(NaN, length(_plist(prob.p))),
            retcode = retcode_name(sol.retcode))
    end
    dg(out, u, p, tt, i) = (out .= view(dLdu, :, i); nothing)
    du0, dp = adjoint_sensitivities(sol, alg; sensealg = sensealg, t = ts,
        dgdu_discrete = dg, options...)
    return (du0 = Vector{Float64}(vec(du0)),
        dp = dp === nothing ? Float64[] : Vector{Float64}(vec(dp)),
        retcode = retcode_name(sol.retcode))
end

_plist(p) = p isa NullParameters ? Float64[] : p

# --------------------------------------------------------------------------- GPU

"""
    enable_gpu() -> Bool

Load the GPU part (`src/gpu.jl`: CUDA.jl, DiffEqGPU.jl, DLPack.jl) once; returns whether
CUDA has a functional device. Kept out of the package's load so that the CPU engine
never loads CUDA.
"""
function enable_gpu()
    isdefined(@__MODULE__, :GPU) || Base.include(@__MODULE__, joinpath(@__DIR__, "gpu.jl"))
    return Base.invokelatest(getfield(@__MODULE__, :GPU).functional)
end

"""
    ensemble_kernel(args...; kwargs...)

`GPU.ensemble_kernel!` (see `src/gpu.jl`): an `EnsembleGPUKernel` solve that writes into
torch CUDA tensors. Called through `invokelatest` because the GPU part is defined after
this module was loaded.
"""
ensemble_kernel(args...; kwargs...) =
    Base.invokelatest(getfield(@__MODULE__, :GPU).ensemble_kernel!, args...; kwargs...)

"""
    ensemble_em(args...; kwargs...)

`GPU.ensemble_em!` (see `src/gpu.jl`): Euler-Maruyama GPU ensembles of sympy SDEs.
"""
ensemble_em(args...; kwargs...) =
    Base.invokelatest(getfield(@__MODULE__, :GPU).ensemble_em!, args...; kwargs...)

"""
    ensemble_array(args...; kwargs...)

`GPU.ensemble_array` (see `src/gpu.jl`): an `EnsembleGPUArray` solve.
"""
ensemble_array(args...; kwargs...) =
    Base.invokelatest(getfield(@__MODULE__, :GPU).ensemble_array, args...; kwargs...)

end # module HybridEqEngine
