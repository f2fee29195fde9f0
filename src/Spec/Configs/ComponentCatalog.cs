using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text;

namespace RapidFire.Spec.Configs;

/// <summary>
/// The public static factory methods of a TorchSharp class (<c>torch.optim</c>, <c>torch.optim.lr_scheduler</c>),
/// found by reflection and bound to a <see cref="NamedComponent"/>'s arguments by parameter name.
/// </summary>
/// <remarks>
/// Only reflection metadata is read until <see cref="Create"/> invokes a factory, so validation never loads
/// libtorch. Names match case-insensitively. Argument names match parameter names case-insensitively with
/// underscores ignored, so PyTorch's <c>lr</c>, <c>weight_decay</c> or <c>T_max</c> bind as TorchSharp spells
/// them; <c>lr</c> also binds TorchSharp's <c>learningRate</c> (SGD), and PyTorch's <c>betas: [b1, b2]</c>
/// binds <c>beta1</c> and <c>beta2</c>.
/// </remarks>
internal sealed class ComponentCatalog
{
    /// <summary>PyTorch argument names for TorchSharp parameters spelled otherwise (canonical forms).</summary>
    private static readonly Dictionary<string, string> Aliases = new()
    {
        ["lr"] = "learningrate",
        ["tolerancegrad"] = "tolerangegrad", // TorchSharp's LBFGS misspells PyTorch's tolerance_grad
    };

    /// <summary>How messages name the TorchSharp parameters that have a PyTorch alias.</summary>
    private static readonly Dictionary<string, string> DisplayNames = new()
    {
        ["learningrate"] = "lr",
        ["tolerangegrad"] = "tolerance_grad",
    };

    private const string BetasArg = "betas";

    private readonly string kind;
    private readonly Dictionary<string, List<MethodInfo>> factories = new(StringComparer.OrdinalIgnoreCase);

    /// <param name="holder">The static class whose factories are read.</param>
    /// <param name="firstParameter">The type of the first parameter, supplied by the caller (parameters, optimizer).</param>
    /// <param name="product">The type every factory returns (a base class).</param>
    /// <param name="kind">What a factory makes, for messages: "optimizer".</param>
    public ComponentCatalog(Type holder, Type firstParameter, Type product, string kind)
    {
        this.kind = kind;
        foreach (var method in holder.GetMethods(BindingFlags.Public | BindingFlags.Static))
        {
            var parameters = method.GetParameters();
            if (parameters.Length == 0 || parameters[0].ParameterType != firstParameter) continue;
            if (!product.IsAssignableFrom(method.ReturnType) || method.IsGenericMethodDefinition) continue;
            if (!factories.TryGetValue(method.Name, out var overloads)) factories[method.Name] = overloads = [];
            overloads.Add(method);
        }
        // Scalar overloads before list overloads, so that a tie is won by the simpler one.
        foreach (var overloads in factories.Values)
            overloads.Sort((a, b) => Rank(a).CompareTo(Rank(b)));
        Names = factories.Where(f => f.Value.Any(Configurable)).Select(f => f.Key)
            .Order(StringComparer.OrdinalIgnoreCase).ToList().AsReadOnly();

        static int Rank(MethodInfo m) => m.GetParameters().Count(p => ElementType(p.ParameterType) is not null) * 100 + m.GetParameters().Length;
    }

    /// <summary>The names a config can use, in TorchSharp's spelling.</summary>
    public IReadOnlyList<string> Names { get; }

    public IReadOnlyList<ConfigError> Validate(NamedComponent spec, string path) => Resolve(spec, path).Errors;

    public object Create(NamedComponent spec, object first, string path)
    {
        var binding = Resolve(spec, path);
        if (binding.Errors.Count > 0) throw new ConfigException(binding.Errors);
        var values = binding.Values!;
        values[0] = first;
        try
        {
            return binding.Method!.Invoke(null, values)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is ArgumentException inner)
        {
            throw new ConfigException($"{path}.args", $"{binding.Method!.Name} rejected its arguments: {inner.Message}");
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    private sealed record Binding(MethodInfo? Method, object?[]? Values, IReadOnlyList<ConfigError> Errors, int Unknown);

    private Binding Resolve(NamedComponent spec, string path)
    {
        if (!factories.TryGetValue(spec.Name ?? "", out var overloads))
            return Failed(new ConfigError($"{path}.name",
                $"unknown {kind} '{spec.Name}'; known {kind}s: {string.Join(", ", Names)}"));

        var configurable = overloads.Where(Configurable).ToList();
        if (configurable.Count == 0)
        {
            var blocker = overloads[0].GetParameters().Skip(1).First(p => !p.HasDefaultValue && Describe(p.ParameterType) is null);
            return Failed(new ConfigError($"{path}.name",
                $"{overloads[0].Name} cannot be set up from a config: its argument {blocker.Name} is a " +
                $"{TypeName(blocker.ParameterType)}; create it in code instead (known {kind}s: {string.Join(", ", Names)})"));
        }

        var args = spec.Args ?? new Dictionary<string, object?>();
        Binding? best = null;
        foreach (var method in configurable)
        {
            var binding = Bind(method, args, path, configurable);
            if (binding.Errors.Count == 0) return binding;
            if (best is null || (binding.Unknown, binding.Errors.Count).CompareTo((best.Unknown, best.Errors.Count)) < 0)
                best = binding;
        }
        return best!;

        static Binding Failed(ConfigError error) => new(null, null, [error], 0);
    }

    /// <summary>Binds the arguments to one overload; every fault is reported, not only the first.</summary>
    private static Binding Bind(MethodInfo method, IReadOnlyDictionary<string, object?> args, string path, IReadOnlyList<MethodInfo> overloads)
    {
        var parameters = method.GetParameters();
        var values = new object?[parameters.Length];
        var given = new string?[parameters.Length]; // the argument name that set each parameter
        var errors = new List<ConfigError>();
        var unknown = 0;

        foreach (var (arg, value) in args)
        {
            var argPath = $"{path}.args.{arg}";
            var index = Find(parameters, arg);
            if (index < 0 && Canonical(arg) == BetasArg && Find(parameters, "beta1") is var b1 and > 0 && Find(parameters, "beta2") is var b2 and > 0)
            {
                if (value is IReadOnlyList<object?> { Count: 2 } pair)
                {
                    Assign(b1, pair[0], $"{argPath}[0]", arg);
                    Assign(b2, pair[1], $"{argPath}[1]", arg);
                }
                else errors.Add(new(argPath, $"expected a list of two numbers [beta1, beta2], got {ConfigValue.ToJson(value)}{ListHint(value)}"));
                continue;
            }
            if (index < 0)
            {
                unknown++;
                errors.Add(new(argPath, $"{method.Name} has no argument '{arg}'; it accepts: {string.Join(", ", Accepted(overloads))}"));
                continue;
            }
            Assign(index, value, argPath, arg);
        }

        for (var i = 1; i < parameters.Length; i++)
        {
            if (given[i] is not null) continue;
            if (parameters[i].HasDefaultValue) values[i] = parameters[i].DefaultValue;
            else if (parameters[i].IsOptional) values[i] = Type.Missing;
            else
            {
                var name = DisplayName(parameters[i]);
                errors.Add(new($"{path}.args.{name}",
                    $"is missing: {method.Name} needs {name} ({Describe(parameters[i].ParameterType)}), which has no default"));
            }
        }
        return new Binding(method, values, errors, unknown);

        void Assign(int index, object? value, string argPath, string? arg = null)
        {
            var p = parameters[index];
            arg ??= DisplayName(p);
            if (given[index] is { } earlier)
            {
                errors.Add(new(argPath, $"sets {DisplayName(p)}, which '{earlier}' already sets"));
                return;
            }
            given[index] = arg;
            if (TryConvert(value, p.ParameterType, out var converted)) values[index] = converted;
            else errors.Add(new(argPath, Describe(p.ParameterType) is { } expected
                ? $"expected {expected}, got {ConfigValue.ToJson(value)}{(ElementType(p.ParameterType) is null ? "" : ListHint(value))}"
                : $"{method.Name}'s {p.Name} is a {TypeName(p.ParameterType)}, which a config cannot give"));
        }
    }

    /// <summary>A scalar where a list belongs usually means a JSON array was read as a List knob.</summary>
    private static string ListHint(object? value) => value is IReadOnlyList<object?> ? "" :
        " (in JSON an array is a List knob, one option per item: write {\"value\": [...]} for a single list value)";

    /// <summary>The index of the parameter (never the first) an argument name binds to, or -1.</summary>
    private static int Find(ParameterInfo[] parameters, string arg)
    {
        var canonical = Canonical(arg);
        for (var pass = 0; pass < 2; pass++)
        {
            for (var i = 1; i < parameters.Length; i++)
            {
                var name = Canonical(parameters[i].Name!);
                if (pass == 0 ? name == canonical : Aliases.TryGetValue(canonical, out var alias) && name == alias)
                    return i;
            }
        }
        return -1;
    }

    private static string Canonical(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    /// <summary>The PyTorch name of a parameter, as messages show it.</summary>
    private static string DisplayName(ParameterInfo p) =>
        DisplayNames.TryGetValue(Canonical(p.Name!), out var display) ? display : p.Name!;

    private static IEnumerable<string> Accepted(IReadOnlyList<MethodInfo> overloads)
    {
        var names = new List<string>();
        foreach (var p in overloads.SelectMany(m => m.GetParameters().Skip(1)))
        {
            var name = DisplayName(p);
            if (!names.Contains(name)) names.Add(name);
            if (name == "beta2" && !names.Contains(BetasArg)) names.Add(BetasArg);
        }
        return names;
    }

    /// <summary>Whether every required argument (after the first) has a type a config can give.</summary>
    private static bool Configurable(MethodInfo method) =>
        method.GetParameters().Skip(1).All(p => p.HasDefaultValue || p.IsOptional || Describe(p.ParameterType) is not null);

    /// <summary>What a config must give for a parameter type, or null when a config cannot give it.</summary>
    private static string? Describe(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner) return Describe(inner) is { } d ? $"{d} or null" : null;
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type == typeof(int) || type == typeof(long)) return "a whole number";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(string)) return "a string";
        if (type.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(type).Select(SnakeCase));
        if (ElementType(type) is { } element && Describe(element) is { } e && ElementType(element) is null)
            return $"a list of {(e.StartsWith("a ", StringComparison.Ordinal) ? e[2..] + "s" : e)}";
        return null;
    }

    /// <summary>The element type of an array or of a generic collection interface a list converts to.</summary>
    private static Type? ElementType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (!type.IsGenericType) return null;
        var definition = type.GetGenericTypeDefinition();
        return definition == typeof(IEnumerable<>) || definition == typeof(IList<>) || definition == typeof(ICollection<>)
            || definition == typeof(IReadOnlyList<>) || definition == typeof(IReadOnlyCollection<>) || definition == typeof(List<>)
            ? type.GetGenericArguments()[0]
            : null;
    }

    /// <summary>Converts a normalized config value to a parameter type; false when it does not fit.</summary>
    private static bool TryConvert(object? value, Type type, out object? result)
    {
        result = null;
        if (Nullable.GetUnderlyingType(type) is { } inner)
            return value is null || TryConvert(value, inner, out result);
        if (value is null) return !type.IsValueType && Describe(type) is not null;

        switch (value)
        {
            case long l when type == typeof(double): result = (double)l; return true;
            case long l when type == typeof(float): result = (float)l; return true;
            case double d when type == typeof(double): result = d; return true;
            case double d when type == typeof(float): result = (float)d; return true;
            case long l when type == typeof(long): result = l; return true;
            case long l when type == typeof(int) && l is >= int.MinValue and <= int.MaxValue: result = (int)l; return true;
            case double d when type == typeof(long) && d == Math.Floor(d) && Math.Abs(d) < 9e18: result = (long)d; return true;
            case double d when type == typeof(int) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue: result = (int)d; return true;
            case bool b when type == typeof(bool): result = b; return true;
            case string s when type == typeof(string): result = s; return true;
            case string s when type.IsEnum:
                var name = Enum.GetNames(type).FirstOrDefault(n => Canonical(n) == Canonical(s));
                if (name is null) return false;
                result = Enum.Parse(type, name);
                return true;
            case IReadOnlyList<object?> list when ElementType(type) is { } element && ElementType(element) is null:
                var items = type.IsArray ? (IList)Array.CreateInstance(element, list.Count) : (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
                for (var i = 0; i < list.Count; i++)
                {
                    if (!TryConvert(list[i], element, out var item)) return false;
                    if (type.IsArray) items[i] = item; else items.Add(item);
                }
                result = items;
                return true;
            default: return false;
        }
    }

    private static string SnakeCase(string pascal)
    {
        var text = new StringBuilder();
        for (var i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0 && !char.IsUpper(pascal[i - 1])) text.Append('_');
            text.Append(char.ToLower(pascal[i], CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    private static string TypeName(Type type) => type.IsGenericType
        ? $"{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(", ", type.GetGenericArguments().Select(TypeName))}>"
        : type.Name;
}
