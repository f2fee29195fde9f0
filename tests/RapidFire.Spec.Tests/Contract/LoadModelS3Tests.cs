using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;
using RapidFire.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Contract;

/// <summary>LoadModel from a models locator on a real local S3 server (s3rver), through the S3 data storage.</summary>
public sealed class LoadModelS3Tests(S3Server s3) : IClassFixture<S3Server>, IDisposable
{
    private readonly string cache = Directory.CreateTempSubdirectory("rf-models-cache-").FullName;

    public void Dispose() => Directory.Delete(cache, recursive: true);

    [Fact]
    public async Task A_model_on_s3_loads_with_its_weights_and_a_missing_tag_names_the_tag_and_the_locator()
    {
        var bucket = await s3.CreateBucketAsync("models");
        using var linear = nn.Linear(4, 3);
        using (var buffer = new MemoryStream())
        {
            using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) linear.save(writer);
            await s3.PutAsync(bucket, "models/mnist/linear.dat", buffer.ToArray());
        }
        using var storage = new S3DataStorage(s3.Settings(cache));
        var context = new SpecContext(new S3Locator(bucket, "models/"), storage);

        var state = ModelFiles.Load("mnist/linear.dat", context);
        Assert.Equal(["weight", "bias"], state.Keys.Order().Reverse());
        Assert.True(state["weight"].allclose(linear.weight!, rtol: 0, atol: 0));
        Assert.True(state["bias"].allclose(linear.bias!, rtol: 0, atol: 0));

        var missing = Assert.Throws<SpecException>(() => ModelFiles.Load("mnist/other.dat", context));
        Assert.Contains("model tag 'mnist/other.dat'", missing.Message);
        Assert.Contains($"s3://{bucket}/models/", missing.Message);
    }
}
