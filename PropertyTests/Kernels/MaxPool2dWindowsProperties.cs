using Cnn.Core;
using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// <see cref="MaxPool2dKernel.Forward(Tensor, Window2d, bool)"/>'s vector windows (16 a step on zmm, 8 on ymm) against a
/// direct loop of the documented rule, values and winners: the first maximum in row-major window order wins, a NaN beats a
/// number, padding never wins. Rows of 1-40 output columns (partial and whole vector steps, the row's edges that the
/// scalar loop takes), horizontal strides 1-3, data with ties, signed zeros, infinities and NaNs of several payloads; on
/// the CPU's widest path and on the AVX2 one (<see cref="Vector256Paths"/>), so a machine with AVX-512 checks both.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class MaxPool2dWindowsProperties
{
    private static readonly float[] Hard =
        [0f, -0f, 1f, -1f, 2f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, BitConverter.Int32BitsToSingle(0x7fc00123)];

    private static readonly Gen<(int N, int C, int H, int W, Window2d G, bool Hard, int Seed)> Cases =
        from kh in Gen.Choose(1, 3)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 2)
        from sw in Gen.Choose(1, 3)
        from ph in Gen.Choose(0, kh / 2)
        from pw in Gen.Choose(0, kw / 2)
        from h in Gen.Choose(Math.Max(1, kh - 2 * ph), 6)
        from w in Gen.Choose(Math.Max(1, kw - 2 * pw), 80)
        from n in Gen.Choose(1, 2)
        from c in Gen.Choose(1, 3)
        from hard in Gen.Elements(false, true)
        from seed in Gen.Choose(0, int.MaxValue)
        select (n, c, h, w, new Window2d(kh, kw, sh, sw, ph, pw), hard, seed);

    private static void Check((int N, int C, int H, int W, Window2d G, bool Hard, int Seed) c)
    {
        var rng = new Random(c.Seed);
        var data = new float[c.N * c.C * c.H * c.W];
        for (int i = 0; i < data.Length; i++) data[i] = c.Hard ? Hard[rng.Next(Hard.Length)] : rng.Next(4) - 1.5f;
        var r = MaxPool2dKernel.Forward(Tensor.FromArray(data, c.N, c.C, c.H, c.W), c.G);
        var g = c.G;
        int oh = r.Output.Shape[2], ow = r.Output.Shape[3], o = 0;
        var arg = r.ArgMax.Span;
        for (int p = 0; p < c.N * c.C; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++, o++)
                {
                    int best = -1;
                    for (int ki = 0; ki < g.KernelH; ki++)
                        for (int kj = 0; kj < g.KernelW; kj++)
                        {
                            int y = i * g.StrideH - g.PadH + ki, x = j * g.StrideW - g.PadW + kj;
                            if (y < 0 || y >= c.H || x < 0 || x >= c.W) continue;
                            int at = (p * c.H + y) * c.W + x;
                            if (best < 0 || data[at] > data[best] || (float.IsNaN(data[at]) && !float.IsNaN(data[best]))) best = at;
                        }
                    if (arg[o] != best || BitConverter.SingleToInt32Bits(r.Output[o]) != BitConverter.SingleToInt32Bits(data[best]))
                        throw new Xunit.Sdk.XunitException($"{c}: output {o} is {r.Output[o]:R} from {arg[o]}; the rule gives {data[best]:R} from {best}.");
                }
    }

    [CnnProperty(150)]
    public Property Windows_follow_the_rule() => Prop.ForAll(Cases.ToArbitrary(), Check);

    [CnnProperty(150)]
    public Property Windows_follow_the_rule_on_the_avx2_path() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        if (Vector256Paths.Supported) Vector256Paths.With(() => { Check(c); return 0; });
    });
}
