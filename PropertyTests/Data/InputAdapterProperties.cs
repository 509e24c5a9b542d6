using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using TorchSharp;
using Xunit;
using static Cnn.Tests.Kernels.TorchReference;

namespace Cnn.Tests.Data;

/// <summary>
/// <see cref="InputAdapter"/> against LibTorch: the images fitted to a network's input are torch's
/// <c>interpolate(mode="bilinear", align_corners=False)</c> to the network's size, then (for grey images and a network of
/// C channels) <c>expand(N, C, H, W)</c>; labels and classes unchanged. Sizes go down and up, to 1 and from 1.
/// </summary>
public sealed class InputAdapterProperties
{
    private static readonly Arbitrary<(int N, int C, int H, int W, int Channels, int Height, int Width, int Seed)> Cases =
        (from n in Gen.Choose(1, 3)
         from c in Gen.Elements(1, 3)
         from h in Gen.Choose(1, 9)
         from w in Gen.Choose(1, 9)
         from channels in c == 1 ? Gen.Elements(1, 3, 4) : Gen.Constant(c)
         from height in Gen.Choose(1, 17)
         from width in Gen.Choose(1, 17)
         from seed in Gen.Choose(0, 1_000_000_000)
         select (n, c, h, w, channels, height, width, seed)).ToArbitrary();

    /// <summary>
    /// Tolerance 5e-6 absolute on values in [-1, 1]: both blend at most four pixels with weights in [0, 1], but torch forms
    /// the source coordinate as <c>(in / out) * (dst + 0.5) - 0.5</c> and this as <c>(dst + 0.5) * in / out - 0.5</c>, which round
    /// differently: each coordinate (up to 17) is off by up to half an ulp (1e-6), and a weight's error times the step between
    /// neighbouring pixels (up to 2), on two axes, bounds the difference by about 4e-6 (measured up to 1.2e-6).
    /// </summary>
    [CnnProperty]
    public Property Fitted_images_are_torchs_bilinear_resize_with_the_grey_channel_replicated() => Prop.ForAll(Cases, c => Scoped(() =>
    {
        var rng = new Random(c.Seed);
        var images = RandomTensor(rng, 1f, c.N, c.C, c.H, c.W);
        var labels = Enumerable.Range(0, c.N).Select(i => rng.Next(5)).ToArray();
        var fitted = InputAdapter.Fit(new LabeledData(images, labels, 5), new Shape(c.Channels, c.Height, c.Width));
        var expected = torch.nn.functional.interpolate(T(images), [c.Height, c.Width], mode: torch.InterpolationMode.Bilinear, align_corners: false)
            .expand(c.N, c.Channels, c.Height, c.Width).contiguous();
        Assert.Equal(new Shape(c.N, c.Channels, c.Height, c.Width), fitted.Images.Shape);
        Close(fitted.Images, expected, 5e-6, 0, "fitted images");
        Assert.Equal(labels, fitted.Labels);
        Assert.Equal(5, fitted.Classes);
    }));

    [Fact]
    public void Images_that_cannot_feed_the_network_are_an_error_saying_what_it_takes()
    {
        var rgb = new LabeledData(Tensor.Zeros(2, 3, 4, 4), [0, 1], 2);
        Assert.Contains("images of 3 channels cannot feed a network taking 1 (only 1 channel is replicated)",
            Assert.Throws<CnnException>(() => InputAdapter.Fit(rgb, new Shape(1, 4, 4))).Message);
        Assert.Contains("the images are [3, 4, 4], the network takes [48]",
            Assert.Throws<CnnException>(() => InputAdapter.Fit(rgb, new Shape(48))).Message);
        Assert.Same(rgb, InputAdapter.Fit(rgb, new Shape(3, 4, 4)));
    }
}
