using System.Net;
using System.Net.Http.Headers;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Host.Cli;
using RapidFire.Spec;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

/// <summary>The API's access token (servers bound beyond loopback, configured tokens), its Host checks there, and masked secrets in its views.</summary>
public sealed class ApiSecurityTests : IAsyncLifetime
{
    private const string Secret = "sk-live-do-not-show-1234";

    private readonly string dir = Directory.CreateTempSubdirectory("rf-api-sec-").FullName;
    private readonly RecordingExperimentControl control;
    // No cookie jar and no redirects: each test sends and reads cookies and redirects itself.
    private readonly HttpClient http = new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(10) };
    private readonly List<ApiServer> servers = [];

    public ApiSecurityTests()
    {
        control = new RecordingExperimentControl(Path.Combine(dir, "exp"));
        Directory.CreateDirectory(control.Path);
        control.Runs.Add(InSecondEpoch(1, ConfigWith(64, 0.001).With("api_key", Secret).With("data", new Dictionary<string, object?> { ["hf_token"] = Secret, ["repo"] = "org/x" })));
        control.Runs.Add(InSecondEpoch(2, ConfigWith(128, 0.001)));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var server in servers) await server.DisposeAsync();
        http.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    private async Task<ApiServer> Start(ApiServerOptions options)
    {
        var server = await ApiServer.StartAsync(control, options);
        servers.Add(server);
        return server;
    }

    /// <summary>A server on every IPv4 address, with a generated token, reached here through 127.0.0.1.</summary>
    private Task<ApiServer> StartEverywhere(IReadOnlyList<string>? allowedHosts = null) =>
        Start(new ApiServerOptions { Address = "0.0.0.0", AllowedHosts = allowedHosts ?? [], GenerateToken = true });

    private async Task<(HttpStatusCode Status, HttpResponseMessage Response, string Body)> Send(HttpMethod method, string url,
        Action<HttpRequestMessage>? prepare = null, string? body = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        prepare?.Invoke(request);
        var response = await http.SendAsync(request);
        return (response.StatusCode, response, await response.Content.ReadAsStringAsync());
    }

    private static Action<HttpRequestMessage> Bearer(string token) =>
        r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

    private static Action<HttpRequestMessage> Cookie(ApiServer server, string token) =>
        r => r.Headers.Add("Cookie", $"rapidfire_token_{new Uri(server.Url).Port}={token}");

    private static string Error(string body)
    {
        using var document = JsonDocument.Parse(body);
        return document.RootElement.GetProperty("error").GetString()!;
    }

    [Fact]
    public async Task Binding_to_every_address_without_a_token_generates_one_that_requests_must_carry()
    {
        var server = await StartEverywhere();

        Assert.True(server.TokenGenerated);
        Assert.NotNull(server.Token);
        Assert.Null(ApiToken.Problem(server.Token));
        Assert.True(server.Token.Length >= 22); // >= 128 bits of base64url
        Assert.Matches("^[A-Za-z0-9_-]+$", server.Token); // URL-safe
        Assert.StartsWith("http://127.0.0.1:", server.Url);
        Assert.Equal(server.Url.Replace("127.0.0.1", "0.0.0.0"), server.ListenUrl);
        Assert.Equal($"{server.Url}/?token={server.Token}", server.BrowserUrl);

        var (status, response, body) = await Send(HttpMethod.Get, server.Url + "/api/runs");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("needs its access token", Error(body));
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());

        (status, _, body) = await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(server.Token));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, JsonDocument.Parse(body).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task A_non_loopback_bind_with_no_token_is_refused()
    {
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => ApiServer.StartAsync(control, new ApiServerOptions { Address = "0.0.0.0" }));
        Assert.StartsWith("binding to 0.0.0.0 (not loopback) needs an access token", refused.Message);
        var overload = await Assert.ThrowsAsync<ArgumentException>(() => ApiServer.StartAsync(control, 0, "0.0.0.0"));
        Assert.Contains("needs an access token", overload.Message);
        Assert.False(File.Exists(HostFile.PathIn(control.Path)));
    }

    [Fact]
    public void Generated_tokens_are_random_256_bit_base64url()
    {
        var tokens = Enumerable.Range(0, 50).Select(_ => ApiToken.Generate()).ToList();

        Assert.Equal(50, tokens.Distinct().Count());
        Assert.All(tokens, t => Assert.Equal(43, t.Length));
        Assert.All(tokens, t => Assert.Matches("^[A-Za-z0-9_-]{43}$", t));
    }

    [Theory]
    [InlineData("GET", "/api/experiment")]
    [InlineData("GET", "/api/runs")]
    [InlineData("GET", "/api/runs/1")]
    [InlineData("GET", "/api/ic-log")]
    [InlineData("GET", "/")]
    [InlineData("GET", "/index.html")]
    [InlineData("GET", "/api/events")]
    [InlineData("GET", "/api/nothing")]
    [InlineData("POST", "/api/runs/1/stop")]
    [InlineData("POST", "/api/runs/1/delete")]
    [InlineData("POST", "/api/runs/1/clone")]
    public async Task Every_path_and_method_needs_the_token_and_nothing_reaches_the_experiment_without_it(string method, string path)
    {
        var server = await StartEverywhere();

        var (status, _, body) = await Send(new HttpMethod(method), server.Url + path, body: method == "POST" ? "{}" : null);

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Contains("access token", Error(body));
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task A_wrong_token_is_a_401_in_the_header_the_query_and_the_cookie_and_is_never_echoed()
    {
        var server = await StartEverywhere();
        const string wrong = "wrong-token-0123456789-abcdef";

        var answers = new[]
        {
            await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(wrong)),
            await Send(HttpMethod.Get, server.Url + "/api/runs", r => r.Headers.Authorization = new AuthenticationHeaderValue("Basic", wrong)),
            await Send(HttpMethod.Get, server.Url + $"/api/runs?token={wrong}"),
            await Send(HttpMethod.Get, server.Url + "/api/runs", Cookie(server, wrong)),
            await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(server.Token! + "x")),
            await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(server.Token![..^1])),
            await Send(HttpMethod.Post, server.Url + "/api/runs/1/stop", Bearer(wrong)),
        };

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.Unauthorized, a.Status));
        Assert.All(answers, a => Assert.DoesNotContain(wrong, a.Body));
        Assert.All(answers, a => Assert.DoesNotContain(server.Token!, a.Body));
        Assert.All(answers, a => Assert.Contains("invalid_token", a.Response.Headers.WwwAuthenticate.ToString()));
        Assert.All(answers, a => Assert.False(a.Response.Headers.Contains("Set-Cookie")));
        Assert.Contains("Authorization header is wrong", Error(answers[0].Body));
        Assert.Contains("must be 'Bearer <token>'", Error(answers[1].Body));
        Assert.Contains("token query parameter is wrong", Error(answers[2].Body));
        Assert.Contains("cookie is not this server's", Error(answers[3].Body));
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task A_query_token_is_served_and_sets_an_http_only_strict_cookie_that_later_requests_are_served_with()
    {
        var server = await StartEverywhere();
        var port = new Uri(server.Url).Port;

        var (status, response, _) = await Send(HttpMethod.Get, server.Url + $"/api/runs?token={server.Token}&all=true");

        Assert.Equal(HttpStatusCode.OK, status);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"rapidfire_token_{port}={server.Token};", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, server.Url + "/api/runs", Cookie(server, server.Token!))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, server.Url + "/api/runs/1/stop", Cookie(server, server.Token!))).Status);
        Assert.Single(control.Ops);
        // Another port's cookie is another server's.
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(HttpMethod.Get, server.Url + "/api/runs",
            r => r.Headers.Add("Cookie", $"rapidfire_token_{port + 1}={server.Token}"))).Status);
    }

    [Fact]
    public async Task A_configured_token_with_plus_slash_and_padding_works_through_the_query_and_the_cookie_it_sets()
    {
        const string token = "abc+def/ghi-0123456789==";
        var server = await Start(new ApiServerOptions { Token = token });

        var (status, response, _) = await Send(HttpMethod.Get, server.BrowserUrl.Replace("/?", "/api/runs?", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.OK, status);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie")).Split(';')[0]; // name=value as the browser sends it back
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, server.Url + "/api/runs", r => r.Headers.Add("Cookie", cookie))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(token))).Status);
    }

    [Theory]
    [InlineData("Sec-Fetch-Mode", "navigate")]
    [InlineData("Accept", "text/html,application/xhtml+xml")]
    public async Task A_page_loaded_with_the_token_is_redirected_to_the_same_url_without_it_with_the_cookie_set(string header, string value)
    {
        var server = await StartEverywhere();

        var (status, response, _) = await Send(HttpMethod.Get, server.Url + $"/runs/1?x=1&token={server.Token}&y=2",
            r => r.Headers.TryAddWithoutValidation(header, value));

        Assert.Equal(HttpStatusCode.SeeOther, status);
        Assert.Equal("/runs/1?x=1&y=2", response.Headers.Location?.OriginalString);
        Assert.StartsWith($"rapidfire_token_{new Uri(server.Url).Port}={server.Token};", Assert.Single(response.Headers.GetValues("Set-Cookie")));
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
    }

    [Fact]
    public async Task The_first_credential_present_decides_so_a_wrong_header_is_refused_even_with_the_right_cookie()
    {
        var server = await StartEverywhere();

        var (status, _, _) = await Send(HttpMethod.Get, server.Url + "/api/runs", r =>
        {
            Bearer("wrong-token-0123456789-abcdef")(r);
            Cookie(server, server.Token!)(r);
        });

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        // A new token in the query replaces an old cookie.
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, server.Url + $"/api/runs?token={server.Token}", Cookie(server, "old-token-0123456789-abcdef"))).Status);
    }

    [Fact]
    public async Task Loopback_with_a_configured_token_requires_it_and_without_one_requires_none()
    {
        const string token = "configured-token-0123456789";
        var locked = await Start(new ApiServerOptions { Token = token });

        Assert.False(locked.TokenGenerated);
        Assert.Equal(token, locked.Token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(HttpMethod.Get, locked.Url + "/api/runs")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, locked.Url + "/api/runs", Bearer(token))).Status);
        await locked.DisposeAsync();

        var open = await Start(new ApiServerOptions());
        Assert.Null(open.Token);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, open.Url + "/api/runs")).Status);
        Assert.False(File.Exists(ApiToken.PathIn(control.Path)));
    }

    [Theory]
    [InlineData("short")]
    [InlineData("has a space 0123456789")]
    [InlineData("semi;colon-0123456789")]
    [InlineData("quote\"0123456789abcdef")]
    [InlineData("==================")]
    public async Task A_malformed_configured_token_is_refused_without_quoting_it(string token)
    {
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => ApiServer.StartAsync(control, new ApiServerOptions { Token = token }));

        Assert.Contains("access token", refused.Message);
        Assert.DoesNotContain(token, refused.Message);
    }

    [Fact]
    public async Task A_host_name_that_is_not_an_ip_address_or_localhost_is_refused()
    {
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => ApiServer.StartAsync(control, new ApiServerOptions { Address = "example.com" }));

        Assert.Contains("'example.com'", refused.Message);
    }

    [Fact]
    public async Task An_address_that_is_not_this_machines_is_an_io_error_and_leaves_no_token_behind()
    {
        await Assert.ThrowsAnyAsync<IOException>(() => ApiServer.StartAsync(control, new ApiServerOptions { Address = "203.0.113.77", GenerateToken = true }));

        Assert.False(File.Exists(ApiToken.PathIn(control.Path)));
        Assert.False(File.Exists(HostFile.PathIn(control.Path)));
    }

    [Fact]
    public async Task The_token_is_in_an_owner_only_host_token_file_never_in_host_json_and_both_go_with_the_server()
    {
        var server = await StartEverywhere();

        var file = ApiToken.PathIn(control.Path);
        Assert.Equal(server.Token, File.ReadAllText(file));
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.DoesNotContain(server.Token!, File.ReadAllText(HostFile.PathIn(control.Path)));
        Assert.Equal(server.Url, HostFile.TryRead(control.Path)?.Url);
        Assert.Empty(Directory.GetFiles(control.Path, "*.tmp"));

        var host = await HostFile.FindLiveAsync(control.Path, TimeSpan.FromSeconds(5));
        Assert.NotNull(host);
        Assert.Equal(server.Token, host.Token);
        using (var client = new ApiClient(host.Url, token: host.Token))
            Assert.Equal("exp", (await client.ExperimentAsync()).Name);

        await server.DisposeAsync();
        Assert.False(File.Exists(file));
        Assert.False(File.Exists(HostFile.PathIn(control.Path)));
    }

    [Fact]
    public async Task The_runs_verbs_work_against_a_token_protected_host_through_host_token()
    {
        await StartEverywhere();

        var (code, output, errors) = Runs("list");
        Assert.True(code == 0, errors);
        Assert.Contains("experiment exp: fitting, 2 runs", output);

        (code, output, errors) = Runs("stop", "1");
        Assert.True(code == 0, errors);
        Assert.Contains("stop run 1: pending", output);
        Assert.Equal(Actors.Control.ControlKind.Stop, Assert.Single(control.Ops).Kind);
    }

    [Fact]
    public async Task The_runs_verbs_say_a_token_is_needed_when_host_token_is_missing()
    {
        await StartEverywhere();
        File.Delete(ApiToken.PathIn(control.Path));

        var (code, _, errors) = Runs("list");

        Assert.Equal(RunsCommand.NotRunning, code);
        Assert.Contains("needs its access token", errors);
        Assert.Contains("host.token", errors);
    }

    private (int Code, string Out, string Err) Runs(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["runs", .. args, "--experiment", "exp", "--dir", dir], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task A_server_bound_everywhere_answers_its_own_names_and_refuses_foreign_hosts_and_origins()
    {
        var server = await StartEverywhere(["gpu-box.lab.example"]);
        var port = new Uri(server.Url).Port;
        Task<HttpStatusCode> With(string header, string value) =>
            Send(HttpMethod.Get, server.Url + "/api/experiment", r =>
            {
                Bearer(server.Token!)(r);
                if (header == "Host") r.Headers.Host = value;
                else r.Headers.Add(header, value);
            }).ContinueWith(t => t.Result.Status);

        Assert.Equal(HttpStatusCode.OK, await With("Host", $"127.0.0.1:{port}"));
        Assert.Equal(HttpStatusCode.OK, await With("Host", $"localhost:{port}"));
        Assert.Equal(HttpStatusCode.OK, await With("Host", $"{Dns.GetHostName()}:{port}"));
        Assert.Equal(HttpStatusCode.OK, await With("Host", $"GPU-BOX.lab.example:{port}"));
        Assert.Equal(HttpStatusCode.Forbidden, await With("Host", "rebound.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await With("Host", $"10.255.255.1:{port}")); // an address the request did not reach
        Assert.Equal(HttpStatusCode.OK, await With("Origin", $"http://gpu-box.lab.example:{port}"));
        Assert.Equal(HttpStatusCode.Forbidden, await With("Origin", "https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await With("Origin", $"http://gpu-box.lab.example:{port + 1}"));

        // The Host check comes first: a rebound name learns nothing, not even that a token is wanted.
        var (status, _, body) = await Send(HttpMethod.Get, server.Url + "/api/runs", r => r.Headers.Host = "rebound.example");
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("'rebound.example' is not a name of this server", Error(body));
    }

    [Fact]
    public async Task A_server_bound_to_a_lan_address_is_reached_there_with_its_token()
    {
        var lan = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        if (lan is null) return; // no non-loopback IPv4 address on this machine: nothing to bind

        var server = await Start(new ApiServerOptions { Address = lan.ToString(), GenerateToken = true });

        Assert.Equal($"http://{lan}:{new Uri(server.Url).Port}", server.Url);
        Assert.Equal(server.Url, server.ListenUrl);
        Assert.True(server.TokenGenerated);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(HttpMethod.Get, server.Url + "/api/runs")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, server.Url + "/api/runs", Bearer(server.Token!))).Status);
    }

    [Fact]
    public void Options_come_from_hocon_with_the_environment_variable_winning_and_never_print_the_token()
    {
        var hocon = Akka.Configuration.ConfigurationFactory.ParseString("""
            rapidfire.api { address = "0.0.0.0", port = 8123, token = "hocon-token-0123456789", allowed-hosts = ["gpu-box.lab.example"] }
            """);

        var configured = ApiServerOptions.From(hocon, _ => null);
        Assert.Equal("0.0.0.0", configured.Address);
        Assert.Equal(8123, configured.Port);
        Assert.Equal("hocon-token-0123456789", configured.Token);
        Assert.Equal(new[] { "gpu-box.lab.example" }, configured.AllowedHosts);
        Assert.DoesNotContain("hocon-token", configured.ToString());

        Assert.Equal("env-token-0123456789ab",
            ApiServerOptions.From(hocon, name => name == ApiServerOptions.TokenVariable ? "env-token-0123456789ab" : null).Token);

        var defaults = ApiServerOptions.From(null, _ => null);
        Assert.Equal("127.0.0.1", defaults.Address);
        Assert.Equal(0, defaults.Port);
        Assert.Null(defaults.Token);
        Assert.Empty(defaults.AllowedHosts);
    }

    [Fact]
    public void Malformed_options_are_refused_naming_where_they_come_from_without_quoting_the_token()
    {
        var fromVariable = Assert.Throws<ConfigException>(() => ApiServerOptions.From(null, _ => "short-secret"));
        Assert.StartsWith($"{ApiServerOptions.TokenVariable}: the access token must be at least 16 characters", fromVariable.Message);
        Assert.DoesNotContain("short-secret", fromVariable.Message);

        var fromHocon = Assert.Throws<ConfigException>(() => ApiServerOptions.From(Akka.Configuration.ConfigurationFactory.ParseString(
            """rapidfire.api { token = "bad token with spaces", address = "gpu-box", port = 70000 }"""), _ => null));
        Assert.Equal(3, fromHocon.Problems.Count);
        Assert.Contains(fromHocon.Problems, p => p.StartsWith("rapidfire.api.token: the access token may hold only", StringComparison.Ordinal));
        Assert.Contains(fromHocon.Problems, p => p.StartsWith("rapidfire.api.address: must be an IP address", StringComparison.Ordinal));
        Assert.Contains(fromHocon.Problems, p => p.StartsWith("rapidfire.api.port: must be 0 to 65535", StringComparison.Ordinal));
        Assert.DoesNotContain("bad token", fromHocon.Message);
    }

    [Fact]
    public void A_client_takes_the_token_of_host_token_else_the_environment_variable()
    {
        Func<string, string?> environment = name => name == ApiServerOptions.TokenVariable ? "env-token-0123456789ab" : null;

        Assert.Null(ApiToken.ForClient(control.Path, _ => null));
        Assert.Equal("env-token-0123456789ab", ApiToken.ForClient(control.Path, environment));
        ApiToken.Write(control.Path, "file-token-0123456789ab");
        Assert.Equal("file-token-0123456789ab", ApiToken.ForClient(control.Path, environment));
    }

    [Fact]
    public void Tokens_match_only_when_equal()
    {
        var hash = ApiToken.Hash("the-token-0123456789");

        Assert.True(ApiToken.Matches("the-token-0123456789", hash));
        Assert.False(ApiToken.Matches("the-token-012345678", hash));
        Assert.False(ApiToken.Matches("the-token-0123456789 ", hash));
        Assert.False(ApiToken.Matches("", hash));
        Assert.False(ApiToken.Matches(null, hash));
    }

    [Fact]
    public async Task Secret_knobs_are_masked_in_the_runs_view_and_in_the_ic_log_while_the_experiment_gets_the_real_values()
    {
        var server = await Start(new ApiServerOptions());

        var (_, _, body) = await Send(HttpMethod.Get, server.Url + "/api/runs/1");
        var knobs = JsonDocument.Parse(body).RootElement.GetProperty("knobs");
        Assert.Equal("***", knobs.GetProperty("api_key").GetString());
        Assert.Equal("***", knobs.GetProperty("data.hf_token").GetString());
        Assert.Equal("org/x", knobs.GetProperty("data.repo").GetString());
        Assert.Equal(64, knobs.GetProperty("hidden").GetInt32());
        Assert.DoesNotContain(Secret, (await Send(HttpMethod.Get, server.Url + "/api/runs")).Body);

        var (status, _, _) = await Send(HttpMethod.Post, server.Url + "/api/runs/1/clone", body: JsonSerializer.Serialize(new { set = new Dictionary<string, object> { ["api_key"] = Secret, ["hidden"] = 32 } }));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(Secret, Assert.Single(control.Ops).Changes!["api_key"]);
        var log = (await Send(HttpMethod.Get, server.Url + "/api/ic-log")).Body;
        Assert.DoesNotContain(Secret, log);
        Assert.Contains("api_key=*** hidden=32", log);
    }
}
