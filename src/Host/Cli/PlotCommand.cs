using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RapidFire.Host.Api;
using RapidFire.Host.Plots;
using RapidFire.Spec;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire plot --experiment NAME [--dir DIR] --metric M [--mode train|validation] [--level minibatch|epoch]
/// [--out FILE.png] [--runs 1,3] [--smooth N] [--width W] [--height H]</c>: a PNG line chart of one metric, one line
/// per run, from the experiment folder's metric files (while it trains or after).
/// </summary>
/// <remarks>
/// <para>Defaults: <c>loss</c> is drawn as the training curve (train, per minibatch); any other metric as the runs'
/// comparison (validation, per epoch) when it has validation values, else train per minibatch. A mode given alone
/// picks its natural level (train: minibatch, validation: epoch); when the metric has no values there, the other
/// level of that mode is taken (<c>recall_8</c> of <c>AggregateMetrics</c> only exists per epoch).</para>
/// <para>x is the run's minibatches of that mode since its start (a warm clone goes on from its parent's count) or the
/// epoch; the legend names each run and the knobs that differ between the runs drawn. The default file is
/// <c>DIR/NAME/plots/&lt;metric&gt;.png</c> for the default mode and level, <c>&lt;metric&gt;-&lt;mode&gt;-&lt;level&gt;.png</c>
/// otherwise. Deleted runs are left out unless <c>--runs</c> names them.</para>
/// <para>Exit codes: 0 written; 1 unknown metric or run, or no values to draw; 2 no such experiment or no metric files yet.</para>
/// </remarks>
public static class PlotCommand
{
    /// <summary>Exit code when the experiment does not exist or has no metric files yet.</summary>
    public const int NoData = 2;

    /// <summary>The <c>plot</c> command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Option<string>("--experiment") { Description = "The experiment's name.", Required = true };
        var dir = FitCommand.DirOption();
        var metric = new Option<string>("--metric") { Description = "The metric to draw: loss, a named metric (top1_accuracy), a ComputeMetrics or AggregateMetrics value.", Required = true };
        var mode = new Option<string?>("--mode") { Description = "train or validation (default: train for loss, else validation when the metric has validation values)." };
        mode.AcceptOnlyFromAmong("train", "validation");
        var level = new Option<string?>("--level") { Description = "minibatch or epoch (default: minibatch for train, epoch for validation)." };
        level.AcceptOnlyFromAmong("minibatch", "epoch");
        var output = new Option<FileInfo?>("--out") { Description = "The PNG file (default: DIR/NAME/plots/<metric>.png)." };
        var runs = new Option<string?>("--runs") { Description = "The runs to draw, e.g. 1,3,4 (default: every run but deleted ones)." };
        var smooth = new Option<int>("--smooth")
        {
            Description = "Minibatch level: draw the mean of the last N minibatches (1: the raw values).",
            DefaultValueFactory = _ => 1,
            Validators = { r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--smooth must be 1 or more"); } },
        };
        var width = SizeOption("--width", 1000);
        var height = SizeOption("--height", 600);
        var command = new Command("plot", "Draw one metric of every run of an experiment as a PNG line chart (x: minibatches or epochs, one line per run).")
        {
            name, dir, metric, mode, level, output, runs, smooth, width, height,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            try
            {
                return await Plot(new Request(parse.GetValue(name)!, parse.GetValue(dir)!, parse.GetValue(metric)!,
                    parse.GetValue(mode) is { } m ? ModeNames.Parse(m) : null,
                    parse.GetValue(level) is { } l ? Enum.Parse<MetricLevel>(l, ignoreCase: true) : null,
                    parse.GetValue(output)?.FullName, parse.GetValue(runs), parse.GetValue(smooth), parse.GetValue(width), parse.GetValue(height)),
                    stdout, stderr, cancellation);
            }
            catch (IOException e)
            {
                return Fail(stderr, e.Message, NoData);
            }
        });
        return command;
    }

    private sealed record Request(string Name, DirectoryInfo Dir, string Metric, Mode? Mode, MetricLevel? Level, string? Out,
        string? Runs, int Smooth, int Width, int Height);

    private static async Task<int> Plot(Request request, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')) || request.Name is "." or "..")
            return Fail(stderr, $"experiment name '{request.Name}' must be letters, digits, '-', '_' or '.'", RapidFireCli.InvalidInput);
        var folder = Path.Combine(request.Dir.FullName, request.Name);
        if (!Directory.Exists(folder))
            return Fail(stderr, $"there is no experiment {request.Name} in {request.Dir.FullName} (no folder {folder})", NoData);
        var files = MetricFiles.Read(folder);
        if (files.RunIds.Count == 0)
            return Fail(stderr, $"experiment {request.Name} has no metric files yet ({files.MetricsFolder}): a run's are written when it closes its first epoch", NoData);

        var views = (from mode in new[] { Mode.Train, Mode.Validation }
                     from level in new[] { MetricLevel.Minibatch, MetricLevel.Epoch }
                     select (Mode: mode, Level: level, Metrics: files.MetricsOf(mode, level))).ToList();
        var view = Resolve(request.Metric, request.Mode, request.Level, (m, l) => views.Any(v => v.Mode == m && v.Level == l && v.Metrics.Contains(request.Metric)));
        if (view is not var (chosenMode, chosenLevel))
        {
            var where = views.Where(v => v.Metrics.Contains(request.Metric)).Select(v => Describe(v.Mode, v.Level)).ToList();
            if (where.Count > 0)
                return Fail(stderr, $"metric '{request.Metric}' of experiment {request.Name} has no {Describe(request.Mode, request.Level)} values; it has {string.Join(", ", where)} values",
                    RapidFireCli.InvalidInput);
            var known = views.SelectMany(v => v.Metrics.Select(m => (Metric: m, View: Describe(v.Mode, v.Level))))
                .GroupBy(x => x.Metric).Select(g => $"{g.Key} ({string.Join(", ", g.Select(x => x.View))})");
            return Fail(stderr, $"experiment {request.Name} has no metric '{request.Metric}'; its metrics are: {string.Join("; ", known)}", RapidFireCli.InvalidInput);
        }

        var runIds = files.RunIds.Where(id => files.Status(id) != "Deleted").ToList();
        if (request.Runs is { } asked)
        {
            var parsed = asked.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries)
                .Select(t => (Text: t, Ok: int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var id), Id: id)).ToList();
            if (parsed.Count == 0 || parsed.FirstOrDefault(p => !p.Ok) is { Text: not null })
                return Fail(stderr, $"--runs takes run ids such as 1,3 (got '{asked}')", RapidFireCli.InvalidInput);
            var unknown = parsed.Select(p => p.Id).Where(id => !files.RunIds.Contains(id)).ToList();
            if (unknown.Count > 0)
                return Fail(stderr, $"experiment {request.Name} has no metric files of run {string.Join(", ", unknown)}; runs with metric files: {string.Join(", ", files.RunIds)}",
                    RapidFireCli.InvalidInput);
            runIds = parsed.Select(p => p.Id).Distinct().Order().ToList();
        }

        var series = runIds.Select(id => files.Series(id, request.Metric, chosenMode, chosenLevel)).OfType<MetricSeries>()
            .Select(s => chosenLevel == MetricLevel.Minibatch && request.Smooth > 1 ? Smoothed(s, request.Smooth) : s).ToList();
        if (series.Count == 0)
            return Fail(stderr, $"runs {string.Join(", ", runIds)} of experiment {request.Name} have no {Describe(chosenMode, chosenLevel)} values of '{request.Metric}'",
                RapidFireCli.InvalidInput);

        var knobs = await KnobsOf(files, folder, series.Select(s => s.RunId).ToList(), cancellation);
        var lines = Legend(series, knobs, files);
        var isDefault = Resolve(request.Metric, null, null, (m, l) => views.Any(v => v.Mode == m && v.Level == l && v.Metrics.Contains(request.Metric))) == view;
        var path = request.Out ?? Path.Combine(folder, "plots",
            FileName(isDefault ? request.Metric : $"{request.Metric}-{chosenMode.ToName()}-{chosenLevel.ToString().ToLowerInvariant()}") + ".png");
        var per = chosenLevel == MetricLevel.Minibatch ? "minibatch" : "epoch";
        var title = $"{request.Name}: {chosenMode.ToName()} {request.Metric} per {per}" + (request.Smooth > 1 && chosenLevel == MetricLevel.Minibatch ? $" (mean of {request.Smooth})" : "");
        MetricChart.WritePng(path, lines, title,
            chosenLevel == MetricLevel.Minibatch ? $"{chosenMode.ToName()} minibatches" : "epoch", request.Metric,
            markers: chosenLevel == MetricLevel.Epoch || series.Any(s => s.Xs.Count == 1),
            request.Width, request.Height);
        stdout.WriteLine($"wrote {path}: {title}, {series.Count} run(s), {series.Sum(s => s.Xs.Count)} values");
        return RapidFireCli.Ok;
    }

    /// <summary>
    /// The mode and level to draw: the ones asked for, the rest filled in by preference (see the remarks) among the
    /// views where the metric has values; null when none has.
    /// </summary>
    internal static (Mode Mode, MetricLevel Level)? Resolve(string metric, Mode? mode, MetricLevel? level, Func<Mode, MetricLevel, bool> has)
    {
        (Mode, MetricLevel)[] preferred = metric == "loss"
            ? [(Mode.Train, MetricLevel.Minibatch), (Mode.Validation, MetricLevel.Epoch), (Mode.Train, MetricLevel.Epoch), (Mode.Validation, MetricLevel.Minibatch)]
            : [(Mode.Validation, MetricLevel.Epoch), (Mode.Train, MetricLevel.Minibatch), (Mode.Train, MetricLevel.Epoch), (Mode.Validation, MetricLevel.Minibatch)];
        // A mode given alone keeps its natural level first, whatever the metric.
        if (mode is { } only && level is null)
            preferred = only == Mode.Train
                ? [(Mode.Train, MetricLevel.Minibatch), (Mode.Train, MetricLevel.Epoch)]
                : [(Mode.Validation, MetricLevel.Epoch), (Mode.Validation, MetricLevel.Minibatch)];
        foreach (var (m, l) in preferred)
            if ((mode is null || mode == m) && (level is null || level == l) && has(m, l)) return (m, l);
        return null;
    }

    /// <summary>A trailing mean over <paramref name="window"/> values (fewer at the start).</summary>
    internal static MetricSeries Smoothed(MetricSeries series, int window)
    {
        var ys = new double[series.Ys.Count];
        double sum = 0;
        for (var i = 0; i < ys.Length; i++)
        {
            sum += series.Ys[i];
            if (i >= window) sum -= series.Ys[i - window];
            ys[i] = sum / Math.Min(i + 1, window);
        }
        return series with { Ys = ys };
    }

    /// <summary>Legend texts: <c>run 2: hidden=32, optimizer.lr=0.003</c> with the knobs that differ between the runs drawn; a clone names its parent.</summary>
    internal static List<ChartLine> Legend(IReadOnlyList<MetricSeries> series, IReadOnlyDictionary<int, IReadOnlyDictionary<string, string>> knobs, MetricFiles files)
    {
        var shown = series.Select(s => knobs.GetValueOrDefault(s.RunId) ?? new Dictionary<string, string>()).ToList();
        var varying = VaryingKnobs.Of(shown);
        return series.Select((s, i) =>
        {
            var label = $"run {s.RunId}";
            if (files.ClonedFrom(s.RunId) is var (parent, warm)) label += $" (clone of {parent}{(warm ? ", warm" : "")})";
            var values = varying.Where(shown[i].ContainsKey).Select(k => $"{VaryingKnobs.Display(k)}={shown[i][k]}").ToList();
            return new ChartLine(s, values.Count > 0 ? $"{label}: {string.Join(", ", values)}" : label);
        }).ToList();
    }

    /// <summary>
    /// The runs' knobs from <c>runs.csv</c>; a run it does not have yet (<c>runs.csv</c> is written when a fit ends) is
    /// asked of the experiment's running host, when there is one.
    /// </summary>
    private static async Task<IReadOnlyDictionary<int, IReadOnlyDictionary<string, string>>> KnobsOf(MetricFiles files, string folder,
        IReadOnlyList<int> runIds, CancellationToken cancellation)
    {
        var knobs = runIds.Where(files.HasRunRow).ToDictionary(id => id, files.Knobs);
        if (knobs.Count == runIds.Count) return knobs;
        try
        {
            if (await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(3), cancellation) is { } host)
            {
                using var client = new ApiClient(host.Url, TimeSpan.FromSeconds(10));
                foreach (var run in await client.RunsAsync(all: true, cancellation))
                    if (runIds.Contains(run.RunId) && !knobs.ContainsKey(run.RunId))
                        knobs[run.RunId] = run.Knobs.ToDictionary(kv => kv.Key, kv => RunView.Text(kv.Value));
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or ApiException or JsonException or IOException)
        {
            // Without the host the legend names the runs only.
        }
        return knobs;
    }

    private static string Describe(Mode? mode, MetricLevel? level) =>
        string.Join(" ", new[] { mode?.ToName(), level?.ToString().ToLowerInvariant() }.OfType<string>());

    private static string FileName(string text) =>
        string.Concat(text.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    private static Option<int> SizeOption(string name, int value) => new(name)
    {
        Description = $"The image's {name[2..]} in pixels.",
        DefaultValueFactory = _ => value,
        Validators = { r => { if (r.GetValueOrDefault<int>() is < 200 or > 8000) r.AddError($"{name} must be 200 to 8000"); } },
    };

    private static int Fail(TextWriter stderr, string message, int code)
    {
        stderr.WriteLine($"error: {message}");
        return code;
    }
}
