using System.CommandLine;
using RapidFire.Actors.Storage;
using RapidFire.Spec.Data.S3;

namespace RapidFire.Host.Cli;

/// <summary>
/// The <c>--s3-endpoint</c> option of the verbs that read data handles (<c>validate</c>, <c>fit</c>, <c>resume</c>, and
/// any other verb that adds it): an S3-compatible server for <c>s3://</c> locators, over <c>rapidfire.s3.endpoint</c>
/// and the environment's <c>AWS_ENDPOINT_URL_S3</c> / <c>AWS_ENDPOINT_URL</c>.
/// </summary>
public static class S3Options
{
    /// <summary>A new <c>--s3-endpoint</c> option.</summary>
    public static Option<string?> Endpoint() => new("--s3-endpoint")
    {
        Description = "The S3 endpoint for s3:// locators and checkpoints (an S3-compatible server, e.g. http://127.0.0.1:9000; " +
                      "default: rapidfire.s3.endpoint, then $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL, then AWS). " +
                      "Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or the AWS profile.",
    };

    /// <summary>The settings with the option's endpoint, when given, over <paramref name="settings"/>.</summary>
    public static Akka.Configuration.Config? Apply(ParseResult parse, Option<string?> endpoint, Akka.Configuration.Config? settings) =>
        parse.GetValue(endpoint) is { Length: > 0 } url ? StorageSettings.WithEndpoint(settings, url) : settings;

    /// <summary>The data storage the settings describe (local files and S3), for checking inputs before an experiment opens.</summary>
    /// <exception cref="Spec.ConfigException">A <c>rapidfire.s3</c> setting is invalid.</exception>
    public static S3DataStorage Storage(Akka.Configuration.Config? settings) => new(StorageSettings.From(settings).S3);
}
