# GPU ensembles for sympy-defined models, loaded on demand by `HybridEqEngine.enable_gpu()`
# (it needs CUDA.jl in the environment: `hybrideq julia install --cuda`).
#
# DiffEqGPU's `EnsembleGPUKernel` compiles the whole integrator into one GPU kernel; it
# needs an out-of-place right-hand side returning an `SVector`, `ODEProblem{false}`, static
# `u0`/`p`, and one of its GPU methods (DiffEqGPU `src/algorithms.jl`, `src/DiffEqGPU.jl`
# exports, v3.17). The model's generated `f(u, p, t)` returns a tuple (no allocation), so it
# runs inside the kernel. Inputs arrive from torch CUDA tensors through DLPack
# (`DLPack.from_dlpack`, PythonCall extension of DLPack.jl v0.3: a row-major `(B, n)`
# tensor becomes an `n × B` CuArray, dimensions reversed, no copy).
module GPU

using CUDA: CUDA
using DiffEqGPU: EnsembleGPUKernel, GPUTsit5, GPUVern7, GPURosenbrock23, GPURodas5P,
    GPUKvaerno5, GPUEM
using DLPack: DLPack
using PythonCall: Py
using StaticArrays: SVector
using SciMLBase: SciMLBase, ODEProblem, EnsembleProblem, remake
using ..HybridEqEngine: _export, _options

functional() = CUDA.functional()

"""Out-of-place right-hand side for the kernel: the model's tuple as an `SVector` of the
state's element type (the generated code prints Float64 literals)."""
struct StaticRHS{F, N}
    f::F
end
(r::StaticRHS{F, N})(u, p, t) where {F, N} = SVector{N, eltype(u)}(r.f(u, p, t))

const ALGORITHMS = Dict(
    "Tsit5" => GPUTsit5, "Vern7" => GPUVern7, "Rosenbrock23" => GPURosenbrock23,
    "Rodas5P" => GPURodas5P, "Kvaerno5" => GPUKvaerno5, "EM" => GPUEM,
)

_host(x::Py, T) = Array{T}(DLPack.from_dlpack(x))
_host(x::AbstractArray, T) = Array{T}(x)
_host(::Nothing, T) = nothing

"""
    ensemble_gpu(model, u0s, ps, tspan, alg; T = Float32, kwargs...)

Solve one trajectory per column of `u0s` (`n × B`, or a torch CUDA `(B, n)` tensor through
DLPack; `ps` likewise or `nothing`) with `EnsembleGPUKernel(CUDA.CUDABackend())` and the
GPU method named `alg` (`"Tsit5"`, `"Vern7"`, `"Rosenbrock23"`, `"Rodas5P"`,
`"Kvaerno5"`, `"EM"`). Returns the exported solutions (host arrays).
"""
function ensemble_gpu(model::Module, u0s, ps, tspan, alg::AbstractString; T::Type = Float32,
        kwargs...)
    U = _host(u0s, T)
    P = _host(ps, T)
    n, B = size(U)
    f = getfield(model, :f)
    rhs = StaticRHS{typeof(f), n}(f)
    np = P === nothing ? 0 : size(P, 1)
    p0 = P === nothing ? SVector{0, T}() : SVector{np, T}(view(P, :, 1))
    prob = ODEProblem{false}(rhs, SVector{n, T}(view(U, :, 1)), (T(tspan[1]), T(tspan[2])), p0)
    prob_func(prob, ctx) = remake(prob; u0 = SVector{n, T}(view(U, :, ctx.sim_id)),
        p = P === nothing ? p0 : SVector{np, T}(view(P, :, ctx.sim_id)))
    ens = EnsembleProblem(prob; prob_func = prob_func, safetycopy = false)
    opts = Dict{Symbol, Any}(pairs(_options(kwargs)))
    haskey(opts, :saveat) && (opts[:saveat] = T.(opts[:saveat]))
    haskey(opts, :dt) && (opts[:dt] = T(opts[:dt]))
    sim = SciMLBase.solve(ens, ALGORITHMS[alg](), EnsembleGPUKernel(CUDA.CUDABackend());
        trajectories = B, opts...)
    return [_export(sim.u[i], n) for i in 1:B]
end

end # module GPU
