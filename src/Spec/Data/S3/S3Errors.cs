using System.Net;
using Amazon.Runtime;
using Amazon.S3;

namespace RapidFire.Spec.Data.S3;

/// <summary>What went wrong with an S3 request, in words that name the bucket and key and say what to do.</summary>
public static class S3Errors
{
    /// <summary>What kind of failure an S3 error is.</summary>
    public enum Kind
    {
        /// <summary>The bucket does not exist.</summary>
        NoSuchBucket,
        /// <summary>The key does not exist (or, for a request without a body, the bucket or the key).</summary>
        NotFound,
        /// <summary>The credentials are refused or lack the permission.</summary>
        AccessDenied,
        /// <summary>No credentials were found.</summary>
        NoCredentials,
        /// <summary>The endpoint could not be reached.</summary>
        Unreachable,
        /// <summary>Anything else.</summary>
        Other,
    }

    /// <summary>Classifies an exception thrown by the S3 client.</summary>
    public static Kind Classify(Exception e) => e switch
    {
        AmazonS3Exception { ErrorCode: "NoSuchBucket" } => Kind.NoSuchBucket,
        AmazonS3Exception { ErrorCode: "NoSuchKey" } => Kind.NotFound,
        AmazonS3Exception { StatusCode: HttpStatusCode.NotFound } => Kind.NotFound,
        AmazonS3Exception { ErrorCode: "AccessDenied" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "ExpiredToken" or "InvalidToken" or "AllAccessDisabled" } => Kind.AccessDenied,
        AmazonS3Exception { StatusCode: HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized } => Kind.AccessDenied,
        AmazonServiceException => Kind.Other,
        AmazonClientException c when c.Message.Contains("credentials", StringComparison.OrdinalIgnoreCase) => Kind.NoCredentials,
        HttpRequestException or System.Net.Sockets.SocketException => Kind.Unreachable,
        AmazonClientException { InnerException: HttpRequestException or System.Net.Sockets.SocketException } => Kind.Unreachable,
        _ => Kind.Other,
    };

    /// <summary>
    /// The message for a failed request on <c>s3://bucket/key</c>: <c>bucket 'b' does not exist</c>, <c>not found</c>,
    /// <c>access denied to s3://b/k (InvalidAccessKeyId: ...)</c>, <c>cannot reach the S3 endpoint ...</c>. Never
    /// contains credentials.
    /// </summary>
    public static string Describe(Exception e, string bucket, string key, string? endpoint = null)
    {
        var where = $"s3://{bucket}/{key}";
        var code = e is AmazonS3Exception s3 && !string.IsNullOrEmpty(s3.ErrorCode) ? s3.ErrorCode : null;
        return Classify(e) switch
        {
            Kind.NoSuchBucket => $"bucket '{bucket}' does not exist ({where})",
            Kind.NotFound => $"not found: no object {where}" + (code is null or "NotFound" ? "" : $" ({code})"),
            Kind.AccessDenied => $"access denied to {where} " + code switch
            {
                "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "ExpiredToken" or "InvalidToken" =>
                    $"({code}: the credentials are wrong; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile)",
                null or "Forbidden" or "Unauthorized" => "(403 Forbidden: the credentials are refused or lack the permission)",
                _ => $"({code}: the credentials lack the permission)",
            },
            Kind.NoCredentials => $"no AWS credentials to read {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure a profile",
            Kind.Unreachable => $"cannot reach the S3 endpoint {SecretMask.MaskConnectionString(endpoint ?? "of AWS")} for {where}: {Innermost(e).Message}",
            _ => $"S3 request for {where} failed: {(code is null ? "" : code + ": ")}{e.Message}",
        };
    }

    /// <summary>Whether an exception comes from the S3 client or the network under it (so it may be described, not rethrown).</summary>
    public static bool IsS3(Exception e) => e is AmazonServiceException or AmazonClientException or HttpRequestException or System.Net.Sockets.SocketException or IOException;

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner) e = inner;
        return e;
    }
}
