using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Kernels;

/// <summary>
/// col2im's row-at-a-time fold (<see cref="FoldRows"/>, AVX-512, 2-d windows of stride 1 along the width) against the
/// tap-by-tap fold it takes over from (<see cref="ImToCol.FoldAddRange"/> on the code paths of CPUs without AVX-512), bit
/// for bit: whole images and blocks of whole output lines inside a wider column matrix, kernels, dilations, strides along
/// the height and padding of every kind, rows of one to three 16-column chunks, and a gradient that already holds values
/// (negative zeros among them, which adding a zero would turn positive).
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class FoldRowsProperties
{
    private sealed record Case(int Channels, ConvAxis H, ConvAxis W, int LineFirst, int LineCount, int Extra, int Offset, int Seed);

    private static readonly Gen<Case> Cases =
        from channels in Gen.Choose(1, 4)
        from h in ConvAxis.Generator(12, 5)
        from w0 in ConvAxis.Generator(40, 5)
        let w = w0 with { S = 1 }
        let outH = h.Out
        from first in Gen.Choose(0, outH - 1)
        from count in Gen.Choose(1, outH - first)
        from extra in Gen.Choose(0, 20)
        from offset in Gen.Choose(0, 5)
        from seed in Gen.Choose(0, 1_000_000_000)
        select new Case(channels, h, w, first, count, extra, offset, seed);

    [Property(MaxTest = 300)]
    public Property Folds_as_the_tap_by_tap_fold() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        var g = ConvGeometry.Create(new[] { c.H.K, c.W.K }, new[] { c.H.S, c.W.S }, new[] { c.H.PadBegin, c.W.PadBegin },
            new[] { c.H.PadEnd, c.W.PadEnd }, new[] { c.H.D, c.W.D });
        var plan = new WindowPlan(new[] { c.H.Size, c.W.Size }, g, "test");
        if (!FoldRows.Covers(plan)) return true; // no AVX-512: only the tap-by-tap fold exists
        int ow = plan.OutW, q0 = c.LineFirst * ow, q1 = (c.LineFirst + c.LineCount) * ow;
        int ld = q1 - q0 + c.Extra, rows = c.Channels * plan.Taps;
        var rng = new Random(c.Seed);
        var cols = new float[rows * ld + c.Offset];
        for (int i = 0; i < cols.Length; i++) cols[i] = (float)(rng.NextDouble() * 2 - 1);
        var start = new float[c.Channels * c.H.Size * c.W.Size];
        for (int i = 0; i < start.Length; i++)
            start[i] = rng.Next(4) switch { 0 => -0f, 1 => 0f, _ => (float)(rng.NextDouble() * 2 - 1) };
        var expected = (float[])start.Clone();
        var actual = (float[])start.Clone();
        bool saved = ColumnPacker.ForcePortable;
        try
        {
            ColumnPacker.ForcePortable = true;
            ImToCol.FoldAddRange(cols, ld, c.Offset, c.Channels, plan, q0, q1, expected);
        }
        finally { ColumnPacker.ForcePortable = saved; }
        ImToCol.FoldAddRange(cols, ld, c.Offset, c.Channels, plan, q0, q1, actual);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                throw new Xunit.Sdk.XunitException($"{c}: element {i} is {actual[i]:R}, the tap-by-tap fold gives {expected[i]:R}.");
        return true;
    });
}
