using System.Collections.Frozen;
using System.Text;
using System.Text.RegularExpressions;

namespace RapidFire.Spec;

/// <summary>
/// Hides secrets in what RapidFire shows: knobs whose names look like secrets (API keys, tokens, passwords) and the
/// passwords of connection strings. Views use it (the HTTP API's runs, the CLI tables, <c>runs.csv</c>,
/// <c>experiment.log</c>, <c>rapidfire validate</c>, exports); the MLSpec still receives the real values, and the
/// journal keeps them (a resumed run needs them).
/// </summary>
/// <remarks>
/// <para><b>Which knob names are secret.</b> A knob path is split at <c>.</c> into segments; a path is secret when any
/// segment is, and then the whole value under it is (a secret map or list is masked entirely). A segment is split into
/// lower-case words at <c>_</c>, <c>-</c>, spaces and camelCase boundaries (<c>awsSecretAccessKey</c>, <c>HF_TOKEN</c>,
/// <c>api-key</c>) and is secret when:</para>
/// <list type="number">
/// <item>a word contains <c>password</c>, <c>passwd</c>, <c>passphrase</c>, <c>secret</c> or <c>credential</c>
/// (<c>db_password</c>, <c>client_secret</c>, <c>aws_secret_access_key</c>, <c>credentials</c>), or is
/// <c>pwd</c>, <c>auth</c> or <c>authorization</c>;</item>
/// <item>its last word ends in <c>token</c> (<c>token</c>, <c>hf_token</c>, <c>access_token</c>, <c>authToken</c>,
/// <c>hftoken</c>), except a tokenizer's special tokens <c>pad_token</c>, <c>eos_token</c>, <c>bos_token</c>,
/// <c>unk_token</c>, <c>cls_token</c>, <c>sep_token</c> and <c>mask_token</c>, which name vocabulary entries. A
/// <c>token</c> that is not the last word is no secret: <c>max_tokens</c>, <c>token_dropout</c>, <c>pad_token_id</c>;</item>
/// <item>its last word is <c>key</c> (<c>key</c>, <c>api_key</c>, <c>wandb_key</c>, and also <c>label_key</c>: a name
/// ending in key is masked, rename a column knob <c>label_column</c> to see it), or is a single word made of an
/// authentication stem and <c>key</c> or <c>keys</c> (<c>apikey</c>, <c>accesskey</c>, <c>privatekey</c>), or is
/// <c>keys</c> after such a stem (<c>api_keys</c>). <c>key</c> elsewhere is no secret: <c>key_dim</c>,
/// <c>num_key_value_heads</c>, <c>keypoints</c>, <c>keep_checkpoints</c>, <c>monkey</c>.</item>
/// </list>
/// <para>A string value under a name that is not secret still has connection-string passwords masked
/// (<see cref="MaskConnectionString"/>): <c>db_url = "postgres://u:p@h/db"</c> shows <c>postgres://u:***@h/db</c>.</para>
/// </remarks>
public static class SecretMask
{
    /// <summary>What a masked value shows.</summary>
    public const string Masked = "***";

    private static readonly string[] SecretStems = ["password", "passwd", "passphrase", "secret", "credential"];

    private static readonly FrozenSet<string> SecretWords = new[] { "pwd", "auth", "authorization" }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> SpecialTokens =
        new[] { "padtoken", "eostoken", "bostoken", "unktoken", "clstoken", "septoken", "masktoken" }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> KeyStems = new[]
    {
        "api", "access", "secret", "private", "auth", "master", "account", "signing", "encryption", "subscription", "license",
        "client", "service", "session", "ssh", "sas", "shared", "app",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Whether the knob at <paramref name="knobPath"/> (<c>api_key</c>, <c>data.hf_token</c>) is a secret: see the remarks on the type.</summary>
    public static bool IsSecret(string knobPath)
    {
        ArgumentNullException.ThrowIfNull(knobPath);
        foreach (var segment in knobPath.Split('.'))
            if (IsSecretSegment(segment)) return true;
        return false;
    }

    /// <summary>
    /// The config as views show it: every secret knob's value is <see cref="Masked"/> (a secret map or list entirely,
    /// secrets inside lists of maps too), and connection-string passwords inside other string values are masked. The
    /// same instance when there is nothing to hide.
    /// </summary>
    public static Config Mask(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var changed = false;
        var knobs = new List<KeyValuePair<string, object?>>(config.Count);
        foreach (var (key, value) in config)
        {
            var masked = Mask(key, value);
            changed |= !ReferenceEquals(masked, value);
            knobs.Add(new(key, masked));
        }
        return changed ? new Config(knobs) : config;
    }

    /// <summary>
    /// The value of the knob at <paramref name="knobPath"/> as views show it: <see cref="Masked"/> when the path is
    /// secret, else the value with the secrets inside it masked (the same instance when there are none). Takes the
    /// values of <see cref="Config.Leaves"/> and of <see cref="Config"/> alike.
    /// </summary>
    public static object? Mask(string knobPath, object? value) =>
        IsSecret(knobPath) ? (value is null ? null : Masked) : Inside(value);

    /// <summary>The text of the knob at <paramref name="knobPath"/> as views show it: <see cref="Masked"/> when the path is secret.</summary>
    public static string MaskText(string knobPath, string text) =>
        IsSecret(knobPath) ? (text.Length == 0 ? text : Masked) : MaskConnectionString(text);

    private static object? Inside(object? value) => value switch
    {
        string text => MaskConnectionString(text) is var masked && masked != text ? masked : text,
        IReadOnlyDictionary<string, object?> map => MaskMap(map),
        IReadOnlyList<object?> list => MaskList(list),
        _ => value,
    };

    private static object MaskMap(IReadOnlyDictionary<string, object?> map)
    {
        var changed = false;
        var copy = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in map)
        {
            var masked = Mask(key, value);
            changed |= !ReferenceEquals(masked, value);
            copy[key] = masked;
        }
        return changed ? new System.Collections.ObjectModel.ReadOnlyDictionary<string, object?>(copy) : map;
    }

    private static object MaskList(IReadOnlyList<object?> list)
    {
        var changed = false;
        var copy = new List<object?>(list.Count);
        foreach (var item in list)
        {
            var masked = Inside(item);
            changed |= !ReferenceEquals(masked, item);
            copy.Add(masked);
        }
        return changed ? copy.AsReadOnly() : list;
    }

    private static bool IsSecretSegment(string segment)
    {
        var words = Words(segment);
        if (words.Count == 0) return false;
        foreach (var word in words)
        {
            if (SecretWords.Contains(word)) return true;
            foreach (var stem in SecretStems)
                if (word.Contains(stem, StringComparison.Ordinal)) return true;
        }
        var last = words[^1];
        if (last.EndsWith("token", StringComparison.Ordinal)) return !SpecialTokens.Contains(string.Concat(words));
        if (last == "key") return true;
        if (last == "keys") return words.Count > 1 && KeyStems.Contains(words[^2]);
        foreach (var suffix in (ReadOnlySpan<string>)["keys", "key"])
            if (last.Length > suffix.Length && last.EndsWith(suffix, StringComparison.Ordinal) && KeyStems.Contains(last[..^suffix.Length]))
                return true;
        return false;
    }

    /// <summary>
    /// The lower-case words of a name: split at anything not a letter or digit and at camelCase boundaries
    /// (<c>awsSecretAccessKey</c>: aws, secret, access, key; <c>HFToken</c>: hf, token).
    /// </summary>
    private static List<string> Words(string name)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (!char.IsLetterOrDigit(c))
            {
                Flush();
                continue;
            }
            if (char.IsUpper(c) && word.Length > 0)
            {
                var previous = name[i - 1];
                var nextIsLower = i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (char.IsLower(previous) || char.IsDigit(previous) || (char.IsUpper(previous) && nextIsLower)) Flush();
            }
            word.Append(char.ToLowerInvariant(c));
        }
        Flush();
        return words;

        void Flush()
        {
            if (word.Length > 0) words.Add(word.ToString());
            word.Clear();
        }
    }

    // user:password@ in a URI (postgres://u:p@host/db, https://u:p@host).
    private static readonly Regex UriPassword = new(@"(?<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?<value>[^@/?#\s]*)@",
        RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, TimeSpan.FromSeconds(1));

    // name=value (connection strings, query strings, HOCON, environment lines): the value runs to ; & or the line's end,
    // or is quoted.
    private static readonly Regex Assignment = new(
        @"(?<![A-Za-z0-9_])(?<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*=[ \t]*(?<value>""(?:[^""]|"""")*""|'(?:[^']|'')*'|[^;&\r\n]*)",
        RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, TimeSpan.FromSeconds(1));

    // "name": "value" (JSON).
    private static readonly Regex JsonMember = new(@"""(?<name>[^""\\]{1,200})""[ \t]*:[ \t]*(?<value>""(?:[^""\\]|\\.)*"")",
        RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, TimeSpan.FromSeconds(1));

    /// <summary>
    /// <paramref name="text"/> with its secrets masked: the value of every <c>name=value</c> whose name is secret by
    /// <see cref="IsSecret"/> (<c>Password=</c>, <c>Pwd=</c>, <c>AccountKey=</c>, <c>aws_secret_access_key=</c>,
    /// <c>?token=</c>; up to the next <c>;</c>, <c>&amp;</c> or the end of the line, or a quoted value), of every JSON
    /// member <c>"password": "..."</c> likewise, and the password of every <c>scheme://user:password@host</c>. For
    /// connection strings (<c>Host=db;Username=rf;Password=***</c>) and any text that may quote one, such as a driver's
    /// error message.
    /// </summary>
    public static string MaskConnectionString(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return text;
        var masked = text.Contains("://", StringComparison.Ordinal) ? UriPassword.Replace(text, m => $"{m.Groups["prefix"].Value}:{Masked}@") : text;
        if (masked.Contains('=', StringComparison.Ordinal)) masked = Assignment.Replace(masked, m => Replace(m, quoteJson: false));
        if (masked.Contains(':', StringComparison.Ordinal) && masked.Contains('"', StringComparison.Ordinal))
            masked = JsonMember.Replace(masked, m => Replace(m, quoteJson: true));
        return masked;
    }

    private static string Replace(Match match, bool quoteJson)
    {
        var value = match.Groups["value"];
        if (!IsSecret(match.Groups["name"].Value) || value.Value.Trim().Length == 0 || value.Value.StartsWith(Masked, StringComparison.Ordinal))
            return match.Value;
        var quoted = value.Value[0] is '"' or '\'';
        if (quoted && value.Value[1..^1] == Masked) return match.Value;
        var replacement = quoted || quoteJson ? $"{value.Value[0]}{Masked}{value.Value[0]}" : Masked;
        var start = value.Index - match.Index;
        return string.Concat(match.Value.AsSpan(0, start), replacement, match.Value.AsSpan(start + value.Length));
    }
}
