using System.Buffers;
using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Convolution (cross-correlation) over 1, 2 or 3 spatial axes through im2col and GEMM, forward and backward:
/// inputs NCL, NCHW or NCDHW, weight <c>[F, C/groups, k1, ..., kr]</c>, bias <c>[F]</c>, with stride, dilation,
/// asymmetric zero padding and channel groups (depthwise when groups equals C). A 1x1, stride-1, unpadded convolution
/// uses the image as its own column matrix. Work is split over the batch (<see cref="BatchParallel"/>); weight and
/// bias gradients are summed per chunk and then in chunk order, so results are identical run to run.
/// </summary>
public static class ConvKernel
{
    /// <summary>y = conv(x, w) + b.</summary>
    /// <param name="x">Input <c>[N, C, spatial...]</c> with 1 to 3 spatial axes, as many as <paramref name="g"/> has.</param>
    /// <param name="w">Weight <c>[F, C/groups, kernel...]</c>.</param>
    /// <param name="bias">Bias <c>[F]</c>, or null.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <returns>Output <c>[N, F, output...]</c>, sizes from <see cref="ConvGeometry.OutputSize(IReadOnlyList{int})"/>.</returns>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static Tensor Forward(Tensor x, Tensor w, Tensor? bias, ConvGeometry g)
    {
        var s = Check(x, w, bias, g);
        int outSize = s.Plan.OutSize;
        var y = new float[s.N * s.F * outSize];
        BatchParallel.For(s.N, (_, start, end) =>
        {
            float[]? cols = s.Direct ? null : ArrayPool<float>.Shared.Rent(s.Rows * outSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var yi = y.AsSpan(i * s.F * outSize, s.F * outSize);
                    var colSpan = Columns(x, i, s, cols);
                    for (int gi = 0; gi < s.Groups; gi++)
                        Gemm.Multiply(false, false, s.FG, outSize, s.RowsG,
                            w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG),
                            colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize),
                            yi.Slice(gi * s.FG * outSize, s.FG * outSize));
                    if (bias is not null)
                        for (int o = 0; o < s.F; o++)
                        {
                            var yo = yi.Slice(o * outSize, outSize);
                            TensorPrimitives.Add(yo, bias[o], yo);
                        }
                }
            }
            finally { if (cols is not null) ArrayPool<float>.Shared.Return(cols); }
        });
        return Tensor.Own(y, OutputShape(s, x.Shape));
    }

    /// <summary>
    /// The gradients of a convolution given the upstream gradient <paramref name="dy"/>: dW = dY x cols^T per image,
    /// and dX = col2im(W^T x dY).
    /// </summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="hasBias">Whether the convolution has a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g)
    {
        var s = Check(x, w, null, g);
        var expected = OutputShape(s, x.Shape);
        if (dy.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected an upstream gradient of shape {expected} for input {x.Shape}; found {dy.Shape}.");
        int outSize = s.Plan.OutSize, wSize = s.F * s.RowsG;
        int chunks = BatchParallel.Chunks(s.N);
        var dwParts = new float[chunks][];
        var dbParts = new float[chunks][];
        var dx = new float[x.Size];
        try
        {
            BatchParallel.For(s.N, (chunk, start, end) =>
            {
                var dwp = dwParts[chunk] = ArrayPool<float>.Shared.Rent(wSize);
                var dbp = dbParts[chunk] = ArrayPool<float>.Shared.Rent(s.F);
                dwp.AsSpan(0, wSize).Clear();
                dbp.AsSpan(0, s.F).Clear();
                float[]? cols = s.Direct ? null : ArrayPool<float>.Shared.Rent(s.Rows * outSize);
                float[]? dcols = s.Direct ? null : ArrayPool<float>.Shared.Rent(s.Rows * outSize);
                try
                {
                    for (int i = start; i < end; i++)
                    {
                        var colSpan = Columns(x, i, s, cols);
                        var dyi = dy.Span.Slice(i * s.F * outSize, s.F * outSize);
                        var dxi = dx.AsSpan(i * s.C * s.Plan.InSize, s.C * s.Plan.InSize);
                        for (int gi = 0; gi < s.Groups; gi++)
                        {
                            var dyg = dyi.Slice(gi * s.FG * outSize, s.FG * outSize);
                            var wg = w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG);
                            Gemm.Multiply(false, true, s.FG, s.RowsG, outSize, dyg, colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize),
                                dwp.AsSpan(gi * s.FG * s.RowsG, s.FG * s.RowsG), accumulate: true);
                            var target = dcols is null ? dxi : dcols.AsSpan();
                            Gemm.Multiply(true, false, s.RowsG, outSize, s.FG, wg, dyg, target.Slice(gi * s.RowsG * outSize, s.RowsG * outSize));
                        }
                        if (dcols is not null) ImToCol.FoldAdd(dcols, s.C, s.Plan, dxi);
                        if (hasBias)
                            for (int o = 0; o < s.F; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                    }
                }
                finally
                {
                    if (cols is not null) ArrayPool<float>.Shared.Return(cols);
                    if (dcols is not null) ArrayPool<float>.Shared.Return(dcols);
                }
            });
            var dw = new float[wSize];
            var db = hasBias ? new float[s.F] : null;
            for (int p = 0; p < chunks; p++)
            {
                TensorPrimitives.Add(dw, dwParts[p].AsSpan(0, wSize), dw);
                if (db is not null) TensorPrimitives.Add(db, dbParts[p].AsSpan(0, s.F), db);
            }
            return new ConvGradients(Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.F)));
        }
        finally
        {
            foreach (var part in dwParts) if (part is not null) ArrayPool<float>.Shared.Return(part);
            foreach (var part in dbParts) if (part is not null) ArrayPool<float>.Shared.Return(part);
        }
    }

    // Image i's column matrix: the image itself for a pointwise window, else unfolded into cols.
    private static ReadOnlySpan<float> Columns(Tensor x, int i, in Setup s, float[]? cols)
    {
        int imageSize = s.C * s.Plan.InSize;
        var xi = x.Span.Slice(i * imageSize, imageSize);
        if (cols is null) return xi;
        ImToCol.Unfold(xi, s.C, s.Plan, cols);
        return cols.AsSpan(0, s.Rows * s.Plan.OutSize);
    }

    private static Shape OutputShape(in Setup s, Shape x)
    {
        var dims = x.ToArray();
        dims[1] = s.F;
        for (int a = 0; a < s.Plan.Output.Length; a++) dims[2 + a] = s.Plan.Output[a];
        return new Shape(dims);
    }

    /// <summary>The sizes of one convolution call: channels, filters, groups, column rows, and the window plan.</summary>
    private readonly record struct Setup(int N, int C, int F, int Groups, int FG, int RowsG, int Rows, bool Direct, WindowPlan Plan);

    private static Setup Check(Tensor x, Tensor w, Tensor? bias, ConvGeometry g)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(g);
        g.Validate("Convolution");
        string op = $"Conv{g.Rank}d";
        string layout = g.Rank switch { 1 => "NCL", 2 => "NCHW", _ => "NCDHW" };
        if (x.Shape.Rank != g.Rank + 2)
            throw new ShapeException($"{op}: expected an {layout} input of rank {g.Rank + 2} for a {g.Rank}-d window; found {x.Shape}.");
        int n = x.Shape[0], c = x.Shape[1], groups = g.Groups;
        if (c % groups != 0)
            throw new ShapeException($"{op}: the input's {c} channels do not split into {groups} groups; input {x.Shape}.");
        var wantW = new int[g.Rank + 2];
        wantW[1] = c / groups;
        for (int a = 0; a < g.Rank; a++) wantW[2 + a] = g.Kernel[a];
        bool weightFits = w.Shape.Rank == wantW.Length && w.Shape[0] >= 1 && w.Shape[0] % groups == 0;
        for (int a = 1; weightFits && a < wantW.Length; a++) weightFits = w.Shape[a] == wantW[a];
        if (!weightFits)
            throw new ShapeException(
                $"{op}: expected a weight [F, {c / groups}, {string.Join(", ", g.Kernel)}] with F a positive multiple of {groups} groups, for input {x.Shape}; found {w.Shape}.");
        int f = w.Shape[0];
        if (bias is not null && (bias.Shape.Rank != 1 || bias.Shape[0] != f))
            throw new ShapeException($"{op}: expected a bias [{f}]; found {bias.Shape}.");
        var spatial = x.Shape.ToArray()[2..];
        var plan = new WindowPlan(spatial, g, $"{op} with input {x.Shape}");
        int rowsG = c / groups * plan.Taps;
        return new Setup(n, c, f, groups, f / groups, rowsG, rowsG * groups, g.IsPointwise, plan);
    }
}
