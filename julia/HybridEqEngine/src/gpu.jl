# GPU ensembles for sympy-defined models, loaded on demand by `HybridEqEngine.enable_gpu()`
# (it needs CUDA.jl in the environment: `hybrideq julia install --cuda`). Two ways, as
# DiffEqGPU offers them (docs/src/manual/choosing_ensembler.md: the kernel when it works):
#
# - `ensemble_kernel!`: DiffEqGPU's `EnsembleGPUKernel` methods (GPUTsit5, GPUVern7,
#   GPURosenbrock23, GPURodas5P, GPUKvaerno5), the whole integrator compiled into one
#   kernel. It takes out-of-place problems over static arrays: the model's generated
#   `f(u, p, t)`, `jac(u, p, t)` and `tgrad(u, p, t)` return tuples, wrapped here in
#   `SVector`/`SMatrix` (DiffEqGPU `test/gpu_kernel_de/stiff_ode/gpu_ode_regression.jl`
#   gives the stiff methods `jac` and `tgrad` the same way). It calls the lower-level API
#   (`DiffEqGPU.vectorized_asolve` / `vectorized_solve`, `docs/src/tutorials/
#   lower_level_api.md`, `src/ensemblegpukernel/lowerlevel_solve.jl`), whose saved times and
#   states stay on the device, and copies them on the device into torch tensors that
#   Python allocated and handed over through DLPack: no trajectory passes through host
#   memory.
# - `ensemble_array`: `EnsembleGPUArray` for the other OrdinaryDiffEq methods, with the
#   in-place `f!`, `jac!` and `tgrad!` (Rosenbrock methods need both, DiffEqGPU
#   `src/algorithms.jl`); DiffEqGPU returns host solutions (`src/solve.jl`, `batch_solve`).
#
# Torch CUDA tensors reach Julia as PythonCall `PyIterable`s (its canonical rule for
# `collections.abc.Iterable`, `src/Wrap/Wrap.jl`); `DLPack.from_dlpack` takes `Py`,
# `PyArray` or `PyIterable` (DLPack.jl v0.3.1 `ext/PythonCallExt.jl`) and wraps the memory
# as a `CuArray` with the dimensions reversed. The wrap assumes a dense layout (it reads
# no strides for row-major tensors, `src/DLPack.jl`), so Python passes contiguous tensors.
module GPU

using CUDA: CUDA
using DiffEqGPU: DiffEqGPU, EnsembleGPUArray, GPUTsit5, GPUVern7, GPURosenbrock23,
    GPURodas5P, GPUKvaerno5, GPUEM
using DLPack: DLPack
using StaticArrays: SVector, SMatrix
using SciMLBase: SciMLBase, ODEProblem, ODEFunction, SDEProblem, EnsembleProblem, remake
using ..HybridEqEngine: _export, _options

functional() = CUDA.functional()

"""Out-of-place vector function for the kernel (the right-hand side, or `∂f/∂t`): the
model's tuple as an `SVector` of the state's element type (the generated code prints
Float64 literals)."""
struct StaticVector{F, N}
    f::F
end
(r::StaticVector{F, N})(u, p, t) where {F, N} = SVector{N, eltype(u)}(r.f(u, p, t))

"""Out-of-place Jacobian for the kernel: the model's column-major tuple as an `SMatrix`."""
struct StaticJacobian{F, N}
    f::F
end
(r::StaticJacobian{F, N})(u, p, t) where {F, N} = SMatrix{N, N, eltype(u)}(r.f(u, p, t))

const KERNEL_ALGORITHMS = Dict(
    "Tsit5" => GPUTsit5, "Vern7" => GPUVern7, "Rosenbrock23" => GPURosenbrock23,
    "Rodas5P" => GPURodas5P, "Kvaerno5" => GPUKvaerno5,
)

"""A torch CUDA tensor of `cols` rows of `rows` values (C-contiguous `(cols, rows)`) as the
`rows × cols` CuArray over the same memory."""
_columns(x, rows::Integer) = reshape(vec(DLPack.from_dlpack(x)), Int(rows), :)

"""The same, copied to the host (the problems DiffEqGPU's kernels take are built there,
as DiffEqGPU's own `batch_solve` does); `nothing` stays `nothing`."""
function _host(x, rows::Integer, T::Type)
    x === nothing && return nothing
    A = _columns(x, rows)
    eltype(A) === T || error("expected $(T) data from Python, got $(eltype(A))")
    return Array(A)
end

"""The flat device buffer of a torch CUDA tensor that Julia writes into."""
function _target(x, T::Type)
    A = vec(DLPack.from_dlpack(x))
    eltype(A) === T || error("expected a $(T) output tensor from Python, got $(eltype(A))")
    return A
end

"""Column `i` of the host parameters as the kernel's static vector (empty without any)."""
_static_param(P, np::Int, T::Type, i::Int) =
    P === nothing ? SVector{0, T}() : SVector{np, T}(view(P, :, i))

"""Copy a kernel's saved times `tsol` and states `usol` (`length(saveat) × B`, on the device)
into the torch tensors `ts` and `ys` on the device, then wait for the copies. `usol` as
numbers is n × length(saveat) × B in column-major order: the C-contiguous
`(B, length(saveat), n)` of `ys`."""
function _deliver!(ys, ts, tsol, usol, T::Type)
    copyto!(_target(ys, T), reinterpret(T, vec(usol)))
    copyto!(_target(ts, T), vec(tsol))
    CUDA.synchronize()
    return nothing
end

"""
    ensemble_kernel!(ys, ts, model, u0s, ps, n, np, tspan, alg; T = Float32,
                     saveat, dt = nothing, adaptive = true, abstol = 1e-6, reltol = 1e-3)

Solve one trajectory per row of the torch CUDA tensor `u0s` (`(B, n)`; `ps`: `(B, np)` or
`nothing`) with the `EnsembleGPUKernel` method named `alg` (`"Tsit5"`, `"Vern7"`,
`"Rosenbrock23"`, `"Rodas5P"`, `"Kvaerno5"`) and write the states at `saveat` into the
torch tensor `ys` (`(B, length(saveat), n)`) and the times reached into `ts`
(`(B, length(saveat))`; a slot the trajectory never reached keeps `tspan[1]`). `dt` is the
(initial) step; without it, a thousandth of the span. Synchronizes the device before it
returns, so that torch reads finished results.
"""
function ensemble_kernel!(ys, ts, model::Module, u0s, ps, n::Integer, np::Integer, tspan,
        alg::AbstractString; T::Type = Float32, saveat, dt = nothing, adaptive::Bool = true,
        abstol = 1.0e-6, reltol = 1.0e-3)
    n = Int(n)
    np = Int(np)
    U = _host(u0s, n, T)
    P = _host(ps, np, T)
    B = size(U, 2)
    span = (T(tspan[1]), T(tspan[2]))
    f, J, tg = getfield(model, :f), getfield(model, :jac), getfield(model, :tgrad)
    fun = ODEFunction{false}(StaticVector{typeof(f), n}(f);
        jac = StaticJacobian{typeof(J), n}(J), tgrad = StaticVector{typeof(tg), n}(tg))
    param(i) = _static_param(P, np, T, i)
    prob = ODEProblem{false}(fun, SVector{n, T}(view(U, :, 1)), span, param(1))
    probs = [DiffEqGPU.make_prob_compatible(
                 remake(prob; u0 = SVector{n, T}(view(U, :, i)), p = param(i)))
             for i in 1:B]
    device_probs = CUDA.cu(probs)
    save = T.(vec(saveat))
    h = T(dt === nothing ? (span[2] - span[1]) / 1000 : dt)
    method = KERNEL_ALGORITHMS[alg]()
    tsol, usol = if adaptive
        DiffEqGPU.vectorized_asolve(device_probs, prob, method; dt = h, saveat = save,
            abstol = T(abstol), reltol = T(reltol))
    else
        DiffEqGPU.vectorized_solve(device_probs, prob, method; dt = h, saveat = save)
    end
    return _deliver!(ys, ts, tsol, usol, T)
end

"""
    ensemble_em!(ys, ts, model, u0s, ps, n, np, tspan; T = Float32, saveat, dt, seed)

Euler-Maruyama for a sympy SDE with diagonal noise, one trajectory per row of `u0s`, as
DiffEqGPU's `GPUEM` kernel (fixed step `dt`; `vectorized_solve` with an `SDEProblem`,
`src/ensemblegpukernel/lowerlevel_solve.jl`). The model's out-of-place drift `f` and
diffusion `g` (tuples, wrapped in `SVector`s) run in the kernel. Every problem carries
`seed`: the kernel calls `Random.seed!(prob.seed)` in each thread
(`src/ensemblegpukernel/perform_step/gpu_em_perform_step.jl`), and CUDA.jl's device RNG
gives each thread its own stream for one seed (DiffEqGPU's `test/gpu_kernel_de/
gpu_sde_regression.jl` averages 1000 trajectories of one seeded problem). Results are
written into `ys`/`ts` as in `ensemble_kernel!`.
"""
function ensemble_em!(ys, ts, model::Module, u0s, ps, n::Integer, np::Integer, tspan;
        T::Type = Float32, saveat, dt, seed::Integer)
    n = Int(n)
    np = Int(np)
    U = _host(u0s, n, T)
    P = _host(ps, np, T)
    span = (T(tspan[1]), T(tspan[2]))
    f, g = getfield(model, :f), getfield(model, :g)
    param(i) = _static_param(P, np, T, i)
    prob = SDEProblem{false}(StaticVector{typeof(f), n}(f), StaticVector{typeof(g), n}(g),
        SVector{n, T}(view(U, :, 1)), span, param(1); seed = UInt64(seed))
    probs = [remake(prob; u0 = SVector{n, T}(view(U, :, i)), p = param(i)) for i in 1:size(U, 2)]
    tsol, usol = DiffEqGPU.vectorized_solve(CUDA.cu(probs), prob, GPUEM(); dt = T(dt),
        saveat = T.(vec(saveat)))
    return _deliver!(ys, ts, tsol, usol, T)
end

"""
    ensemble_array(model, u0s, ps, n, np, tspan, alg; T = Float32, kwargs...)

Solve one trajectory per row of `u0s` (a torch CUDA `(B, n)` tensor; `ps` `(B, np)` or
`nothing`) with the OrdinaryDiffEq algorithm `alg` as one `EnsembleGPUArray` solve (all
trajectories on the GPU: `cpu_offload = 0`). `kwargs` are `solve` keywords. Returns the
exported solutions (host arrays).
"""
function ensemble_array(model::Module, u0s, ps, n::Integer, np::Integer, tspan, alg;
        T::Type = Float32, kwargs...)
    n = Int(n)
    U = _host(u0s, n, T)
    P = _host(ps, Int(np), T)
    B = size(U, 2)
    fun = ODEFunction{true}(getfield(model, Symbol("f!"));
        jac = getfield(model, Symbol("jac!")), tgrad = getfield(model, Symbol("tgrad!")))
    # no parameters: an empty vector, so that DiffEqGPU's `reduce(hcat, p)` gives 0 × B
    param(i) = P === nothing ? T[] : P[:, i]
    prob = ODEProblem(fun, U[:, 1], (T(tspan[1]), T(tspan[2])), param(1))
    prob_func(prob, ctx) = remake(prob; u0 = U[:, ctx.sim_id], p = param(ctx.sim_id))
    ens = EnsembleProblem(prob; prob_func = prob_func, safetycopy = false)
    opts = Dict{Symbol, Any}(pairs(_options(kwargs)))
    haskey(opts, :saveat) && (opts[:saveat] = T.(opts[:saveat]))
    haskey(opts, :dt) && (opts[:dt] = T(opts[:dt]))
    sim = SciMLBase.solve(ens, alg, EnsembleGPUArray(CUDA.CUDABackend(), 0.0);
        trajectories = B, opts...)
    return [_export(sim.u[i], n) for i in 1:B]
end

end # module GPU
