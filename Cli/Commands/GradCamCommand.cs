using System.Globalization;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using SkiaSharp;

namespace Cnn.Cli;

/// <summary><c>cnn gradcam</c>: the Grad-CAM class-activation map of an input, overlaid on it as a PNG.</summary>
internal static class GradCamCommand
{
    public static readonly string Help = $"""
        usage: cnn gradcam [options]

        Grad-CAM: which parts of an input a layer's evidence for a class comes from. The layer's channels are
        weighted by the spatial mean of d(class score)/d(activation); the map is the ReLU of the weighted sum,
        upsampled bilinearly to the input size and scaled to [0, 1]. Writes one PNG of three panels: the input,
        the map (blue 0 to red 1) and the map overlaid on the input, titled with the class, its probability and
        the layer, with a colour bar; prints the class, its score, its probability and the layer.

        options:
          --checkpoint F     a checkpoint of `cnn train` or `cnn run` (its network, weights and normalisation)
          --model NAME       a zoo network (simple-convnet), freshly initialised with --seed, when no checkpoint; one of:
                             {Command.ZooNames(21)}
          --seed N           initialisation of --model, and the split of --data mnist (the checkpoint's seed, else 1)
          --input F          the input: a .npy array [C, H, W] or [1, C, H, W], or a .png/.jpg image (resized,
                             grey for one channel), scaled to [0, 1]
          --data SPEC        else a validation example of: {DataSource.Help} (mnist)
          --index K          which validation example (0)
          --layer PATH       the layer (default: the last with [C, H, W] output); `cnn summary` lists the paths
          --class K          the class to explain (default: the predicted one)
          --out F            the picture (gradcam.png)
          --force            replace the output file if it exists (else an existing file is an error)

        examples:
          cnn gradcam --checkpoint runs/first/checkpoint.safetensors --index 7
          cnn gradcam --checkpoint runs/first/checkpoint.safetensors --layer relu1 --class 3 --out cam3.png
          cnn gradcam --checkpoint runs/lenet/checkpoint.safetensors --input digit.png
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Pixels of the picture's panels per input pixel, at least.</summary>
    private const int PanelSide = 224;

    public static Command Spec { get; } = new("gradcam", Help, [Opt.Checkpoint(), Opt.Model(), Opt.Seed(), Opt.Text("input"), Opt.Data(), Opt.Int("index", 0, int.MaxValue), Opt.Text("layer"), Opt.Int("class", 0, int.MaxValue), Opt.Out(), Opt.Force()], Cam);

    private static int Cam(Args a)
    {
        var model = Model.FromArgs(a);
        var input = a.String("input");
        var dataSpec = a.String("data");
        int index = a.Int("index", 0, 0);
        // The split of --data mnist is the one the checkpoint was trained with, unless --seed says otherwise.
        int seed = a.Int("seed", int.TryParse(model.Metadata.GetValueOrDefault("seed"), NumberStyles.Integer, Inv, out var trained) ? trained : 1);
        var layer = a.String("layer");
        int? cls = a.String("class") is null ? null : a.Int("class", 0, 0);
        var outPath = Command.OutputFile(a, "out", "gradcam.png")!;
        if (input is not null && dataSpec is not null) throw new UsageException("give --input or --data, not both");
        if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new UsageException("--out must end in .png");
        var net = model.Network;
        if (net.InputShape.Rank != 3) throw new CnnException($"Grad-CAM needs image inputs [C, H, W]; network '{model.Name}' takes {net.InputShape}.");

        Tensor x;
        string what;
        if (input is not null)
        {
            x = Path.GetExtension(input).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" ? Image(input, net.InputShape) : TensorFiles.Input(input, net);
            if (x.Shape[0] != 1) x = x.Slice(0, 1);
            what = input;
        }
        else
        {
            dataSpec ??= model.Metadata.GetValueOrDefault("data") ?? "mnist";
            var data = DataSource.Load(dataSpec, seed, null, net.InputShape).Validation;
            if (index >= data.Count) throw new CnnException($"--index {index}: the validation set of '{dataSpec}' has {data.Count} examples.");
            x = data.Images.Slice(index, 1);
            what = string.Create(Inv, $"validation example {index} of {dataSpec} (label {data.Labels[index]})");
        }
        var fed = model.Normalization?.Apply(x) ?? x;
        if (cls >= net.OutputShape[0]) throw new CnnException($"--class {cls}: the network has {net.OutputShape[0]} classes.");
        var cam = GradCam.Compute(net, model.Parameters, fed, layer, cls is int c ? [c] : null, model.State);
        var probabilities = Core.Kernels.Activations.Softmax(Apply.Forward(net, model.Parameters, fed, Mode.Eval, model.State), 1);
        var names = model.Metadata.GetValueOrDefault("classes")?.Split(',') ?? [];
        string className = PictureSet.ClassName(names, cam.Classes[0]), layerShape = net.Leaves.First(l => l.Path == cam.Layer).Output.ToString();
        string probability = probabilities[cam.Classes[0]].ToString("F3", Inv);
        using (var figure = Draw(x, cam.Maps, Title(className, cls is null, probability, $"{cam.Layer} {layerShape}", what)))
            figure.Save(outPath);
        Console.WriteLine($"input: {what}");
        Console.WriteLine(string.Create(Inv, $"class {cam.Classes[0]}{(cls is null ? " (predicted)" : "")}: score {cam.Scores[0]:F3}, probability {probability}; layer {cam.Layer} {layerShape}"));
        Console.WriteLine($"picture: {outPath}");
        return 0;
    }

    /// <summary>One image file as a <c>[1, C, H, W]</c> batch in [0, 1]: resized bilinearly, grey (0.299 R + 0.587 G + 0.114 B) for one channel.</summary>
    private static Tensor Image(string path, Shape input)
    {
        int channels = input[0], height = input[1], width = input[2];
        if (channels is not (1 or 3)) throw new CnnException($"An image gives 1 (grey) or 3 (RGB) channels; the network takes {channels}.");
        using var decoded = Pictures.ImageInput.Decode(path);
        using var rgba = decoded.Copy(SKColorType.Rgba8888) ?? throw new Core.FormatException($"'{path}' cannot be converted to RGB.");
        using var sized = rgba.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul), new SKSamplingOptions(SKFilterMode.Linear));
        int plane = height * width;
        var px = new float[channels * plane];
        for (int y = 0; y < height; y++)
            for (int xx = 0; xx < width; xx++)
            {
                var col = sized.GetPixel(xx, y);
                int k = y * width + xx;
                if (channels == 1) px[k] = (0.299f * col.Red + 0.587f * col.Green + 0.114f * col.Blue) / 255f;
                else (px[k], px[plane + k], px[2 * plane + k]) = (col.Red / 255f, col.Green / 255f, col.Blue / 255f);
            }
        return Tensor.Own(px, new Shape(1, channels, height, width));
    }

    /// <summary>The strip above the panels that holds their captions.</summary>
    internal const int CaptionStrip = 18;

    /// <summary>The gap around and between the panels.</summary>
    internal const int Gap = 8;

    /// <summary>
    /// Three panels side by side under a strip for their captions: the input (stretched to [0, 1]), the map in the
    /// jet colours, and the map over the input (half and half); each magnified to at least <see cref="PanelSide"/> pixels.
    /// </summary>
    internal static Raster Picture(Tensor x, Tensor maps)
    {
        int c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], scale = PanelScale(h, w);
        var raster = new Raster(3 * w * scale + 4 * Gap, CaptionStrip + h * scale + Gap, (255, 255, 255));
        var s = x.Span;
        var (lo, hi) = TileGrid.Range(s[..(c * h * w)]);
        float Stretch(float v) => hi > lo ? (v - lo) / (hi - lo) : 0f;
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++)
            {
                int k = y * w + xx;
                (float R, float G, float B) image = c == 3 ? (Stretch(s[k]), Stretch(s[h * w + k]), Stretch(s[2 * h * w + k])) : (Stretch(s[k]), Stretch(s[k]), Stretch(s[k]));
                var heat = Jet(maps[k]);
                var over = (0.5f * image.R + 0.5f * heat.R, 0.5f * image.G + 0.5f * heat.G, 0.5f * image.B + 0.5f * heat.B);
                var panels = new[] { image, heat, over };
                for (int p = 0; p < 3; p++)
                    raster.Fill(Gap + p * (w * scale + Gap) + xx * scale, CaptionStrip + y * scale, scale, scale, (Raster.Byte(panels[p].Item1), Raster.Byte(panels[p].Item2), Raster.Byte(panels[p].Item3)));
            }
        return raster;
    }

    /// <summary>The picture's title: the class and its probability, the layer with its output shape, the input.</summary>
    internal static IReadOnlyList<string> Title(string className, bool predicted, string probability, string layer, string input) =>
    [
        $"Grad-CAM: class {className}{(predicted ? " (predicted)" : "")}, probability {probability}",
        $"layer {layer}; input: {input}",
        "red: where the layer's evidence for the class is strongest (the map scaled to its maximum)",
    ];

    /// <summary>The picture with its title, the panels' captions and the map's colour bar (0 to 1, the map's maximum).</summary>
    internal static Drawing Draw(Tensor x, Tensor maps, IReadOnlyList<string> title)
    {
        int h = x.Shape[2], w = x.Shape[3], panel = w * PanelScale(h, w);
        var captions = new[] { "input", "Grad-CAM map", "overlay" }
            .Select((text, p) => (text, Gap + p * (panel + Gap) + panel / 2f, CaptionStrip - 5f)).ToList();
        var scale = new ColourScale(v => { var (r, g, b) = Jet(v); return (Raster.Byte(r), Raster.Byte(g), Raster.Byte(b)); }, "0", "1 (max)", "map");
        return Figure.Around(Picture(x, maps), title, scale, captions);
    }

    private static int PanelScale(int h, int w) => Math.Max(1, (PanelSide + Math.Max(h, w) - 1) / Math.Max(h, w));

    /// <summary>The jet colour map: blue at 0, cyan, yellow, red at 1.</summary>
    internal static (float R, float G, float B) Jet(float v)
    {
        v = Math.Clamp(v, 0f, 1f);
        static float Ramp(float t) => Math.Clamp(1.5f - Math.Abs(t), 0f, 1f);
        return (Ramp(4 * v - 3), Ramp(4 * v - 2), Ramp(4 * v - 1));
    }
}

