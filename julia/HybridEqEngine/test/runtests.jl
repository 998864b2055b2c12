# Julia-side tests of HybridEqEngine (run: julia --project=julia/HybridEqEngine -e
# 'using Pkg; Pkg.test()'; the GitHub workflow .github/workflows/julia.yml does).
# Python callbacks are tested from Python (tests/test_julia_engine.py, `julia` marker).
using Test
using HybridEqEngine
const SciMLBase = HybridEqEngine.SciMLBase
const E = HybridEqEngine

# The form `SymbolicODE.julia_source()` generates (tests/test_symbolic.py checks that the
# generated source parses; here a hand-written module of the same shape is run).
const DECAY = """
module HybridEqModel
const STATES = (:x, :y,)
const PARAMS = (:k,)
const JAC_SPARSITY = Bool[true false; false true]
function f!(du, u, p, t)
    du[1] = -p[1] * u[1]
    du[2] = -2 * p[1] * u[2]
    return nothing
end
function jac!(J, u, p, t)
    fill!(J, zero(eltype(J)))
    J[1, 1] = -p[1]
    J[2, 2] = -2 * p[1]
    return nothing
end
end # module HybridEqModel
"""

const NOISY = """
module HybridEqModel
function f!(du, u, p, t)
    du[1] = -p[1] * u[1]
    return nothing
end
function g!(du, u, p, t)
    du[1] = 0.0 * u[1]
    return nothing
end
end # module HybridEqModel
"""

@testset "HybridEqEngine" begin
    @testset "algorithm expressions from the solver table" begin
        @test algorithm("Tsit5()") isa E.Tsit5
        @test algorithm("Rodas5P(autodiff = AutoFiniteDiff())") isa E.Rodas5P
        @test algorithm("KenCarp4(autodiff = AutoForwardDiff(), nlsolve = NLNewton(κ = 0.01, max_iter = 10))") isa E.KenCarp4
        @test algorithm("QNDF(max_order = Val{5}(), kappa = (0.0, 0.0, 0.0, 0.0, 0.0), autodiff = AutoForwardDiff(), nlsolve = NLNewton(max_iter = 4))") isa E.QNDF
        @test algorithm("RKMil(interpretation = SciMLBase.AlgorithmInterpretation.Stratonovich)") isa E.RKMil
        @test algorithm("InterpolatingAdjoint(autojacvec = EnzymeVJP(), checkpointing = false)") isa E.InterpolatingAdjoint
    end

    model = load_model(DECAY)
    k = 0.7
    u0 = [1.0, 3.0]
    ts = collect(0.0:0.25:2.0)
    exact = hcat([[exp(-k * t), 3 * exp(-2k * t)] for t in ts]...)

    @testset "generated model, $(name)" for (name, alg) in (
            ("Tsit5", "Tsit5()"), ("Vern7", "Vern7()"),
            ("Rodas5P", "Rodas5P(autodiff = AutoForwardDiff())"),
            ("KenCarp4", "KenCarp4(autodiff = AutoForwardDiff())"),
            ("QNDF", "QNDF(autodiff = AutoForwardDiff())"),
        )
        prob = model_problem(model, u0, (0.0, 2.0), [k])
        res = solve_exported(prob, algorithm(alg); reltol = 1.0e-10, abstol = 1.0e-12, saveat = ts)
        @test res.retcode == "Success"
        @test size(res.u) == (2, length(ts))
        @test res.t ≈ ts
        @test maximum(abs.(res.u .- exact)) < 1.0e-6
        @test res.stats.nf > 0 && res.stats.naccept > 0
    end

    @testset "a failed solve keeps what it computed" begin
        prob = model_problem(model, u0, (0.0, 2.0), [k])
        res = solve_exported(prob, algorithm("Tsit5()"); maxiters = 3, reltol = 1.0e-12, abstol = 1.0e-14)
        @test res.retcode == "MaxIters"
        @test 1 <= size(res.u, 2) <= 4 && res.t[end] < 2.0
        @test res.u[:, 1] == u0
    end

    @testset "generated source: out-of-place forms and the time derivative" begin
        # forced_model.jl is `SymbolicODE({x: -k x + sin t, y: k x - y^2}).julia_source()`
        # (tests/test_julia_engine.py checks that it matches the generator)
        m = load_model(read(joinpath(@__DIR__, "forced_model.jl"), String))
        u, p, t = [0.3, -1.2], [0.7], 0.4
        du = zeros(2)
        m.f!(du, u, p, t)
        @test collect(m.f(u, p, t)) ≈ du
        J = zeros(2, 2)
        m.jac!(J, u, p, t)
        @test J ≈ [-0.7 0.0; 0.7 2.4]
        @test reshape(collect(Float64, m.jac(u, p, t)), 2, 2) ≈ J  # column-major tuple
        dT = zeros(2)
        m.tgrad!(dT, u, p, t)
        @test dT ≈ [cos(t), 0.0]
        @test collect(Float64, m.tgrad(u, p, t)) ≈ dT
        # a Rosenbrock method (it calls tgrad!) agrees with Vern7
        prob = model_problem(m, u, (0.0, 3.0), p)
        @test prob.f.tgrad !== nothing
        a = solve_exported(prob, algorithm("Rodas5P(autodiff = AutoForwardDiff())");
            reltol = 1.0e-10, abstol = 1.0e-12, saveat = [3.0])
        b = solve_exported(prob, algorithm("Vern7()"); reltol = 1.0e-12, abstol = 1.0e-14,
            saveat = [3.0])
        @test a.retcode == "Success" && b.retcode == "Success"
        @test maximum(abs.(a.u .- b.u)) < 1.0e-7
    end

    @testset "return code names" begin
        @test retcode_name(SciMLBase.ReturnCode.Success) == "Success"
        @test retcode_name(SciMLBase.ReturnCode.DtLessThanMin) == "DtLessThanMin"
    end

    @testset "ensemble: one trajectory per column" begin
        prob = model_problem(model, u0, (0.0, 2.0), [k])
        u0s = [1.0 2.0 0.5; 3.0 1.0 0.0]
        ps = [0.7 0.1 2.0]
        out = ensemble_exported(prob, algorithm("Tsit5()"), u0s, ps; reltol = 1.0e-10,
            abstol = 1.0e-12, saveat = [2.0])
        @test length(out) == 3
        for i in 1:3
            kk = ps[1, i]
            @test out[i].u[:, end] ≈ [u0s[1, i] * exp(-2kk), u0s[2, i] * exp(-4kk)] rtol = 1.0e-7
        end
    end

    @testset "ensemble with dense output" begin
        prob = model_problem(model, u0, (0.0, 2.0), [k])
        u0s = [1.0 2.0; 3.0 1.0]
        res = ensemble_dense(prob, algorithm("Vern7()"), u0s, [0.7 0.2]; reltol = 1.0e-10,
            abstol = 1.0e-12)
        @test length(res.exported) == 2 && length(res.sols) == 2
        vals = interpolate_exported(res.sols[2], [0.5, 1.5])
        @test size(vals) == (2, 2)
        @test vals[:, 2] ≈ [2.0 * exp(-0.2 * 1.5), 1.0 * exp(-0.4 * 1.5)] rtol = 1.0e-8
    end

    @testset "adjoint gradients, $(name)" for (name, sense) in (
            ("Interpolating", "InterpolatingAdjoint(autojacvec = EnzymeVJP())"),
            ("Quadrature", "QuadratureAdjoint(autojacvec = EnzymeVJP(), abstol = 1.0e-10, reltol = 1.0e-10)"),
            ("Gauss", "GaussAdjoint(autojacvec = EnzymeVJP())"),
        )
        # L = Σ_i x(t_i) + y(t_i): dL/dx0 = Σ e^{-k t}, dL/dy0 = Σ e^{-2k t},
        # dL/dk = -Σ t (x0 e^{-k t} + 4 y0 e^{-2k t})
        prob = model_problem(model, u0, (0.0, 2.0), [k])
        dLdu = ones(2, length(ts))
        res = adjoint_exported(prob, algorithm("Tsit5()"), algorithm(sense), ts, dLdu;
            reltol = 1.0e-10, abstol = 1.0e-12)
        @test res.retcode == "Success"
        @test res.du0 ≈ [sum(exp.(-k .* ts)), sum(exp.(-2k .* ts))] rtol = 1.0e-6
        @test res.dp[1] ≈ -sum(ts .* (u0[1] .* exp.(-k .* ts) .+ 4 * u0[2] .* exp.(-2k .* ts))) rtol = 1.0e-6
    end

    @testset "SDE with zero diffusion is Euler's method" begin
        m = load_model(NOISY)
        prob = model_sde_problem(m, [1.0], (0.0, 1.0), [0.5])
        res = solve_exported(prob, algorithm("EM()"); dt = 0.125, adaptive = false, seed = 3)
        @test res.retcode == "Success"
        @test res.u[1, end] ≈ (1 - 0.5 * 0.125)^8 rtol = 1.0e-12
    end
end
