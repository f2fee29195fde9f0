using System.Text.RegularExpressions;
using Microsoft.Playwright;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Spec;
using static Microsoft.Playwright.Assertions;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

/// <summary>
/// End to end in a real browser: `rapidfire fit` trains the MNIST example in a child process, and Debian's chromium,
/// driven by Playwright, opens the dashboard its API serves, watches the charts grow, stops a run and clones another
/// with a changed learning rate. It never downloads a browser: without /usr/bin/chromium it fails and says how to
/// install it.
/// </summary>
[Collection(ExperimentCollection.Name)]
public sealed class DashboardBrowserTests : IDisposable
{
    /// <summary>Debian's chromium (package <c>chromium</c>).</summary>
    public const string Chromium = "/usr/bin/chromium";

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly string directory = Directory.CreateTempSubdirectory("rf-dashboard-browser-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private string Experiments => Path.Combine(directory, "experiments");

    /// <summary>Two CNN runs on a quarter of the example's digits, with a learning rate low enough that they train ~40 s.</summary>
    private ChildCli StartFit(string name)
    {
        var data = RepoPaths.MnistExample("data");
        var handle = Path.Combine(directory, "handle.json");
        var configs = Path.Combine(directory, "configs.json");
        File.WriteAllText(handle, $$"""
            { "locators": { "train": "{{data}}/train.csv", "validation": "{{data}}/validation.csv", "objects": "{{data}}" },
              "download_columns": ["filepath"], "fraction": 0.25, "seed": 3 }
            """);
        File.WriteAllText(configs, """
            { "user_knobs": { "model_type": "cnn", "hidden": [32, 64], "dropout": 0.1 },
              "train": { "epochs": 40, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.0005 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
        return ChildCli.Start(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", handle, "--config", configs,
            "--experiment", name, "--dir", Experiments, "--chunks", "4"]);
    }

    private static async Task<HostFile> LiveHost(ChildCli child, string experimentPath)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            if (await HostFile.FindLiveAsync(experimentPath, TimeSpan.FromSeconds(2)) is { } host) return host;
            Assert.False(child.HasExited, "the fit ended before its API came up: " + child.Output);
            Assert.True(DateTime.UtcNow < deadline, "the fit's API did not come up: " + child.Output);
            await Task.Delay(100);
        }
    }

    /// <summary>The chart's number of plotted points (all its series), as the page exposes it.</summary>
    private static async Task<int> Points(IPage page, string chart) =>
        int.Parse(await page.GetByTestId(chart).GetAttributeAsync("data-points") ?? "0");

    private static Task WaitFor(IPage page, string predicate, object? arg = null) =>
        page.WaitForFunctionAsync(predicate, arg, new() { Timeout = (float)Patience.TotalMilliseconds, PollingInterval = 100 });

    /// <summary>Fails, saying how to install it, when Debian's chromium is missing; then starts it headless.</summary>
    private static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchChromium()
    {
        Assert.True(File.Exists(Chromium),
            $"the dashboard's browser tests drive Debian's chromium at {Chromium}, which is missing: install it with " +
            "'apt-get install -y --no-install-recommends chromium' (as root); the tests never download a browser");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        SetDefaultExpectTimeout((float)Patience.TotalMilliseconds);
        var playwright = await Playwright.CreateAsync();
        try
        {
            return (playwright, await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] }));
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A page of its own, 1400×1000, whose console errors and uncaught exceptions are collected in <paramref name="errors"/>.</summary>
    private static async Task<IPage> NewPage(IBrowser browser, List<string> errors)
    {
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        page.SetDefaultTimeout((float)Patience.TotalMilliseconds);
        page.Console += (_, message) => { if (message.Type == "error") lock (errors) errors.Add(message.Text); };
        page.PageError += (_, error) => { lock (errors) errors.Add(error); };
        return page;
    }

    /// <summary>The run ids of the table's visible rows, top to bottom.</summary>
    private static Task<string[]> RowOrder(IPage page) =>
        page.Locator("[data-testid^=run-row-]:visible").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.runId)");

    [Fact]
    public async Task The_dashboard_of_an_experiment_not_running_is_a_viewer_that_copes_with_no_runs_nan_and_deleted_runs()
    {
        var folder = Path.Combine(directory, "viewed");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "experiment.log"), """
            2025-01-02T03:00:00.000Z fit of 3 runs started (MnistSpec, devices cpu, 4 chunks per epoch)
            2025-01-02T03:02:03.000Z fit ended: run 1 Stopped (user), run 2 Failed (failure), run 3 Deleted (user)

            """);
        var control = new RecordingExperimentControl(folder, "viewed") { Fitting = false };
        await using var server = await ApiServer.StartAsync(control);
        var (playwright, browser) = await LaunchChromium();
        using var _ = playwright;
        await using var __ = browser;
        var errors = new List<string>();
        var page = await NewPage(browser, errors);

        // No runs at all.
        await page.GotoAsync(server.Url + "/dashboard");
        await Expect(page.Locator("body[data-ready=true]")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("experiment-state")).ToHaveTextAsync("not running");
        await Expect(page.GetByTestId("experiment-operation")).ToContainTextAsync("last operation ended");
        await Expect(page.GetByTestId("experiment-operation")).ToContainTextAsync("after 0:02:03");
        await Expect(page.GetByTestId("runs-empty")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("train-chart")).ToHaveTextAsync("No train minibatches yet.");
        await Expect(page.GetByTestId("experiment-log")).ToContainTextAsync("fit ended: run 1 Stopped");

        // Runs arrive (through the event stream, which also serves an experiment that is not fitting): a NaN loss, a
        // failed run, a deleted one.
        var diverged = new RunState(1, ConfigWith(64, 0.001)).Apply(new RunStarted(4, true)).Apply(new ChunkCompleted(0, 0, double.NaN, [], null));
        control.Runs.AddRange([
            Ended(diverged, RunStatus.Stopped, EndReason.User),
            Ended(InSecondEpoch(2, ConfigWith(128, 0.01)), RunStatus.Failed, EndReason.Failure, new RunFailure("ComputeForward", "shape mismatch", "train", 2, 1)),
            Ended(InSecondEpoch(3, ConfigWith(32, 0.1)), RunStatus.Deleted, EndReason.User)]);
        control.Metrics[1] = new RunMetrics(1,
            [new MinibatchPoint("train", 1, 1, 1, new Dictionary<string, double> { ["loss"] = 2.5 }),
             new MinibatchPoint("train", 1, 1, 2, new Dictionary<string, double> { ["loss"] = double.NaN }),
             new MinibatchPoint("train", 1, 1, 3, new Dictionary<string, double> { ["loss"] = double.PositiveInfinity })],
            [new EpochPoint("validation", 1, new Dictionary<string, double> { ["loss"] = double.NaN, ["accuracy"] = 0.5 })]);
        control.Metrics[2] = new RunMetrics(2,
            [new MinibatchPoint("train", 1, 1, 1, new Dictionary<string, double> { ["loss"] = 2.0 }),
             new MinibatchPoint("train", 1, 1, 2, new Dictionary<string, double> { ["loss"] = 1.5 })],
            [new EpochPoint("validation", 1, new Dictionary<string, double> { ["loss"] = 0.6, ["accuracy"] = 0.8 })]);
        foreach (var run in control.Runs) control.Raise(new RunChanged(run));

        await Expect(page.Locator("[data-testid^=run-row-]:visible")).ToHaveCountAsync(2); // the deleted run is hidden
        await Expect(page.GetByTestId("run-status-1")).ToHaveTextAsync("Stopped (user)");
        await Expect(page.GetByTestId("run-status-2")).ToHaveTextAsync("Failed (failure)");
        await Expect(page.GetByTestId("run-row-1")).ToContainTextAsync("NaN");
        await Expect(page.GetByTestId("stop-run-1")).ToBeDisabledAsync();
        await Expect(page.GetByTestId("resume-run-1")).ToBeDisabledAsync(); // nothing runs to resume it
        await Expect(page.GetByTestId("clone-run-2")).ToBeDisabledAsync();
        // Only finite numbers are plotted: 2.5 for run 1, both of run 2's.
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-points", "3");
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-series", "2");
        await Expect(page.GetByTestId("val-chart")).ToHaveAttributeAsync("data-points", "1");

        await page.GetByTestId("show-deleted").CheckAsync();
        await Expect(page.Locator("[data-testid^=run-row-]:visible")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-series", "3");
        await page.GetByTestId("show-deleted").UncheckAsync();
        await Expect(page.Locator("[data-testid^=run-row-]:visible")).ToHaveCountAsync(2);

        // Sorted by a header click (again: the other way), filtered by the text box.
        await page.GetByTestId("runs-table").Locator("th", new() { HasText = "hidden" }).ClickAsync();
        Assert.Equal(["1", "2"], await RowOrder(page));
        await page.GetByTestId("runs-table").Locator("th", new() { HasText = "hidden" }).ClickAsync();
        Assert.Equal(["2", "1"], await RowOrder(page));
        await page.GetByTestId("runs-filter").FillAsync("failed 128");
        await Expect(page.Locator("[data-testid^=run-row-]:visible")).ToHaveCountAsync(1);
        Assert.Equal(["2"], await RowOrder(page));
        await page.GetByTestId("runs-filter").FillAsync("");
        await Expect(page.Locator("[data-testid^=run-row-]:visible")).ToHaveCountAsync(2);

        lock (errors) Assert.True(errors.Count == 0, "the page logged errors:\n" + string.Join("\n", errors));
    }

    [Fact]
    public async Task The_dashboard_follows_a_live_fit_and_stops_and_clones_runs_from_the_browser()
    {
        var (playwright, browser) = await LaunchChromium();
        using var _ = playwright;
        await using var __ = browser;
        using var child = StartFit("browsed");
        var host = await LiveHost(child, Path.Combine(Experiments, "browsed"));
        var errors = new List<string>();
        var page = await NewPage(browser, errors);

        await page.GotoAsync(host.Url + "/");

        // The experiment, fitting, with its two runs in the table.
        await Expect(page.GetByTestId("experiment-name")).ToHaveTextAsync("browsed");
        await Expect(page.GetByTestId("experiment-state")).ToHaveTextAsync("fitting");
        await Expect(page.GetByTestId("experiment-operation")).ToHaveTextAsync(new Regex(@"^fit · \d+:\d\d:\d\d$"));
        await Expect(page.Locator("[data-testid^=run-row-]")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("runs-table").Locator("th")).ToContainTextAsync(["run", "status", "progress", "hidden"]);

        // One line per run in the minibatch chart, and its points grow as the runs train (live, without a reload).
        await WaitFor(page, "() => { const c = document.querySelector('[data-testid=train-chart]'); return c.dataset.series === '2' && +c.dataset.points > 0; }");
        Assert.Equal(2, await page.EvaluateAsync<int>("() => window.rapidfire.charts.train.plot.series.length - 1"));
        Assert.True(await page.Locator("[data-testid=train-chart] canvas").CountAsync() > 0, "the train chart has no canvas");
        var before = await Points(page, "train-chart");
        await WaitFor(page, "n => +document.querySelector('[data-testid=train-chart]').dataset.points > n", before);
        Assert.True(await Points(page, "train-chart") > before);
        await WaitFor(page, "() => +document.querySelector('[data-testid=val-chart]').dataset.points > 0");

        // The legend hides a run in every chart, and shows it again.
        await page.GetByTestId("legend-run-2").ClickAsync();
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-visible-series", "1");
        await Expect(page.GetByTestId("val-chart")).ToHaveAttributeAsync("data-visible-series", "1");
        await page.GetByTestId("legend-run-2").ClickAsync();
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-visible-series", "2");

        // Stop run 1: the outcome is shown, and the run's status turns Stopped at its next chunk boundary.
        await page.GetByTestId("stop-run-1").ClickAsync();
        await Expect(page.GetByTestId("control-message")).ToContainTextAsync("stop run 1");
        await Expect(page.GetByTestId("run-status-1")).ToHaveTextAsync("Stopped (user)");
        await Expect(page.GetByTestId("resume-run-1")).ToBeEnabledAsync();

        // Clone run 2 with another learning rate: the dialog is prefilled with its knobs, only the change is sent.
        await page.GetByTestId("clone-run-2").ClickAsync();
        await Expect(page.GetByTestId("clone-dialog")).ToBeVisibleAsync();
        var lr = page.GetByTestId("clone-knob-optimizer.args.lr");
        await Expect(lr).ToHaveValueAsync("0.0005");
        await Expect(page.GetByTestId("clone-knob-hidden")).ToHaveValueAsync("64");
        await lr.FillAsync("0.002");
        await page.GetByTestId("clone-submit").ClickAsync();
        await Expect(page.GetByTestId("clone-dialog")).ToBeHiddenAsync();
        await Expect(page.GetByTestId("control-message")).ToContainTextAsync("clone run 2");
        await Expect(page.GetByTestId("control-message")).Not.ToHaveClassAsync(new Regex("rejected"));
        var clone = page.GetByTestId("run-row-3");
        await Expect(clone).ToBeVisibleAsync();
        await Expect(clone).ToContainTextAsync("0.002");
        await Expect(clone).ToContainTextAsync("64");
        await Expect(page.GetByTestId("ic-log").Locator("tbody tr")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("ic-log")).ToContainTextAsync("optimizer.args.lr=0.002");
        // the runs table gains a parent column once a run has one: the clone's, from the IC log
        await Expect(page.GetByTestId("run-parent-3")).ToHaveTextAsync("2");
        await Expect(page.GetByTestId("run-parent-1")).ToHaveTextAsync("");

        // The clone trains and gets its own line; then the page as a person sees it.
        await WaitFor(page, "() => window.rapidfire.charts.train.plot?.series.length === 4 && (window.rapidfire.state.metrics.get(3)?.train.size ?? 0) > 0");
        await Expect(page.GetByTestId("train-chart")).ToHaveAttributeAsync("data-series", "3");
        await page.WaitForTimeoutAsync(500); // the next redraw
        var screenshot = await page.ScreenshotAsync(new() { FullPage = true });
        var artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard.png"), screenshot);
        // The README's screenshot is this one: RAPIDFIRE_UPDATE_SCREENSHOT=1 writes it to docs/ (a plain test run leaves
        // the tracked file alone).
        if (Environment.GetEnvironmentVariable("RAPIDFIRE_UPDATE_SCREENSHOT") == "1")
            await File.WriteAllBytesAsync(Path.Combine(RepoPaths.Root, "docs", "dashboard.png"), screenshot);

        Assert.False(child.HasExited, "the fit ended before the test was done with it: " + child.Output);
        lock (errors) Assert.True(errors.Count == 0, "the page logged errors:\n" + string.Join("\n", errors));
    }
}
