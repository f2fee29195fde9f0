using System.Text.Json;
using System.Text.Json.Nodes;

namespace RapidFire.Spec.Data;

/// <summary>
/// The JSON form of a <see cref="DataHandle"/>. Parsing collects every fault (unknown or repeated keys, wrong
/// types, bad values) before failing; comments and trailing commas are allowed.
/// </summary>
internal static class DataHandleJson
{
    public const string LocatorsKey = "locators";
    public const string DownloadColumnsKey = "download_columns";
    public const string FractionKey = "fraction";
    public const string SeedKey = "seed";
    public const string ObjectsKey = "objects";
    public const string MiscKey = "misc";
    public const string ModelsKey = "models";

    private static readonly string[] TopKeys = [LocatorsKey, DownloadColumnsKey, FractionKey, SeedKey];
    private static readonly string[] LocatorKeys =
        [.. ModeNames.All.Select(m => m.ToName()), ObjectsKey, MiscKey, ModelsKey];

    public static DataHandle Parse(string json, string baseDirectory, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $" at line {line + 1}, position {e.BytePositionInLine + 1}" : "";
            throw new DataException(source, null, $"is not valid JSON{where}: {e.Message}", e);
        }

        using (document)
        {
            var errors = new List<DataError>();
            void Fail(string message) => errors.Add(new DataError(source, null, message));

            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DataException(source, null, "a data handle must be a JSON object with a 'locators' object");

            var partitions = new Dictionary<Mode, Locator>();
            Locator? objects = null, misc = null, models = null;
            IReadOnlyList<string>? downloadColumns = null;
            var fraction = 1.0;
            var seed = DataHandle.DefaultSeed;
            var sawLocators = false;
            var partitionKeys = 0;

            foreach (var property in Properties(root, "", TopKeys, Fail))
            {
                var value = property.Value;
                switch (property.Name)
                {
                    case LocatorsKey:
                        sawLocators = true;
                        if (value.ValueKind != JsonValueKind.Object)
                        {
                            Fail($"{LocatorsKey} must be an object such as {{\"train\": \"train.csv\"}}, not {Kind(value)}");
                            break;
                        }
                        foreach (var locator in Properties(value, LocatorsKey + ".", LocatorKeys, Fail))
                        {
                            if (locator.Value.ValueKind == JsonValueKind.Null)
                                continue;
                            var path = $"{LocatorsKey}.{locator.Name}";
                            if (locator.Name is not (ObjectsKey or MiscKey or ModelsKey))
                                partitionKeys++;
                            if (locator.Value.ValueKind != JsonValueKind.String)
                            {
                                Fail($"{path} must be a path or an s3:// locator, not {Kind(locator.Value)}");
                                continue;
                            }
                            Locator parsed;
                            try
                            {
                                parsed = Locator.Parse(locator.Value.GetString()!, baseDirectory);
                            }
                            catch (ArgumentException e)
                            {
                                Fail($"{path}: {FirstSentence(e.Message)}");
                                continue;
                            }
                            switch (locator.Name)
                            {
                                case ObjectsKey: objects = parsed; break;
                                case MiscKey: misc = parsed; break;
                                case ModelsKey: models = parsed; break;
                                default: partitions[ModeNames.Parse(locator.Name)] = parsed; break;
                            }
                        }
                        break;
                    case DownloadColumnsKey:
                        if (value.ValueKind == JsonValueKind.Null)
                            break;
                        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                        {
                            Fail($"{DownloadColumnsKey} must be null or a list of column names, not {Kind(value)}");
                            break;
                        }
                        downloadColumns = value.EnumerateArray().Select(e => e.GetString()!).ToList();
                        break;
                    case FractionKey:
                        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out fraction))
                        {
                            Fail($"{FractionKey} must be a number in (0, 1], not {Kind(value)}");
                            fraction = 1.0;
                        }
                        break;
                    case SeedKey:
                        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out seed))
                        {
                            Fail($"{SeedKey} must be an integer (32-bit), not {Kind(value)}");
                            seed = DataHandle.DefaultSeed;
                        }
                        break;
                }
            }
            if (!sawLocators)
                Fail($"has no '{LocatorsKey}' object; give at least {{\"{LocatorsKey}\": {{\"train\": \"train.csv\"}}}}");
            errors.AddRange(DataHandle.Check(source, sawLocators ? partitionKeys : 1, downloadColumns, fraction));
            if (errors.Count > 0)
                throw new DataException(errors);
            return new DataHandle(partitions, objects ?? new LocalLocator(baseDirectory), misc, models, downloadColumns,
                fraction, seed, source);
        }
    }

    public static string Write(DataHandle handle, string baseDirectory)
    {
        var locators = new JsonObject();
        foreach (var (mode, locator) in handle.Partitions)
            locators[mode.ToName()] = locator.ToText(baseDirectory);
        locators[ObjectsKey] = handle.Objects.ToText(baseDirectory);
        if (handle.Misc is not null)
            locators[MiscKey] = handle.Misc.ToText(baseDirectory);
        if (handle.Models is not null)
            locators[ModelsKey] = handle.Models.ToText(baseDirectory);
        var root = new JsonObject
        {
            [LocatorsKey] = locators,
            [DownloadColumnsKey] = handle.DownloadColumns is null ? null : new JsonArray([.. handle.DownloadColumns.Select(c => (JsonNode?)c)]),
            [FractionKey] = handle.Fraction,
            [SeedKey] = handle.Seed,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The properties of an object, reporting unknown keys (with a suggestion) and keys given twice.</summary>
    private static IEnumerable<JsonProperty> Properties(JsonElement element, string prefix, string[] known, Action<string> fail)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (!known.Contains(property.Name, StringComparer.Ordinal))
            {
                var guess = known.FirstOrDefault(k => Distance(k, property.Name.ToLowerInvariant()) <= 2);
                var hint = guess is null ? "" : $" (did you mean '{guess}'?)";
                fail($"unknown key '{prefix}{property.Name}'{hint}; the known keys are: {string.Join(", ", known)}");
                continue;
            }
            if (!seen.Add(property.Name))
            {
                fail($"key '{prefix}{property.Name}' is given twice");
                continue;
            }
            yield return property;
        }
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{value.GetString()}\"",
        JsonValueKind.Number => $"the number {value.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "a list",
        _ => "an object",
    };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" (Parameter", StringComparison.Ordinal);
        return cut < 0 ? message : message[..cut];
    }

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            previous = current;
        }
        return previous[b.Length];
    }
}
