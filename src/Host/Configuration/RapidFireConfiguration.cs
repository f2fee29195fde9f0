using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Config = Akka.Configuration.Config;
using ConfigException = RapidFire.Spec.ConfigException;

namespace RapidFire.Host.Configuration;

/// <summary>
/// The runtime's HOCON, layered from configuration profiles (<c>config/*.conf</c>), <c>appsettings.json</c> and
/// environment variables. Highest priority first:
/// <list type="number">
/// <item>environment variables <c>RAPIDFIRE__…</c> and <c>AKKA__…</c> (<see cref="FromEnvironment"/>);</item>
/// <item><c>appsettings.json</c>: its <c>"rapidfire"</c> and <c>"akka"</c> objects (<see cref="FromAppSettings"/>);</item>
/// <item>the profiles, later ones over earlier ones (<see cref="Profile(string)"/>);</item>
/// <item>nothing else: the Experiment falls back to <c>reference.conf</c> of RapidFire.Actors itself.</item>
/// </list>
/// Every fault (unreadable file, bad JSON, unknown profile, malformed variable) is a <see cref="ConfigException"/>
/// naming the file, profile or variable; values never appear in messages (they may be secrets).
/// </summary>
/// <example>
/// <code>
/// var hocon = RapidFireConfiguration.Load(["cluster", "postgres"]);
/// using var experiment = new Experiment("mnist", "experiments", hocon);
/// </code>
/// </example>
public static class RapidFireConfiguration
{
    /// <summary>The file read from the current directory when no appsettings path is given (and it exists).</summary>
    public const string AppSettingsFile = "appsettings.json";

    private const string ResourcePrefix = "config/";
    private const string ResourceSuffix = ".conf";

    /// <summary>The HOCON sections that appsettings.json and environment variables can set, by their prefix.</summary>
    private static readonly (string Prefix, string Section)[] Sections = [("RAPIDFIRE__", "rapidfire"), ("AKKA__", "akka")];

    /// <summary>The profiles built into RapidFire.Host, by name (<c>cluster</c>, <c>embedded</c>, <c>postgres</c>): <c>config/NAME.conf</c> of the repository.</summary>
    public static IReadOnlyList<string> ProfileNames { get; } = typeof(RapidFireConfiguration).Assembly.GetManifestResourceNames()
        .Where(r => r.StartsWith(ResourcePrefix, StringComparison.Ordinal) && r.EndsWith(ResourceSuffix, StringComparison.Ordinal))
        .Select(r => r[ResourcePrefix.Length..^ResourceSuffix.Length])
        .Order(StringComparer.Ordinal)
        .ToList();

    /// <summary>
    /// The layered HOCON: <paramref name="environment"/> over <paramref name="appSettingsPath"/> over
    /// <paramref name="profiles"/> (later over earlier). Pass the result to <see cref="Experiment"/>, which adds
    /// <c>reference.conf</c> as the last fallback.
    /// </summary>
    /// <param name="profiles">Profile names (<see cref="ProfileNames"/>) or paths of <c>.conf</c> files; later ones win.</param>
    /// <param name="appSettingsPath">
    /// An appsettings JSON file, which must exist; null: <c>appsettings.json</c> in the current directory when there is one.
    /// </param>
    /// <param name="environment">The variables to read (null: this process's environment).</param>
    /// <exception cref="ConfigException">A file, profile or variable is missing or malformed; the message names it.</exception>
    public static Config Load(IEnumerable<string> profiles, string? appSettingsPath = null,
        IReadOnlyDictionary<string, string?>? environment = null) =>
        Load(profiles, appSettingsPath, environment, Directory.GetCurrentDirectory());

    /// <summary><see cref="Load(IEnumerable{string}, string?, IReadOnlyDictionary{string, string?}?)"/> with relative paths (and the default appsettings.json) taken from <paramref name="currentDirectory"/>.</summary>
    internal static Config Load(IEnumerable<string> profiles, string? appSettingsPath,
        IReadOnlyDictionary<string, string?>? environment, string currentDirectory)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        var profileLayers = profiles.Select(p => Profile(p, currentDirectory)).ToList();
        var appSettings = appSettingsPath is not null ? Path.GetFullPath(appSettingsPath, currentDirectory) : null;
        if (appSettings is null && File.Exists(Path.Combine(currentDirectory, AppSettingsFile)))
            appSettings = Path.Combine(currentDirectory, AppSettingsFile);
        var layers = new List<Config> { FromEnvironment(environment ?? ProcessEnvironment()) };
        if (appSettings is not null) layers.Add(FromAppSettings(appSettings));
        layers.AddRange(Enumerable.Reverse(profileLayers));
        return layers.Aggregate((over, under) => over.WithFallback(under));
    }

    /// <summary>
    /// One profile: a built-in name (<see cref="ProfileNames"/>, case-insensitive) or the path of a HOCON file
    /// (relative to the current directory).
    /// </summary>
    /// <exception cref="ConfigException">No such profile or file, or a file that cannot be read or parsed.</exception>
    public static Config Profile(string profile) => Profile(profile, Directory.GetCurrentDirectory());

    private static Config Profile(string profile, string currentDirectory)
    {
        if (string.IsNullOrWhiteSpace(profile))
            throw new ConfigException("profile", "is empty: give a profile name (" + string.Join(", ", ProfileNames) + ") or the path of a .conf file");
        if (ProfileNames.FirstOrDefault(n => string.Equals(n, profile, StringComparison.OrdinalIgnoreCase)) is { } name)
        {
            var resource = ResourcePrefix + name + ResourceSuffix;
            using var stream = typeof(RapidFireConfiguration).Assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return Parse(reader.ReadToEnd(), $"profile '{name}' (config/{name}.conf)");
        }
        var path = Path.GetFullPath(profile, currentDirectory);
        if (File.Exists(path)) return Parse(ReadFile(path), path);
        var looksLikePath = profile.Contains('/') || profile.Contains('\\') || Path.HasExtension(profile);
        throw looksLikePath
            ? new ConfigException(path, "profile file not found")
            : new ConfigException($"profile '{profile}'",
                $"is not a profile: the profiles are {string.Join(", ", ProfileNames)}, or give the path of a .conf file");
    }

    /// <summary>
    /// The <c>"rapidfire"</c> and <c>"akka"</c> objects of an appsettings JSON file (their names case-insensitive; other
    /// sections are ignored) as HOCON at the same paths. Nested objects are nested paths, and each key is one HOCON
    /// key as written (case and <c>-</c> kept; a key with dots, such as a type name in
    /// <c>serialization-bindings</c>, stays one key). Numbers, booleans and strings keep their types, arrays become
    /// lists, and a <c>null</c> member is skipped (the lower layers' value stands). Comments and trailing commas are
    /// allowed, as in ASP.NET's appsettings.
    /// </summary>
    /// <exception cref="ConfigException">The file is missing, unreadable or not a JSON object, or a section is not an object.</exception>
    public static Config FromAppSettings(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new ConfigException(full, "appsettings file not found");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(ReadFile(full),
                new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ConfigException(full, $"is not valid JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new ConfigException(full, $"must hold a JSON object, not {Describe(document.RootElement.ValueKind)}");
            var hocon = new StringBuilder();
            var seen = new Dictionary<string, string>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                var section = Sections.Select(s => s.Section).FirstOrDefault(s => string.Equals(s, property.Name, StringComparison.OrdinalIgnoreCase));
                if (section is null) continue;
                if (seen.TryGetValue(section, out var earlier))
                    throw new ConfigException($"{full}: \"{property.Name}\"", $"repeats the section \"{earlier}\"; write it once");
                seen[section] = property.Name;
                if (property.Value.ValueKind == JsonValueKind.Null) continue;
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new ConfigException($"{full}: \"{property.Name}\"", $"must be an object, not {Describe(property.Value.ValueKind)}");
                Quote(hocon, section);
                hocon.Append(" : ");
                WriteJson(hocon, property.Value, $"{full}: {property.Name}");
                hocon.Append('\n');
            }
            return Parse(hocon.ToString(), full);
        }
    }

    /// <summary>
    /// HOCON from environment variables <c>RAPIDFIRE__A__B</c> (path <c>rapidfire.a.b</c>) and <c>AKKA__A__B</c>
    /// (<c>akka.a.b</c>); other variables are ignored. In a name, <c>__</c> separates path segments, a single
    /// <c>_</c> inside a segment is a <c>-</c> of the HOCON key, and segments are lower-cased:
    /// <c>AKKA__REMOTE__DOT_NETTY__TCP__PORT</c> is <c>akka.remote.dot-netty.tcp.port</c>,
    /// <c>RAPIDFIRE__JOURNAL__CONNECTION_STRING</c> is <c>rapidfire.journal.connection-string</c>. (Keys with capitals,
    /// underscores or dots cannot be written so; set those in appsettings.json or a profile.) A segment that is a
    /// whole number is a list index: <c>AKKA__CLUSTER__SEED_NODES__0</c>, <c>__1</c>… make a list (indexes from 0,
    /// no gaps). Values: a JSON array (<c>["akka.tcp://rapidfire@10.0.0.1:4053"]</c>) is a list; a JSON number or
    /// <c>true</c>/<c>false</c> is that; anything else is a string, taken verbatim (but Akka's HOCON trims leading and
    /// trailing white space from every string it reads).
    /// </summary>
    /// <exception cref="ConfigException">A malformed name, a key set twice (in two spellings, or as a value and a list), or gaps in list indexes; the message names the variable.</exception>
    public static Config FromEnvironment(IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var root = new EnvNode("");
        foreach (var (name, value) in environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (value is null) continue;
            var (prefix, section) = Sections.FirstOrDefault(s => name.StartsWith(s.Prefix, StringComparison.OrdinalIgnoreCase));
            if (prefix is null) continue;
            var node = root.Child(section, name);
            var segments = name[prefix.Length..].Split("__");
            if (segments[0].All(char.IsAsciiDigit))
                throw new ConfigException(name, $"must name a setting of the {section} section after {prefix}, not a list index");
            foreach (var segment in segments)
                node = node.Child(Key(segment, name), name);
            node.SetValue(value, name);
        }
        var hocon = new StringBuilder();
        foreach (var (key, child) in root.Fields)
        {
            Quote(hocon, key);
            hocon.Append(" : ");
            child.Write(hocon);
            hocon.Append('\n');
        }
        return Parse(hocon.ToString(), "the environment variables RAPIDFIRE__* and AKKA__*");
    }

    /// <summary>One segment of a variable name as a HOCON key: lower-cased, <c>_</c> to <c>-</c>.</summary>
    private static string Key(string segment, string variable)
    {
        if (segment.Length == 0 || segment[0] == '_' || segment[^1] == '_' || !segment.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ConfigException(variable,
                "is not a setting name: after RAPIDFIRE__ or AKKA__, write path segments of letters, digits and single '_' " +
                "(for '-'), separated by '__', e.g. AKKA__REMOTE__DOT_NETTY__TCP__PORT");
        return segment.ToLowerInvariant().Replace('_', '-');
    }

    /// <summary>A node of the tree the environment variables make: an object (fields), a list (index segments) or a value.</summary>
    private sealed class EnvNode(string variable)
    {
        public Dictionary<string, EnvNode> Fields { get; } = new(StringComparer.Ordinal);
        private string? literal;
        private string source = variable;

        public EnvNode Child(string key, string variable)
        {
            if (literal is not null) throw Conflict(variable);
            if (Fields.Count > 0 && Fields.Keys.First().All(char.IsAsciiDigit) != key.All(char.IsAsciiDigit))
                throw new ConfigException(variable, $"makes a list and an object of the same setting, with {source}");
            if (!Fields.TryGetValue(key, out var child)) Fields[key] = child = new EnvNode(variable);
            source = variable;
            return child;
        }

        public void SetValue(string value, string variable)
        {
            if (literal is not null || Fields.Count > 0) throw Conflict(variable);
            source = variable;
            literal = Literal(value, variable);
        }

        private ConfigException Conflict(string variable) =>
            new(variable, $"sets the same setting as {source} (a variable name is case-insensitive, and a setting is either a value or a list/object)");

        public void Write(StringBuilder hocon)
        {
            if (literal is not null)
            {
                hocon.Append(literal);
                return;
            }
            if (Fields.Keys.All(k => k.All(char.IsAsciiDigit)))
            {
                var items = Fields.Select(f => (Index: int.TryParse(f.Key, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : -1, Node: f.Value))
                    .OrderBy(f => f.Index).ToList();
                for (var i = 0; i < items.Count; i++)
                    if (items[i].Index != i)
                        throw new ConfigException(items[i].Node.source, $"list indexes must run 0, 1, 2… without gaps or leading zeros; index {i} is missing");
                hocon.Append('[');
                foreach (var (index, node) in items)
                {
                    if (index > 0) hocon.Append(", ");
                    node.Write(hocon);
                }
                hocon.Append(']');
                return;
            }
            hocon.Append('{');
            foreach (var (key, child) in Fields)
            {
                Quote(hocon, key);
                hocon.Append(" : ");
                child.Write(hocon);
                hocon.Append('\n');
            }
            hocon.Append('}');
        }

        /// <summary>An environment value as HOCON: a JSON array as a list, numbers and booleans bare, the rest quoted.</summary>
        private static string Literal(string value, string variable)
        {
            var trimmed = value.Trim();
            if (trimmed.StartsWith('[') && trimmed.EndsWith(']') && TryParseArray(trimmed) is { } array)
            {
                using (array)
                {
                    var hocon = new StringBuilder();
                    WriteJson(hocon, array.RootElement, variable);
                    return hocon.ToString();
                }
            }
            if (trimmed is "true" or "false" || IsJsonNumber(trimmed)) return trimmed;
            return Quote(new StringBuilder(), value).ToString();
        }

        private static JsonDocument? TryParseArray(string value)
        {
            try { return JsonDocument.Parse(value); }
            catch (JsonException) { return null; }
        }
    }

    /// <summary>A JSON number (no leading zeros, no '+', no NaN), which HOCON reads as the same number.</summary>
    private static bool IsJsonNumber(string value)
    {
        var i = 0;
        if (i < value.Length && value[i] == '-') i++;
        if (i == value.Length) return false;
        if (value[i] == '0') i++;
        else if (char.IsAsciiDigit(value[i])) while (i < value.Length && char.IsAsciiDigit(value[i])) i++;
        else return false;
        if (i < value.Length && value[i] == '.')
        {
            var start = ++i;
            while (i < value.Length && char.IsAsciiDigit(value[i])) i++;
            if (i == start) return false;
        }
        if (i < value.Length && value[i] is 'e' or 'E')
        {
            i++;
            if (i < value.Length && value[i] is '+' or '-') i++;
            var start = i;
            while (i < value.Length && char.IsAsciiDigit(value[i])) i++;
            if (i == start) return false;
        }
        return i == value.Length;
    }

    /// <summary>A JSON value as HOCON: objects with quoted keys (null members skipped), lists, quoted strings, bare numbers and booleans.</summary>
    private static void WriteJson(StringBuilder hocon, JsonElement element, string where)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                hocon.Append('{');
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Value.ValueKind == JsonValueKind.Null) continue;
                    if (property.Name.Length == 0) throw new ConfigException(where, "has an empty key");
                    Quote(hocon, property.Name);
                    hocon.Append(" : ");
                    WriteJson(hocon, property.Value, $"{where}.{property.Name}");
                    hocon.Append('\n');
                }
                hocon.Append('}');
                break;
            case JsonValueKind.Array:
                hocon.Append('[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first) hocon.Append(", ");
                    first = false;
                    WriteJson(hocon, item, where);
                }
                hocon.Append(']');
                break;
            case JsonValueKind.String:
                Quote(hocon, element.GetString()!);
                break;
            case JsonValueKind.Number:
                hocon.Append(element.GetRawText());
                break;
            case JsonValueKind.True:
                hocon.Append("true");
                break;
            case JsonValueKind.False:
                hocon.Append("false");
                break;
            default:
                hocon.Append("null");
                break;
        }
    }

    /// <summary>A HOCON quoted string (JSON escapes): nothing inside is a path separator, comment or substitution.</summary>
    private static StringBuilder Quote(StringBuilder hocon, string text)
    {
        hocon.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': hocon.Append("\\\""); break;
                case '\\': hocon.Append("\\\\"); break;
                case '\n': hocon.Append("\\n"); break;
                case '\r': hocon.Append("\\r"); break;
                case '\t': hocon.Append("\\t"); break;
                case '\b': hocon.Append("\\b"); break;
                case '\f': hocon.Append("\\f"); break;
                case < ' ': hocon.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: hocon.Append(c); break;
            }
        }
        return hocon.Append('"');
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    private static string ReadFile(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, $"cannot be read: {e.Message}");
        }
    }

    private static Config Parse(string hocon, string source)
    {
        try
        {
            return ConfigurationFactory.ParseString(hocon);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ConfigException(source, $"is not valid HOCON: {e.Message}");
        }
    }

    private static Dictionary<string, string?> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value, StringComparer.Ordinal);
}
