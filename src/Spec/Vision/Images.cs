using StbImageSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Vision;

/// <summary>Image decoding for <c>RowPrep</c> (PNG, JPEG, BMP, GIF, TGA, PSD, HDR), in managed code.</summary>
public static class Images
{
    /// <summary>
    /// Reads an image file into a float tensor of shape [channels, height, width] with values in [0, 1]:
    /// <paramref name="channels"/> 1 is grayscale, 3 RGB, 4 RGBA. An unreadable file is an error naming it.
    /// </summary>
    public static Tensor Read(string path, int channels = 3)
    {
        var components = channels switch
        {
            1 => ColorComponents.Grey,
            2 => ColorComponents.GreyAlpha,
            3 => ColorComponents.RedGreenBlue,
            4 => ColorComponents.RedGreenBlueAlpha,
            _ => throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1, 2, 3 or 4"),
        };
        ImageResult image;
        try
        {
            image = ImageResult.FromMemory(File.ReadAllBytes(path), components);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ArgumentException)
        {
            throw new IOException($"cannot read image {path}: {e.Message}", e);
        }
        using var bytes = torch.tensor(image.Data, [image.Height, image.Width, channels], ScalarType.Byte);
        // An explicit Scalar, disposed after the call: TorchSharp's implicit float-to-Scalar conversion leaves the
        // native scalar to a finalizer that can free it while libtorch still reads it ("Unknown scalar type").
        using var scale = 255f.ToScalar();
        return bytes.permute(2, 0, 1).contiguous().to_type(ScalarType.Float32).div_(scale);
    }
}
