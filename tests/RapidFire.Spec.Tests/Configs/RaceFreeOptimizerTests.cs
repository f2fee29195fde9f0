using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Metrics;
using RapidFire.Spec.Native;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Configs;

/// <summary>
/// The optimizers a config names are TorchSharp's with a step that keeps its Scalars alive (issue 15 section 1): they
/// train bit for bit as TorchSharp's do, their state dicts are TorchSharp's, and they survive a finalizer that runs
/// all the time, where TorchSharp's own fail.
/// </summary>
public class RaceFreeOptimizerTests
{
    private const int Steps = 60;

    private static NamedComponent Spec(string name, params (string Key, object? Value)[] args) =>
        new(name, args.ToDictionary(a => a.Key, a => ConfigValue.Normalize(a.Value, a.Key)));

    /// <summary>One optimizer of the catalog with non-default arguments: ours from the config, TorchSharp's from torch.optim.</summary>
    private sealed record Case(NamedComponent Ours, Func<IEnumerable<Parameter>, optim.Optimizer> Theirs);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["SGD"] = new(Spec("SGD", ("lr", 0.05)), p => optim.SGD(p, 0.05)),
        ["SGD momentum"] = new(Spec("SGD", ("lr", 0.05), ("momentum", 0.9), ("dampening", 0.1), ("weight_decay", 0.01)),
            p => optim.SGD(p, 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 0.01)),
        ["SGD nesterov maximize"] = new(Spec("SGD", ("lr", 0.01), ("momentum", 0.8), ("nesterov", true), ("weight_decay", 0.001), ("maximize", true)),
            p => optim.SGD(p, 0.01, momentum: 0.8, weight_decay: 0.001, nesterov: true, maximize: true)),
        ["Adam amsgrad"] = new(Spec("Adam", ("lr", 0.01), ("betas", new[] { 0.8, 0.99 }), ("eps", 1e-6), ("weight_decay", 0.01), ("amsgrad", true)),
            p => optim.Adam(p, 0.01, 0.8, 0.99, 1e-6, weight_decay: 0.01, amsgrad: true)),
        ["Adam maximize"] = new(Spec("Adam", ("lr", 0.005), ("maximize", true)), p => optim.Adam(p, 0.005, maximize: true)),
        ["AdamW amsgrad"] = new(Spec("AdamW", ("lr", 0.01), ("betas", new[] { 0.85, 0.995 }), ("weight_decay", 0.05), ("amsgrad", true)),
            p => optim.AdamW(p, 0.01, 0.85, 0.995, weight_decay: 0.05, amsgrad: true)),
        ["AdamW maximize"] = new(Spec("AdamW", ("lr", 0.005), ("weight_decay", 0.01), ("maximize", true)),
            p => optim.AdamW(p, 0.005, weight_decay: 0.01, maximize: true)),
        ["RMSProp centered momentum"] = new(Spec("RMSprop", ("lr", 0.005), ("alpha", 0.9), ("weight_decay", 0.01), ("momentum", 0.9), ("centered", true)),
            p => optim.RMSProp(p, 0.005, alpha: 0.9, weight_decay: 0.01, momentum: 0.9, centered: true)),
        ["RMSProp maximize"] = new(Spec("RMSprop", ("lr", 0.001), ("eps", 1e-6), ("maximize", true)),
            p => optim.RMSProp(p, 0.001, eps: 1e-6, maximize: true)),
        ["Adagrad"] = new(Spec("Adagrad", ("lr", 0.05), ("lr_decay", 0.01), ("weight_decay", 0.01), ("initial_accumulator_value", 0.1), ("eps", 1e-8)),
            p => optim.Adagrad(p, 0.05, lr_decay: 0.01, weight_decay: 0.01, initial_accumulator_value: 0.1, eps: 1e-8)),
        ["Adadelta"] = new(Spec("Adadelta"), p => optim.Adadelta(p)),
        ["Adadelta maximize"] = new(Spec("Adadelta", ("lr", 0.5), ("rho", 0.8), ("weight_decay", 0.01), ("maximize", true)),
            p => optim.Adadelta(p, 0.5, rho: 0.8, weight_decay: 0.01, maximize: true)),
        ["Adamax"] = new(Spec("Adamax", ("lr", 0.01), ("betas", new[] { 0.8, 0.99 }), ("weight_decay", 0.01)),
            p => optim.Adamax(p, 0.01, 0.8, 0.99, weight_decay: 0.01)),
        ["NAdam"] = new(Spec("NAdam", ("lr", 0.01), ("weight_decay", 0.01), ("momentum_decay", 0.01)),
            p => optim.NAdam(p, 0.01, weight_decay: 0.01, momentum_decay: 0.01)),
        // RAdam's first steps take its unrectified branch (rho_t <= 5), the later ones the rectified one.
        ["RAdam"] = new(Spec("RAdam", ("lr", 0.01), ("weight_decay", 0.01)), p => optim.RAdam(p, 0.01, weight_decay: 0.01)),
        // t0 = 10: the running average switches from copying to averaging during the run.
        ["ASGD averaging"] = new(Spec("ASGD", ("lr", 0.05), ("lambd", 1e-3), ("alpha", 0.6), ("t0", 10), ("weight_decay", 0.01)),
            p => optim.ASGD(p, 0.05, lambd: 1e-3, alpha: 0.6, t0: 10, weight_decay: 0.01)),
        ["ASGD maximize"] = new(Spec("ASGD", ("lr", 0.01), ("maximize", true)), p => optim.ASGD(p, 0.01, maximize: true)),
        ["Rprop"] = new(Spec("Rprop"), p => optim.Rprop(p)),
        ["Rprop maximize"] = new(Spec("Rprop", ("lr", 0.005), ("etaminus", 0.4), ("etaplus", 1.3), ("min_step", 1e-5), ("max_step", 0.5), ("maximize", true)),
            p => optim.Rprop(p, 0.005, etaminus: 0.4, etaplus: 1.3, min_step: 1e-5, max_step: 0.5, maximize: true)),
        // Native in TorchSharp: passed through, and so trivially the same; checked all the same.
        ["LBFGS"] = new(Spec("LBFGS", ("lr", 0.5), ("max_iter", 4), ("history_size", 10)),
            p => optim.LBFGS(p, 0.5, max_iter: 4, history_size: 10)),
    };

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Cases.Keys) data.Add(name);
        return data;
    }

    [Fact]
    public void Every_optimizer_of_the_catalog_has_a_bit_identity_case()
    {
        var covered = Cases.Values.Select(c => c.Ours.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        Assert.All(Optimizers.Names, name => Assert.True(covered.Contains(name), $"no bit-identity case for {name}"));
        Assert.All(Cases, c => Assert.Empty(Optimizers.Validate(c.Value.Ours, c.Key)));
    }

    [Fact]
    public void The_catalog_makes_the_race_free_optimizers_under_torchsharp_names_and_passes_native_lbfgs_through()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(3, 2);
        foreach (var name in Optimizers.Names)
        {
            using var optimizer = Optimizers.Create(name == "SGD" ? Spec(name, ("lr", 0.1)) : Spec(name), model.parameters());
            var type = optimizer.GetType();
            if (name == "LBFGS")
            {
                Assert.Equal(typeof(LBFGS), type);
                continue;
            }
            Assert.Equal(typeof(RaceFreeOptimizers), type.DeclaringType);
            Assert.True(type.IsSealed);
            // save_state_dict writes GetType().Name and load_state_dict checks it: the names must be TorchSharp's.
            Assert.Equal(name, type.Name);
            Assert.Equal(typeof(OptimizerHelper).Assembly, type.BaseType!.Assembly);
            Assert.Equal(name, type.BaseType.Name);
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Ours_trains_bit_for_bit_as_torchsharps_and_saves_the_same_state(string caseName)
    {
        TorchNative.EnsureLoaded();
        var c = Cases[caseName];
        using var scope = NewDisposeScope();
        var (inputs, targets) = Batches(4);
        var (theirModel, ourModel) = Models();
        using var _ = theirModel;
        using var __ = ourModel;
        var initial = Bytes(w => ourModel.save(w));
        using var theirs = c.Theirs(theirModel.parameters());
        using var ours = Optimizers.Create(c.Ours, ourModel.parameters());
        Assert.IsAssignableFrom(theirs.GetType(), ours);

        for (var step = 0; step < Steps; step++)
        {
            var x = inputs[step % inputs.Length];
            var y = targets[step % targets.Length];
            using (var stepScope = NewDisposeScope())
            {
                theirs.step(Closure(theirModel, theirs, x, y));
                ours.step(Closure(ourModel, ours, x, y));
            }
            if (step == Steps / 2 && theirs is OptimizerHelper theirHelper)
            {
                // A checkpoint TorchSharp's optimizer wrote loads into ours (same type name, same layout).
                var saved = Bytes(theirHelper.save_state_dict);
                using var reader = new BinaryReader(new MemoryStream(saved));
                ((OptimizerHelper)ours).load_state_dict(reader);
                Assert.Equal(saved, Bytes(((OptimizerHelper)ours).save_state_dict));
            }
        }

        using (no_grad())
        {
            foreach (var p in ourModel.parameters())
                Assert.True(p.isfinite().all().item<bool>(), $"{caseName}: a parameter is not finite; pick gentler arguments");
        }
        var ourWeights = Bytes(w => ourModel.save(w));
        Assert.NotEqual(initial, ourWeights); // the steps did something
        Assert.Equal(Bytes(w => theirModel.save(w)), ourWeights);
        if (theirs is OptimizerHelper their)
            Assert.Equal(Bytes(their.save_state_dict), Bytes(((OptimizerHelper)ours).save_state_dict));
    }

    [Fact]
    public void The_race_free_steps_and_the_metrics_make_no_implicit_scalar()
    {
        var sites = ImplicitScalars.In(typeof(RaceFreeOptimizers), typeof(NamedMetric), typeof(MetricValues), typeof(Vision.Images));
        Assert.True(sites.Count == 0, "implicit Scalars (make them explicit and keep them alive):\n" + string.Join("\n", sites));
    }

    [Fact]
    public void The_scan_finds_implicit_scalars_in_torchsharps_own_steps()
    {
        // The scan above can fail: it flags TorchSharp's AdamW.step, which makes implicit Scalars.
        var sites = ImplicitScalars.In(typeof(AdamW));
        Assert.Contains(sites, s => s.EndsWith("calls Scalar.op_Implicit(Double)", StringComparison.Ordinal)); // mul_(beta1)
        Assert.Contains(sites, s => s.EndsWith("calls Tensor.add_(Scalar)", StringComparison.Ordinal)); // add_(eps): its implicit alpha = 1
    }

    private static Func<Tensor> Closure(nn.Module<Tensor, Tensor> model, optim.Optimizer optimizer, Tensor x, Tensor y) => () =>
    {
        optimizer.zero_grad();
        var loss = nn.functional.mse_loss(model.forward(x), y);
        loss.backward();
        return loss;
    };

    /// <summary>
    /// Two models with the same weights, from a generator of their own: tests running in parallel draw from the
    /// global one, so seeding it before creating each model would not make them equal.
    /// </summary>
    private static (nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>) Models()
    {
        static nn.Module<Tensor, Tensor> Model() => nn.Sequential(("l1", nn.Linear(5, 8)), ("act", nn.Tanh()), ("l2", nn.Linear(8, 3)));
        var (first, second) = (Model(), Model());
        var generator = new Generator(11);
        using var half = 0.5.ToScalar();
        using (no_grad())
        {
            foreach (var (a, b) in first.parameters().Zip(second.parameters()))
            {
                using var init = torch.rand(a.shape, generator: generator).sub_(half);
                a.copy_(init);
                b.copy_(init);
            }
        }
        return (first, second);
    }

    private static (Tensor[] Inputs, Tensor[] Targets) Batches(int count)
    {
        var generator = new Generator(5);
        return (Enumerable.Range(0, count).Select(_ => torch.randn(new long[] { 16, 5 }, generator: generator)).ToArray(),
            Enumerable.Range(0, count).Select(_ => torch.randn(new long[] { 16, 3 }, generator: generator)).ToArray());
    }

    private static byte[] Bytes(Action<BinaryWriter> save)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) save(writer);
        return stream.ToArray();
    }
}

/// <summary>
/// The race provoked: a thread that collects garbage and runs finalizers without pause, while AdamW takes many steps
/// over many small parameters, so that each step makes thousands of Scalars. Alone in its collection: the pressure
/// must not reach other tests, whose own TorchSharp calls make implicit Scalars too.
/// </summary>
/// <remarks>
/// Measured on the 2-core machine: with this harness TorchSharp's own AdamW fails (<c>Expected false to be true ...
/// toFloat</c> or <c>Unknown scalar type</c>) within 1 to 6 steps once the process has run the harness before, and
/// mostly within 20 to 100 steps (2 to 5 s) in a fresh process, where about one run in twenty outlasted 8 s. Full
/// collections (<c>GC.Collect()</c>) instead of gen-0 ones are slow enough that the steps mostly wait for them: one
/// failure in ten runs of 10 s. Ours took its 100 steps clean every time (2 to 8 s). TorchSharp's failure is a race
/// whose odds depend on the machine and its load, so asserting it is a manual check
/// (<see cref="Torchsharps_own_adamw_fails_under_the_same_pressure"/>); the deterministic guard is
/// <see cref="RaceFreeOptimizerTests.The_race_free_steps_and_the_metrics_make_no_implicit_scalar"/>.
/// </remarks>
[Collection(Name)]
public class RaceFreeOptimizerGcTests(ITestOutputHelper output)
{
    public const string Name = "finalizer pressure";

    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class Definition;

    private const int PressureSteps = 100;
    private const int ParameterCount = 256;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(6);

    private static optim.Optimizer OurAdamW(IEnumerable<Parameter> parameters) => Optimizers.Create(
        new NamedComponent("AdamW", new Dictionary<string, object?> { ["lr"] = 1e-3, ["weight_decay"] = 0.01 }), parameters);

    [Fact]
    public void Our_adamw_steps_clean_while_finalizers_run_all_the_time()
    {
        var (steps, failure, elapsed) = StepUnderGcPressure(OurAdamW, PressureSteps, Limit);
        output.WriteLine($"{steps} steps in {elapsed.TotalSeconds:F2} s of pressure");

        Assert.True(failure is null, $"step {steps + 1} failed: {failure}");
        // Up to 100 steps (6 s at most): usually enough to make TorchSharp's AdamW fail (see the remarks). A loaded
        // machine takes fewer (8 in 7.7 s once in CI, beside the other test assemblies); the steps that ran must be
        // clean, and no step count is asserted: it measures the machine, not the optimizer.
        Assert.True(steps >= 1, $"no step ran in {elapsed.TotalSeconds:F1} s");
    }

    /// <summary>A manual check (RAPIDFIRE_RACE_DEMO=1): the same pressure makes TorchSharp's own AdamW fail.</summary>
    [ManualFact("RAPIDFIRE_RACE_DEMO")]
    public void Torchsharps_own_adamw_fails_under_the_same_pressure()
    {
        var (steps, failure, elapsed) = StepUnderGcPressure(p => optim.AdamW(p, 1e-3, weight_decay: 0.01), 1000, TimeSpan.FromSeconds(30));

        var e = Assert.IsType<System.Runtime.InteropServices.ExternalException>(failure);
        Assert.Matches("Unknown scalar type|Expected false to be true", e.Message);
        output.WriteLine($"TorchSharp's AdamW failed at step {steps + 1} after {elapsed.TotalSeconds:F2} s of pressure: {e.Message.Split('\n')[0]}");
    }

    /// <summary>
    /// Warms the optimizer up (so that TorchSharp's methods it calls are compiled at their optimized tier, where a
    /// Scalar argument is dead once its handle is read), then steps it while a thread loops gen-0 collections and
    /// finalizers, up to <paramref name="steps"/> steps or <paramref name="limit"/>.
    /// </summary>
    private static (int Steps, Exception? Failure, TimeSpan Elapsed) StepUnderGcPressure(
        Func<IEnumerable<Parameter>, optim.Optimizer> create, int steps, TimeSpan limit)
    {
        TorchNative.EnsureLoaded();
        torch.manual_seed(3);
        var parameters = Enumerable.Range(0, ParameterCount).Select(_ => new Parameter(torch.randn(4))).ToList();
        foreach (var p in parameters) p.grad = torch.randn(4);
        try
        {
            using var optimizer = create(parameters);
            var warm = Stopwatch.StartNew();
            for (var i = 0; i < 20 || warm.Elapsed < TimeSpan.FromSeconds(0.5); i++) optimizer.step();
            Thread.Sleep(300); // the optimized code compiles in the background
            for (var i = 0; i < 5; i++) optimizer.step();
            GC.Collect();
            GC.WaitForPendingFinalizers();

            var stop = 0;
            var collector = new Thread(() =>
            {
                while (Volatile.Read(ref stop) == 0)
                {
                    GC.Collect(0);
                    GC.WaitForPendingFinalizers();
                }
            }) { IsBackground = true, Name = "gc pressure" };
            collector.Start();
            var watch = Stopwatch.StartNew();
            var done = 0;
            try
            {
                for (; done < steps && watch.Elapsed < limit; done++) optimizer.step();
                return (done, null, watch.Elapsed);
            }
            catch (Exception e)
            {
                return (done, e, watch.Elapsed);
            }
            finally
            {
                Volatile.Write(ref stop, 1);
                collector.Join();
            }
        }
        finally
        {
            foreach (var p in parameters) p.Dispose();
        }
    }
}

/// <summary>A test that runs only when the environment variable it names is 1; skipped, with the reason, otherwise.</summary>
internal sealed class ManualFactAttribute : FactAttribute
{
    public ManualFactAttribute(string variable)
    {
        if (Environment.GetEnvironmentVariable(variable) != "1")
            Skip = $"a manual check: set {variable}=1 to run it (it provokes a race, so it is not part of the suite)";
    }
}

/// <summary>
/// Where methods make a TorchSharp <see cref="Scalar"/> implicitly: a call to one of Scalar's implicit conversions, or
/// to a TorchSharp method that makes one (such as <c>add_(Tensor)</c>, whose <c>alpha = 1</c> is implicit), found by
/// reading the IL. Explicit <c>ToScalar()</c> in the scanned code is not flagged: keeping it alive is the caller's part.
/// </summary>
internal static class ImplicitScalars
{
    private static readonly Dictionary<short, OpCode> ByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private static readonly Dictionary<MethodBase, bool> Made = [];

    /// <summary>"Type.Method calls callee" for every site in the types' methods (nested types and lambdas included).</summary>
    public static List<string> In(params Type[] types)
    {
        var sites = new List<string>();
        foreach (var type in types.SelectMany(Nested))
        {
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                foreach (var callee in Callees(method))
                {
                    if (IsImplicitScalar(callee) || (callee.Module.Assembly == typeof(Scalar).Assembly && MakesImplicitScalar(callee, 3)))
                        sites.Add($"{type.FullName}.{method.Name} calls {Describe(callee)}");
                }
            }
        }
        return sites;
    }

    private static IEnumerable<Type> Nested(Type type) => new[] { type }.Concat(type.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic).SelectMany(Nested));

    private static bool IsImplicitScalar(MethodBase m) => m.DeclaringType == typeof(Scalar) && m.Name == "op_Implicit";

    private static bool MakesImplicitScalar(MethodBase method, int depth)
    {
        lock (Made)
        {
            if (Made.TryGetValue(method, out var known)) return known;
        }
        var result = false;
        if (depth > 0)
        {
            foreach (var callee in Callees(method))
            {
                if (IsImplicitScalar(callee) || (callee.DeclaringType?.Name == "ScalarExtensionMethods" && callee.Name == "ToScalar")
                    || (callee.Module.Assembly == typeof(Scalar).Assembly && MakesImplicitScalar(callee, depth - 1)))
                {
                    result = true;
                    break;
                }
            }
        }
        lock (Made) Made[method] = result;
        return result;
    }

    private static IEnumerable<MethodBase> Callees(MethodBase method)
    {
        byte[]? il;
        try
        {
            il = method.GetMethodBody()?.GetILAsByteArray();
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or BadImageFormatException)
        {
            yield break;
        }
        if (il is null) yield break;
        var typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            var code = il[i] == 0xFE ? unchecked((short)(0xFE00 | il[i + 1])) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = ByValue[code];
            if (op.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try
                {
                    callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArguments, methodArguments);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException)
                {
                }
                if (callee is not null) yield return callee;
            }
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
    }

    private static string Describe(MethodBase m) =>
        $"{m.DeclaringType?.Name}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name))})";
}
