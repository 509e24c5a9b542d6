using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Tests.PyTorch;
using Xunit;

namespace Cnn.Tests.Data;

/// <summary>
/// The transforms torchvision has too, against <c>torchvision.transforms.functional</c> on random images of random
/// sizes: brightness, contrast (1 and 3 channels), vertical flip, rotation and translation with bilinear sampling.
/// </summary>
public sealed class AugmentTorchvisionTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-augment-tv");

    public void Dispose() => _dir.Delete(true);

    private const string Script = """
import sys, os, numpy as np, torch, torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode as I
folder = sys.argv[1]
for case in sorted(os.listdir(folder)):
    d = os.path.join(folder, case)
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    b, c, angle, dx, dy = [float(v) for v in open(os.path.join(d, "args.txt")).read().split()]
    out = {
        "brightness": TF.adjust_brightness(x, b),
        "contrast": TF.adjust_contrast(x, c),
        "contrast1": TF.adjust_contrast(x[:1], c),
        "vflip": TF.vflip(x),
        "rotate": TF.rotate(x, angle, interpolation=I.BILINEAR),
        "translate": TF.affine(x, angle=0.0, translate=[int(dx), int(dy)], scale=1.0, shear=[0.0], interpolation=I.BILINEAR),
    }
    for k, v in out.items(): np.save(os.path.join(d, k + ".npy"), v.numpy())
""";

    [PyTorchFact]
    public void BrightnessContrastFlipRotationAndTranslationEqualTorchvisions()
    {
        var python = PythonTorch.Require();
        var rng = new Random(2026);
        var cases = new List<(string Dir, Tensor X, float B, float C, float Angle, int Dx, int Dy)>();
        for (int i = 0; i < 12; i++)
        {
            int h = rng.Next(2, 20), w = rng.Next(2, 20);
            var x = Tensor.FromArray(Enumerable.Range(0, 3 * h * w).Select(_ => (float)rng.NextDouble()).ToArray(), 3, h, w);
            var c = (Path.Combine(_dir.FullName, "cases", $"case{i:D2}"), x, (float)(rng.NextDouble() * 2), (float)(rng.NextDouble() * 2),
                (float)(rng.NextDouble() * 360 - 180), rng.Next(-3, 4), rng.Next(-3, 4));
            Directory.CreateDirectory(c.Item1);
            Npy.Write(Path.Combine(c.Item1, "x.npy"), x);
            File.WriteAllText(Path.Combine(c.Item1, "args.txt"), FormattableString.Invariant($"{c.Item3:R} {c.Item4:R} {c.Item5:R} {c.Item6} {c.Item7}"));
            cases.Add(c);
        }
        var script = Path.Combine(_dir.FullName, "tv.py");
        File.WriteAllText(script, Script);
        var run = PythonTorch.Run(python, [script, Path.Combine(_dir.FullName, "cases")], null, TimeSpan.FromMinutes(5));
        Assert.True(run.Code == 0, run.Output);
        foreach (var c in cases)
        {
            Tensor Theirs(string name) => Npy.ReadTensor(Path.Combine(c.Dir, name + ".npy"));
            var grey = Tensor.FromArray(c.X.ToArray()[..(c.X.Size / 3)], 1, c.X.Shape[1], c.X.Shape[2]);
            // Element-wise products are the same float32 operations as torch's; the grey mean is summed in another order
            // (1e-6); bilinear weights are computed in double here and in float32 by grid_sample (1e-5).
            Assert.Equal(0, PythonTorch.MaxDifference(Augment.Brightness(c.X, c.B), Theirs("brightness")));
            Assert.InRange(PythonTorch.MaxDifference(Augment.Contrast(c.X, c.C), Theirs("contrast")), 0, 1e-6);
            Assert.InRange(PythonTorch.MaxDifference(Augment.Contrast(grey, c.C), Theirs("contrast1")), 0, 1e-6);
            Assert.Equal(0, PythonTorch.MaxDifference(Augment.FlipVertical(c.X), Theirs("vflip")));
            Assert.InRange(PythonTorch.MaxDifference(Augment.Rotate(c.X, c.Angle), Theirs("rotate")), 0, 1e-5);
            Assert.InRange(PythonTorch.MaxDifference(Augment.Shift(c.X, c.Dx, c.Dy), Theirs("translate")), 0, 1e-5);
        }
    }
}
