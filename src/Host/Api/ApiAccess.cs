using System.Net;
using Microsoft.AspNetCore.Http;

namespace RapidFire.Host.Api;

/// <summary>
/// Who may use an <see cref="ApiServer"/>: the middleware in front of every endpoint, page, static file and event
/// stream. It refuses (403) a request whose <c>Host</c> is not a name of this server (DNS rebinding) or whose
/// <c>Origin</c> is another web origin, then, when the server has an access token, (401) a request that does not carry
/// it.
/// </summary>
/// <remarks>
/// <para>The token is read from, in this order: the <c>Authorization: Bearer TOKEN</c> header; the <c>token</c> query
/// parameter (a browser's first page load: the answer sets the cookie, and a page navigation is redirected (303) to the
/// same URL without the token, so it leaves the address bar and the history); the cookie
/// <c>rapidfire_token_PORT</c> (HttpOnly, SameSite=Strict, path /; named by port because cookies are shared between the
/// ports of a host), which the page's own <c>fetch</c> and <c>EventSource</c> calls send. The first one present
/// decides: a wrong header is refused even with a right cookie. The comparison is in constant time, and no answer
/// quotes a token.</para>
/// <para>Own hosts: loopback names (always: an SSH tunnel arrives as localhost), the IP address the request reached,
/// and for a server bound elsewhere than loopback the machine's host name and <see cref="ApiServerOptions.AllowedHosts"/>.</para>
/// </remarks>
internal sealed class ApiAccess
{
    /// <summary>The cookie's name before the port.</summary>
    public const string CookiePrefix = "rapidfire_token_";

    private readonly byte[]? tokenHash;
    private readonly bool loopbackOnly;
    private readonly HashSet<string> hostNames = new(StringComparer.OrdinalIgnoreCase);

    public ApiAccess(string? token, bool loopbackOnly, IEnumerable<string> allowedHosts)
    {
        tokenHash = token is null ? null : ApiToken.Hash(token);
        this.loopbackOnly = loopbackOnly;
        if (loopbackOnly) return;
        foreach (var host in allowedHosts) hostNames.Add(host.Trim().TrimEnd('.'));
        var machine = Dns.GetHostName();
        hostNames.Add(machine);
        if (machine.IndexOf('.', StringComparison.Ordinal) is > 0 and var dot) hostNames.Add(machine[..dot]);
    }

    /// <summary>The middleware.</summary>
    public async Task Check(HttpContext http, RequestDelegate next)
    {
        if (!IsOwnHost(http, http.Request.Host.Host))
        {
            await Refuse(http, StatusCodes.Status403Forbidden, loopbackOnly
                ? $"the Host header '{http.Request.Host}' is not a loopback host"
                : $"the Host header '{http.Request.Host}' is not a name of this server (a loopback name, the address it was reached at, " +
                  "the machine's host name, or one of rapidfire.api.allowed-hosts)");
            return;
        }
        if (http.Request.Headers.Origin.Count > 0)
        {
            var origin = http.Request.Headers.Origin.ToString();
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || !IsOwnHost(http, uri.Host) ||
                uri.Port != http.Connection.LocalPort)
            {
                await Refuse(http, StatusCodes.Status403Forbidden,
                    $"requests from the web origin '{origin}' are refused: the API answers its own origin and non-browser clients only");
                return;
            }
        }
        if (tokenHash is null || await HasToken(http)) await next(http);
    }

    /// <summary>Whether the request carries the token; if not, the 401 has been answered. A query token sets the cookie.</summary>
    private async Task<bool> HasToken(HttpContext http)
    {
        var request = http.Request;
        var cookie = CookiePrefix + http.Connection.LocalPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string? presented;
        string where;
        if (request.Headers.Authorization.Count > 0)
        {
            var header = request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                return await Unauthorized(http, "the Authorization header must be 'Bearer <token>'", invalid: true);
            (presented, where) = (header["Bearer ".Length..].Trim(), "Authorization header");
        }
        else if (request.Query.TryGetValue("token", out var query)) (presented, where) = (query.ToString(), "token query parameter");
        else if (request.Cookies.TryGetValue(cookie, out var value)) (presented, where) = (value, "cookie");
        else
            return await Unauthorized(http,
                "this server needs its access token: send the header 'Authorization: Bearer <token>', or open the page once with " +
                "?token=<token> (it was printed when the server started; the rapidfire CLI reads it from the experiment's host.token " +
                $"or {ApiServerOptions.TokenVariable})", invalid: false);

        if (!ApiToken.Matches(presented, tokenHash!))
            return await Unauthorized(http, where == "cookie"
                ? "the access token in this browser's cookie is not this server's (one of an earlier server?): open the page with ?token=<token>"
                : $"the access token in the {where} is wrong", invalid: true);

        if (where == "token query parameter")
        {
            http.Response.Cookies.Append(cookie, presented, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Path = "/",
                Secure = request.IsHttps,
                IsEssential = true,
            });
            if (IsPageNavigation(request))
            {
                // The token leaves the address bar, the history and any Referer; the cookie carries it from here on.
                var rest = request.Query.Where(p => p.Key != "token").ToList();
                http.Response.Headers.Location = $"{request.PathBase}{request.Path}{QueryString.Create(rest)}";
                http.Response.Headers.CacheControl = "no-store";
                http.Response.Headers["Referrer-Policy"] = "no-referrer";
                http.Response.StatusCode = StatusCodes.Status303SeeOther;
                return false;
            }
        }
        return true;
    }

    /// <summary>A browser loading a page (rather than a script's fetch, or a client such as curl or the CLI).</summary>
    private static bool IsPageNavigation(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) &&
        (request.Headers["Sec-Fetch-Mode"].ToString() == "navigate" ||
         (request.Headers["Sec-Fetch-Mode"].Count == 0 && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase)));

    private static async Task<bool> Unauthorized(HttpContext http, string message, bool invalid)
    {
        http.Response.Headers.WWWAuthenticate = invalid ? "Bearer realm=\"rapidfire\", error=\"invalid_token\"" : "Bearer realm=\"rapidfire\"";
        await Refuse(http, StatusCodes.Status401Unauthorized, message);
        return false;
    }

    private static Task Refuse(HttpContext http, int status, string message) =>
        Results.Json(new ErrorView(message), ApiJson.Options, statusCode: status).ExecuteAsync(http);

    private bool IsOwnHost(HttpContext http, string host)
    {
        if (IsLoopbackHost(host)) return true;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var ip))
            return http.Connection.LocalIpAddress is { } local && Normal(ip).Equals(Normal(local));
        return !loopbackOnly && hostNames.Contains(host.TrimEnd('.'));
    }

    private static IPAddress Normal(IPAddress ip) => ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;

    /// <summary>localhost, or a loopback IP address (<c>127.0.0.1</c>, <c>[::1]</c>).</summary>
    public static bool IsLoopbackHost(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ||
        (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
