using System.Net.Http.Json;
using System.Text.Json;
using RapidFire.Host.Api;
using RapidFire.Host.Cli;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Tests;

/// <summary>`rapidfire dashboard`: the dashboard of a finished experiment, served from its journal until cancelled.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class DashboardCommandTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public void Dispose() => mnist.Dispose();

    private string Experiments => Path.Combine(mnist.Directory, "experiments");

    [Fact]
    public async Task A_finished_experiment_is_served_from_its_journal_until_cancelled()
    {
        using (var experiment = new Experiment("done", Experiments))
        {
            await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            experiment.End();
        }
        var folder = Path.Combine(Experiments, "done");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var stop = new CancellationTokenSource();

        var serving = DashboardCommand.ServeAsync("done", Experiments, 0, stdout, stderr, stop.Token);
        HostFile? host = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(60); host is null; await Task.Delay(50))
        {
            Assert.False(serving.IsCompleted, stderr.ToString());
            Assert.True(DateTime.UtcNow < deadline, "the dashboard did not come up");
            host = await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(2));
        }
        using var http = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromSeconds(10) };

        var status = await http.GetFromJsonAsync<JsonElement>("/api/status");
        Assert.False(status.GetProperty("fitting").GetBoolean());
        Assert.StartsWith("fit ended: run 1 Completed", status.GetProperty("summary").GetString());
        var runs = await http.GetFromJsonAsync<JsonElement>("/api/runs");
        Assert.Equal(["completed", "completed"], runs.EnumerateArray().Select(r => r.GetProperty("status").GetString()));
        var metrics = await http.GetFromJsonAsync<JsonElement>("/api/runs/2/metrics");
        Assert.Equal(10, metrics.GetProperty("minibatches").EnumerateArray().Count(p => p.GetProperty("mode").GetString() == "train"));
        Assert.Equal(["train", "validation"], metrics.GetProperty("epochs").EnumerateArray().Select(p => p.GetProperty("mode").GetString()).Order());
        Assert.Contains("data-testid=\"runs-table\"", await http.GetStringAsync("/"));

        stop.Cancel();
        Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"dashboard: {host.Url}/", stdout.ToString());
        Assert.False(File.Exists(HostFile.PathIn(folder)));
    }

    [Fact]
    public async Task An_experiment_that_does_not_exist_is_exit_code_2()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await DashboardCommand.ServeAsync("missing", Experiments, 0, stdout, stderr, CancellationToken.None);

        Assert.Equal(DashboardCommand.CouldNotServe, code);
        Assert.Contains("there is no experiment missing", stderr.ToString());
    }
}
