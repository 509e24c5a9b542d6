using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Core.Filtering;
using Cnn.Dsl.IO;
using SkiaSharp;

namespace Cnn.Cli;

/// <summary><c>cnn convolve</c>: classic image filtering with true convolution (or correlation) and boundary modes.</summary>
internal static class ConvolveCommand
{
    public const string Help = """
        usage: cnn convolve --input F --kernel K --out F [options]

        Filters an image or an array with true convolution (the kernel flipped, as np.convolve and
        scipy.ndimage.convolve do), or with correlation (--correlate). This is image filtering, not the
        network's convolution.
          input   a PNG or JPEG image (turned to grey: 0.299 R + 0.587 G + 0.114 B, scaled to [0, 1]),
                  or a .npy array, 1-d or 2-d (any integer or float type)
          output  .npy (float32) or .png (grey, 2-d only)

        options:
          --input F          the image or array (required)
          --kernel K         laplacian (3x3, 8 in the centre, -1 around) | edge-h (Sobel, horizontal edges) |
                             edge-v (Sobel, vertical edges) | box (3x3 mean) | sharpen (5 in the centre, -1 at the
                             four sides) | a .npy kernel of the input's rank (required)
          --out F            the result, .npy or .png (required)
          --force            replace the output file if it exists (else an existing file is an error)
          --mode M           full (N+K-1) | same (N, centred as scipy.ndimage) | valid (N-K+1) (same)
          --boundary B       zeros | constant | reflect (d c b a|a b c d|d c b a) | nearest (a a|a b c d|d d) |
                             wrap (c d|a b c d|a b), with scipy.ndimage's meanings (zeros)
          --constant X       the value outside the input for --boundary constant (0)
          --correlate        correlation: the kernel is not flipped
          --png-scale S      how values become grey levels in a PNG: clip (to [0, 1]) | minmax (lowest black,
                             highest white) | abs (|v| / max |v|: black where flat, white on the strongest edge)
                             | auto: abs for kernels summing to 0 (laplacian, edge-h, edge-v: their sign only says
                             which side is brighter, and minmax would paint every flat area mid-grey), clip for
                             kernels summing to 1 (box, sharpen), minmax otherwise (auto)

        examples:
          cnn convolve --input photo.jpg --kernel laplacian --out edges.png
          cnn convolve --input photo.png --kernel box --boundary reflect --out blurred.png
          cnn convolve --input signal.npy --kernel k.npy --mode full --out y.npy
          cnn convolve --input image.npy --kernel edge-v --correlate --mode valid --out y.npy
        """;

    /// <summary>The named kernels, as written (convolution flips them; the Sobel pair is antisymmetric, so a flip only changes the sign).</summary>
    public static Tensor NamedKernel(string name) => name switch
    {
        "laplacian" => Tensor.FromArray([-1, -1, -1, -1, 8, -1, -1, -1, -1], 3, 3),
        "edge-h" => Tensor.FromArray([-1, -2, -1, 0, 0, 0, 1, 2, 1], 3, 3),
        "edge-v" => Tensor.FromArray([-1, 0, 1, -2, 0, 2, -1, 0, 1], 3, 3),
        "box" => Tensor.FromArray(Enumerable.Repeat(1f / 9, 9).ToArray(), 3, 3),
        "sharpen" => Tensor.FromArray([0, -1, 0, -1, 5, -1, 0, -1, 0], 3, 3),
        _ => throw new UsageException($"--kernel expects laplacian, edge-h, edge-v, box, sharpen or a .npy file; found '{name}'"),
    };

    public static Command Spec { get; } = new("convolve", Help, [Opt.Text("input"), Opt.Text("kernel"), Opt.Out(), Opt.Force(), Opt.Choice("mode", "full", "same", "valid"), Opt.Choice("boundary", "zeros", "constant", "reflect", "nearest", "wrap"), Opt.Text("constant"), Opt.Flag("correlate"), Opt.Choice("png-scale", "auto", "clip", "minmax", "abs")], Convolve);

    private static int Convolve(Args a)
    {
        var input = Command.Required(a, "input");
        var kernelSpec = Command.Required(a, "kernel");
        var output = Command.OutputFile(a, "out") ?? throw new UsageException("--out is required");
        var mode = Command.Choice(a, "mode", "same", "full", "same", "valid") switch
        {
            "full" => FilterMode.Full,
            "valid" => FilterMode.Valid,
            _ => FilterMode.Same,
        };
        var boundary = Enum.Parse<Boundary>(Command.Choice(a, "boundary", "zeros", "zeros", "constant", "reflect", "nearest", "wrap"), ignoreCase: true);
        var constantText = a.String("constant");
        float constant = 0;
        if (constantText is not null && !float.TryParse(constantText, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out constant))
            throw new UsageException($"--constant expects a number; found '{constantText}'");
        bool correlate = a.Flag("correlate");
        var scale = Command.Choice(a, "png-scale", "auto", "auto", "clip", "minmax", "abs");
        var ext = Path.GetExtension(output).ToLowerInvariant();
        if (ext is not (".npy" or ".png")) throw new UsageException($"--out must end in .npy or .png; found '{output}'");
        var kernel = kernelSpec.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? Npy.ReadTensor(kernelSpec) : NamedKernel(kernelSpec);

        var x = input.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? Npy.ReadTensor(input) : ReadGrey(input);
        if (x.Shape.Rank != kernel.Shape.Rank)
            throw new CnnException($"The input '{input}' is {x.Shape.Rank}-d {x.Shape} but the kernel '{kernelSpec}' is {kernel.Shape.Rank}-d {kernel.Shape}; they must have the same rank.");
        var y = correlate ? ImageFilter.Correlate(x, kernel, mode, boundary, constant) : ImageFilter.Convolve(x, kernel, mode, boundary, constant);
        if (ext == ".npy")
        {
            Npy.Write(output, y);
        }
        else
        {
            if (y.Shape.Rank != 2) throw new CnnException($"A {y.Shape.Rank}-d result {y.Shape} cannot be a picture; write it as .npy.");
            if (scale == "auto") scale = AutoScale(kernel);
            Png.Save(output, Grey(y, scale));
        }
        Console.WriteLine($"{(correlate ? "correlated" : "convolved")} {input} {x.Shape} with {kernelSpec} {kernel.Shape} ({mode.ToString().ToLowerInvariant()}, {boundary.ToString().ToLowerInvariant()}) -> {output} {y.Shape}");
        return 0;
    }

    /// <summary>
    /// The grey scale <c>--png-scale auto</c> picks: an edge detector (a kernel summing to 0) answers 0 on a flat area
    /// and +-v on the two kinds of edge, so |v| draws every edge white on black; a smoothing kernel (summing to 1) keeps
    /// the image's [0, 1] range; anything else is stretched from its least to its greatest value.
    /// </summary>
    public static string AutoScale(Tensor kernel)
    {
        float sum = 0, size = 0;
        foreach (var k in kernel.Span) (sum, size) = (sum + k, size + Math.Abs(k));
        float tolerance = 1e-4f * Math.Max(1, size);
        return Math.Abs(sum) <= tolerance ? "abs" : Math.Abs(sum - 1) <= tolerance ? "clip" : "minmax";
    }

    /// <summary>Decodes a PNG or JPEG (SkiaSharp) to <c>[H, W]</c> grey values in [0, 1] (ITU-R BT.601 luma).</summary>
    /// <exception cref="Core.FormatException">The file is not an image SkiaSharp can decode.</exception>
    public static Tensor ReadGrey(string path)
    {
        if (!File.Exists(path)) throw new CnnException($"Cannot read the image '{path}': no such file.");
        using var bitmap = Pictures.ImageInput.Decode(path);
        int w = bitmap.Width, h = bitmap.Height;
        var d = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var c = bitmap.GetPixel(x, y);
                d[y * w + x] = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
            }
        return Tensor.Own(d, new Shape(h, w));
    }

    /// <summary>A 2-d array as a grey picture under a scaling rule.</summary>
    public static Raster Grey(Tensor y, string scale)
    {
        int h = y.Shape[0], w = y.Shape[1];
        float[] v = scale switch
        {
            "minmax" => TileGrid.Stretch(y.Span),
            "abs" => Abs(y.Span),
            _ => y.ToArray(),
        };
        var r = new Raster(w, h, (0, 0, 0));
        for (int i = 0; i < v.Length; i++) r[i % w, i / w] = Raster.Grey(v[i]);
        return r;
    }

    private static float[] Abs(ReadOnlySpan<float> v)
    {
        float max = 0;
        foreach (var x in v) if (float.IsFinite(x)) max = Math.Max(max, Math.Abs(x));
        var r = new float[v.Length];
        for (int i = 0; i < r.Length; i++) r[i] = max > 0 ? Math.Abs(v[i]) / max : 0;
        return r;
    }
}
