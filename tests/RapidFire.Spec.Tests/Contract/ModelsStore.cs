using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Contract;

/// <summary>
/// Where a LoadModel test's model files live, so that every test runs against each kind of models locator:
/// <see cref="Local"/>, a temporary folder read by the local storage; <see cref="FakeS3"/>, an <c>s3://</c> prefix
/// served by an in-memory <see cref="IDataStorage"/> whose streams cannot seek, as an S3 download's cannot.
/// </summary>
/// <remarks>LoadModel against a real S3 server (s3rver, through the S3 data storage): <see cref="LoadModelS3Tests"/>.</remarks>
public abstract class ModelsStore : IDisposable
{
    public const string Local = "local";
    public const string FakeS3 = "fake-s3";

    /// <summary>The kinds every store-independent test runs against.</summary>
    public static TheoryData<string> Kinds => [Local, FakeS3];

    public static ModelsStore Create(string kind) => kind switch
    {
        Local => new LocalStore(),
        FakeS3 => new FakeS3Store(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The context a spec gets: the models locator and the storage that reads it.</summary>
    public abstract SpecContext Context { get; }

    /// <summary>The models locator as errors print it.</summary>
    public string LocatorText => Context.Models!.ToString();

    /// <summary>Stores <paramref name="bytes"/> under <paramref name="tag"/> (a path relative to the locator).</summary>
    public abstract void Put(string tag, byte[] bytes);

    /// <summary>Stores what <paramref name="write"/> writes under <paramref name="tag"/>.</summary>
    public void Put(string tag, Action<Stream> write)
    {
        using var buffer = new MemoryStream();
        write(buffer);
        Put(tag, buffer.ToArray());
    }

    public virtual void Dispose() { }

    private sealed class LocalStore : ModelsStore
    {
        private readonly string folder = Directory.CreateTempSubdirectory("rf-models-").FullName;

        public override SpecContext Context => new(folder);

        public override void Put(string tag, byte[] bytes)
        {
            var path = Path.Combine(folder, tag);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }

        public override void Dispose() => Directory.Delete(folder, recursive: true);
    }

    private sealed class FakeS3Store : ModelsStore, IDataStorage
    {
        private readonly Dictionary<S3Locator, byte[]> objects = [];

        public override SpecContext Context => new(new S3Locator("bucket", "models/"), this);

        public override void Put(string tag, byte[] bytes) => objects[(S3Locator)Context.Models!.Combine(tag)] = bytes;

        public Stream OpenRead(Locator file) => objects.TryGetValue((S3Locator)file, out var bytes)
            ? new ForwardOnlyStream(bytes)
            : throw new DataException(file.ToString(), null, "object not found");

        public bool FileExists(Locator file) => objects.ContainsKey((S3Locator)file);

        public string GetLocalDirectory(Locator folder) => throw new NotSupportedException();
    }

    /// <summary>A stream that reads forward only, like an HTTP response body.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream inner = new(bytes, writable: false);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
