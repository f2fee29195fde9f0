using System.CommandLine;
using RapidFire.Host.Api;

namespace RapidFire.Host.Cli;

/// <summary>
/// The options of <c>fit</c> and <c>resume</c> about what the running experiment serves and exports: its HTTP API and
/// dashboard (port, address), Parquet tables, the MLflow exporter and TensorBoard event files.
/// </summary>
internal sealed class ServingOptions
{
    private static void Port(System.CommandLine.Parsing.OptionResult result, string option)
    {
        if (result.GetValueOrDefault<int?>() is < 0 or > 65535) result.AddError($"{option} must be 0 to 65535");
    }

    public Option<int?> ApiPort { get; } = new("--api-port")
    {
        Description = "The port of the experiment's HTTP API and dashboard, which `rapidfire runs` uses (default 0: a free port).",
        Validators = { result => Port(result, "--api-port") },
    };

    public Option<int?> Dashboard { get; } = new("--dashboard")
    {
        Description = "Serve the web dashboard (always served with the API) on this port; without a port, a free one. Prints its address.",
        Arity = ArgumentArity.ZeroOrOne,
        Validators = { result => Port(result, "--dashboard") },
    };

    public Option<string?> Address { get; } = new("--api-address")
    {
        Description = "Where the API and dashboard listen (default 127.0.0.1). Any other address requires an access token: " +
                      "RAPIDFIRE_API_TOKEN, rapidfire.api.token, or one generated and printed at start.",
    };

    public Option<bool> Parquet { get; } = new("--parquet") { Description = "Also write runs.parquet and metrics/run-N.*.parquet beside the CSVs." };

    public Option<string?> Mlflow { get; } = new("--mlflow") { Description = "An MLflow tracking server to export the runs to (default: $MLFLOW_TRACKING_URI)." };

    public Option<string?> TensorBoard { get; } = new("--tensorboard")
    {
        Description = "Write TensorBoard event files of every run into DIR/<experiment>/run-N (scalars, and the knobs as hparams): `tensorboard --logdir DIR`.",
        HelpName = "DIR",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(ApiPort);
        command.Options.Add(Dashboard);
        command.Options.Add(Address);
        command.Options.Add(Parquet);
        command.Options.Add(Mlflow);
        command.Options.Add(TensorBoard);
    }

    /// <summary>The runtime settings with what these options change (Parquet tables).</summary>
    public Akka.Configuration.Config? Settings(System.CommandLine.ParseResult parse, Akka.Configuration.Config? settings) =>
        parse.GetValue(Parquet) ? Export.ParquetTables.Enable(settings) : settings;

    /// <summary>Where the server listens: the settings' <c>rapidfire.api</c>, then these options.</summary>
    public ApiServerOptions Server(System.CommandLine.ParseResult parse, Akka.Configuration.Config? settings)
    {
        // Beyond loopback with no configured token, one is generated and printed at start.
        var options = ApiServerOptions.From(settings) with { GenerateToken = true };
        var port = parse.GetValue(Dashboard) ?? parse.GetValue(ApiPort);
        if (port is { } p) options = options with { Port = p };
        if (parse.GetValue(Address) is { } address) options = options with { Address = address };
        return options;
    }

    public bool ShowDashboard(System.CommandLine.ParseResult parse) => parse.GetResult(Dashboard) is not null;
}
