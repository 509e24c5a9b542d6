using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Cnn.Core.Kernels;

/// <summary>The backward pass of <see cref="ConvKernel"/>: dX, dW and db, through the GEMM or the direct kernels.</summary>
public static partial class ConvKernel
{
    /// <summary>
    /// The gradients of a convolution given the upstream gradient <paramref name="dy"/>: dW = dY x cols^T summed over the
    /// batch, db the sums of dY, and dX = col2im(W^T x dY).
    /// </summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="hasBias">Whether the convolution has a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static ConvGradients Backward(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g)
    {
        var (dx, dw, db) = Gradients(x, w, hasBias, dy, g, inputGradient: true);
        return new ConvGradients(dx!, dw, db);
    }

    /// <summary>
    /// The weight and bias gradients alone, as <see cref="Backward"/> computes them (bit for bit), without the input gradient:
    /// for a first layer, whose input (the data) needs none. Skips the GEMM W^T x dY and the col2im, about a third of the
    /// backward pass.
    /// </summary>
    /// <param name="x">The forward input.</param>
    /// <param name="w">The weight.</param>
    /// <param name="hasBias">Whether the convolution has a bias (then its gradient is returned).</param>
    /// <param name="dy">dL/dy, the forward output's shape.</param>
    /// <param name="g">The window and the number of groups.</param>
    /// <exception cref="ShapeException">The shapes do not fit each other or the window.</exception>
    public static (Tensor Weight, Tensor? Bias) ParameterGradients(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g)
    {
        var (_, dw, db) = Gradients(x, w, hasBias, dy, g, inputGradient: false);
        return (dw, db);
    }

    /// <summary>
    /// <see cref="Backward"/> and <see cref="ParameterGradients"/> on a chosen micro-kernel (to test each path); with
    /// <paramref name="reluOutput"/> (the output of the forward pass with <c>relu: true</c>), those of the convolution and
    /// the ReLU after it: dY masked as <see cref="Activations.ReluBackward"/> masks it, bit for bit, a few images at a time
    /// just before the kernels read them (see <see cref="FusedGradients{TK}"/>), instead of in a pass of its own.
    /// </summary>
    internal static (Tensor? Input, Tensor Weight, Tensor? Bias) Gradients(Tensor x, Tensor w, bool hasBias, Tensor dy, ConvGeometry g, bool inputGradient,
        GemmInstructionSet isa = GemmInstructionSet.Auto, Tensor? reluOutput = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        var s = Check(x.Shape, w, null, g);
        ArgumentNullException.ThrowIfNull(dy);
        var expected = OutputShape(s, x.Shape);
        if (dy.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected an upstream gradient of shape {expected} for input {x.Shape}; found {dy.Shape}.");
        if (reluOutput is not null && reluOutput.Shape != expected)
            throw new ShapeException($"Conv{g.Rank}d backward: expected a ReLU output of shape {expected} for input {x.Shape}; found {reluOutput.Shape}.");
        isa = Gemm.Resolve(isa);
        bool fusedBackward = Fused(s) && s.N >= BatchParallel.Chunks(int.MaxValue) && !DepthwiseConv2d.Covers(g, s.C, s.F);
        if (reluOutput is not null && !fusedBackward)
        {
            dy = Activations.ReluBackward(reluOutput, dy);
            reluOutput = null;
        }
        if (DepthwiseConv2d.Covers(g, s.C, s.F))
        {
            var (ddx, ddw, ddb) = DepthwiseConv2d.Backward(x, w, hasBias, dy, g, s.Plan.Output, inputGradient);
            return (ddx is null ? null : Tensor.Own(ddx, x.Shape), Tensor.Own(ddw, w.Shape), ddb is null ? null : Tensor.Own(ddb, new Shape(s.F)));
        }
        // Image by image needs every worker busy with images: a batch smaller than the workers keeps the GEMM's own split.
        if (fusedBackward)
            return isa switch
            {
                GemmInstructionSet.Vector512 => FusedGradients<GemmKernel512>(x, w, hasBias, dy, s, inputGradient, reluOutput),
                GemmInstructionSet.Vector256 => FusedGradients<GemmKernel256>(x, w, hasBias, dy, s, inputGradient, reluOutput),
                _ => FusedGradients<GemmKernelScalar>(x, w, hasBias, dy, s, inputGradient, reluOutput),
            };
        int outSize = s.Plan.OutSize, inSize = s.C * s.Plan.InSize, wSize = s.F * s.RowsG;
        var dx = inputGradient ? TensorArena.Uninitialized<float>(x.Size) : null;
        var gemm = GemmFor(s.N) with { InstructionSet = isa };
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.F : 0);
        // dW as the fused path computes it where that path would take the direct kernel, so a batch's bits do not depend
        // on which of the two paths the worker count picks.
        bool layout = ConvColumns.Covers(s.Plan);
        var columns = layout ? new ConvColumns(s.N, s.C, s.Groups, s.Plan) : default;
        var (direct, directDx, lanes) = layout ? DirectGradients(columns, s.F, dx is not null, isa) : (false, false, 0);
        BatchParallel.For(s.N, (chunk, start, end) =>
        {
            // Per image: dW += dY_i x cols_i^T, then dcols = W^T x dY_i folded into dx_i while it is in the cache, except
            // what the direct kernels compute for the whole chunk first. (Blocks of several small images, as the
            // forward pass uses, measured no faster here: these products are already long along k or n.)
            var (dwp, dbp) = partials.Start(chunk);
            if (direct) DirectWeights(columns, x, dy, s.F, dwp, start, end, lanes);
            if (directDx) DirectInput(columns, dy, w, s.F, dx!, start, end, lanes);
            var cols = s.Direct || direct ? null : Workspace.Rent(s.Rows * outSize);
            var dcols = s.Direct || dx is null || directDx ? null : Workspace.Rent(s.Rows * outSize);
            try
            {
                for (int i = start; i < end; i++)
                {
                    var colSpan = direct ? default : Columns(x, i, s, cols);
                    var dyi = dy.Span.Slice(i * s.F * outSize, s.F * outSize);
                    for (int gi = 0; gi < s.Groups; gi++)
                    {
                        var dyg = dyi.Slice(gi * s.FG * outSize, s.FG * outSize);
                        if (!direct)
                            Gemm.Multiply(false, true, s.FG, s.RowsG, outSize, dyg, colSpan.Slice(gi * s.RowsG * outSize, s.RowsG * outSize),
                                dwp.AsSpan(gi * s.FG * s.RowsG, s.FG * s.RowsG), true, gemm);
                        if (dx is not null && !directDx)
                        {
                            // Pointwise: dcols is dx_i itself, written whole by the product.
                            var target = dcols is null ? dx.AsSpan(i * inSize, inSize) : dcols.AsSpan();
                            Gemm.Multiply(true, false, s.RowsG, outSize, s.FG, w.Span.Slice(gi * s.FG * s.RowsG, s.FG * s.RowsG), dyg,
                                target.Slice(gi * s.RowsG * outSize, s.RowsG * outSize), false, gemm);
                        }
                    }
                    if (dcols is not null)
                    {
                        var dxi = dx.AsSpan(i * inSize, inSize);
                        dxi.Clear();
                        ImToCol.FoldAdd(dcols, s.C, s.Plan, dxi);
                    }
                    if (hasBias)
                        for (int o = 0; o < s.F; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                }
            }
            finally
            {
                if (cols is not null) Workspace.Return(cols);
                if (dcols is not null) Workspace.Return(dcols);
            }
        });
        var (dw, db) = partials.Sum();
        return (dx is null ? null : Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.F)));
    }

    /// <summary>
    /// Which gradients the direct kernels compute (<see cref="DirectWeightGradient"/>, <see cref="DirectInputGradient"/>) beside
    /// the micro-kernel <paramref name="isa"/>, and on vectors of how many lanes (<see cref="DirectConv.Lanes"/>: none beside
    /// the scalar one, which keeps the GEMM's dW and its bits).
    /// </summary>
    private static (bool Weights, bool Input, int Lanes) DirectGradients(in ConvColumns l, int f, bool inputGradient, GemmInstructionSet isa)
    {
        int lanes = DirectConv.Lanes(isa);
        return (DirectWeightGradient.Covers(l, f, lanes), inputGradient && DirectInputGradient.Covers(l, f, lanes), lanes);
    }

    private static unsafe void DirectWeights(in ConvColumns l, Tensor x, Tensor dy, int f, float[] dw, int start, int end, int lanes)
    {
        fixed (float* px = x.Span, pdy = dy.Span, pdw = dw)
            DirectWeightGradient.Accumulate(l, px, pdy, f, pdw, start, end, lanes);
    }

    private static unsafe void DirectInput(in ConvColumns l, Tensor dy, Tensor w, int f, float[] dx, int start, int end, int lanes)
    {
        fixed (float* pdy = dy.Span, pw = w.Span, pdx = dx)
            DirectInputGradient.Compute(l, pdy, pw, f, pdx, start, end, lanes);
    }

    /// <summary>
    /// Whether the products run on <see cref="ConvGemm{TK}"/>, the column matrix packed straight from the image: windows of
    /// one or two axes, with more than <see cref="GemmParallel.SmallRows"/> filters per group (fewer are the GEMM's small
    /// products, which read the column matrix in place and sum dW in another order).
    /// </summary>
    internal static bool Fused(in Setup s) => ConvColumns.Covers(s.Plan) && s.FG > GemmParallel.SmallRows;

    /// <summary>
    /// Bytes of dY masked by a ReLU's pullback at a time (<see cref="FusedGradients{TK}"/>): a few images, which the kernels
    /// then read from L2 (2 MB a core on the Intel Xeon, 1 MB on AMD Zen 5) with their inputs. Tests set it low, so that a
    /// chunk's images come in several groups.
    /// </summary>
    internal static int MaskedBytes { get; set; } = 256 * 1024;

    /// <remarks>
    /// With <paramref name="reluOutput"/>, each chunk masks dY a group of images at a time (<see cref="MaskedBytes"/>) into an
    /// arena array and runs the kernels on that group before masking the next: a pass of its own (read y and dY, write the
    /// masked copy, which the kernels then read back from L3 or memory) cost 2 % of keras-cifar's training step. The kernels
    /// see the images of a chunk in order, the weight gradient's lane sums carried from group to group, so every sum is
    /// that of the unmasked path on <see cref="Activations.ReluBackward"/>'s output.
    /// </remarks>
    private static unsafe (Tensor? Input, Tensor Weight, Tensor? Bias) FusedGradients<TK>(Tensor x, Tensor w, bool hasBias, Tensor dy, Setup s,
        bool inputGradient, Tensor? reluOutput) where TK : struct, IGemmKernel
    {
        var l = new ConvColumns(s.N, s.C, s.Groups, s.Plan);
        int outSize = s.Plan.OutSize, wSize = s.F * s.RowsG;
        var dx = inputGradient ? TensorArena.Uninitialized<float>(x.Size) : null;
        var isa = typeof(TK) == typeof(GemmKernel512) ? GemmInstructionSet.Vector512
            : typeof(TK) == typeof(GemmKernel256) ? GemmInstructionSet.Vector256 : GemmInstructionSet.Scalar;
        var (direct, directDx, lanes) = DirectGradients(l, s.F, inputGradient, isa);
        var packed = inputGradient && !directDx ? Workspace.Rent(ConvGemm<TK>.PackedWeightsLength(s.Groups, s.FG, s.RowsG, transposed: true)) : null;
        using var partials = new ChunkPartials(BatchParallel.Chunks(s.N), wSize, hasBias ? s.F : 0);
        try
        {
            if (packed is not null)
                fixed (float* pw = w.Span, pp = packed) ConvGemm<TK>.PackWeights(pw, s.Groups, s.FG, s.RowsG, transposed: true, pp);
            int imageSize = s.F * outSize;
            var masked = reluOutput is null ? null : TensorArena.Uninitialized<float>(dy.Size);
            int group = masked is null ? s.N : Math.Max(1, MaskedBytes / (4 * imageSize));
            BatchParallel.For(s.N, (chunk, start, end) =>
            {
                var (dwp, dbp) = partials.Start(chunk);
                for (int g0 = start; g0 < end; g0 += group)
                {
                    int g1 = Math.Min(end, g0 + group);
                    if (masked is not null)
                        Activations.ReluMask(reluOutput!.Span[(g0 * imageSize)..(g1 * imageSize)], dy.Span[(g0 * imageSize)..(g1 * imageSize)],
                            masked.AsSpan((g0 * imageSize)..(g1 * imageSize)));
                    var grad = masked is null ? dy.Span : masked;
                    fixed (float* px = x.Span, pdy = grad, pw = w.Span, pp = packed, pdw = dwp, pdx = dx)
                    {
                        if (direct) DirectWeightGradient.Accumulate(l, px, pdy, s.F, pdw, g0, g1, lanes, begin: g0 == start, end: g1 == end);
                        if (directDx) DirectInputGradient.Compute(l, pdy, pw, s.F, pdx, g0, g1, lanes);
                        if (!direct || (pdx != null && !directDx))
                            ConvGemm<TK>.Backward(l, s.Plan, px, pdy, s.F, pp, direct ? null : pdw, directDx ? null : pdx, g0, g1);
                    }
                    if (hasBias)
                        for (int i = g0; i < g1; i++)
                        {
                            var dyi = grad.Slice(i * imageSize, imageSize);
                            for (int o = 0; o < s.F; o++) dbp[o] += TensorPrimitives.Sum(dyi.Slice(o * outSize, outSize));
                        }
                }
            });
        }
        finally
        {
            if (packed is not null) Workspace.Return(packed);
        }
        var (dw, db) = partials.Sum();
        return (dx is null ? null : Tensor.Own(dx, x.Shape), Tensor.Own(dw, w.Shape), db is null ? null : Tensor.Own(db, new Shape(s.F)));
    }
}
