namespace Cnn.Onnx;

/// <summary>
/// Compares a pooling window along one axis in this project's (PyTorch's) convention with ONNX's. Ours pads
/// <c>p</c> on both sides and, in ceil mode, drops a last window that would start in the end padding; ONNX pads
/// <c>begin</c> and <c>end</c> separately and rounds up without that rule (its shape inference, which strict loading
/// enforces, knows none). An average that counts padding divides by the part of the window inside
/// <c>[-begin, size + end)</c> in ONNX Runtime and inside <c>[-p, size + p)</c> in ours. The exporter and the importer
/// search the few candidate paddings for one with the same windows and divisors.
/// </summary>
internal static class PoolWindows
{
    /// <summary>ONNX's number of windows: <c>(size + begin + end - kernel) / stride + 1</c>, floored or rounded up.</summary>
    public static long OnnxCount(long size, long kernel, long stride, long begin, long end, bool ceil)
    {
        long span = size + begin + end - kernel;
        if (span < 0) return 0;
        return (ceil ? (span + stride - 1) / stride : span / stride) + 1;
    }

    /// <summary>This project's number of windows (as <c>OutputSize.Compute</c>).</summary>
    public static long OurCount(long size, long kernel, long stride, long pad, bool ceil)
    {
        long span = size + 2 * pad - kernel;
        if (span < 0) return 0;
        long count = span / stride + 1;
        if (ceil && span % stride != 0)
        {
            count++;
            if ((count - 1) * stride >= size + pad) count--;
        }
        return count;
    }

    /// <summary>
    /// Whether ONNX's window with padding (<paramref name="pad"/>, <paramref name="end"/>) and <paramref name="onnxCeil"/>
    /// computes what ours with padding <paramref name="pad"/> and <paramref name="ceil"/> does: the same windows, and,
    /// when <paramref name="padCounts"/> (an average that counts padding), the same divisors.
    /// </summary>
    public static bool Same(long size, long kernel, long stride, long pad, bool ceil, long end, bool onnxCeil, bool padCounts)
    {
        long count = OurCount(size, kernel, stride, pad, ceil);
        if (count < 1 || count != OnnxCount(size, kernel, stride, pad, end, onnxCeil)) return false;
        if (!padCounts) return true;
        for (long i = 0; i < count; i++)
        {
            long start = i * stride - pad;
            if (Math.Min(start + kernel, size + pad) != Math.Min(start + kernel, size + end)) return false;
        }
        return true;
    }

    /// <summary>
    /// The ONNX ceil mode and end paddings that express our window on every axis, trying our own ceil mode first and,
    /// per axis, the symmetric padding first; null when none does.
    /// </summary>
    public static (bool Ceil, long[] End)? ToOnnx(int[] size, int[] kernel, int[] stride, int[] pad, bool ceil, bool padCounts)
    {
        foreach (bool onnxCeil in new[] { ceil, !ceil })
        {
            var ends = new long[size.Length];
            bool all = true;
            for (int i = 0; all && i < size.Length; i++)
            {
                long count = OurCount(size[i], kernel[i], stride[i], pad[i], ceil);
                long remainder = (size[i] + 2L * pad[i] - kernel[i]) % stride[i];
                var candidates = new[] { pad[i], pad[i] - remainder, (count - 1) * stride[i] + kernel[i] - size[i] - pad[i] };
                long? found = null;
                foreach (var end in candidates)
                    if (end >= 0 && (end < kernel[i] || end == pad[i]) && Same(size[i], kernel[i], stride[i], pad[i], ceil, end, onnxCeil, padCounts))
                    {
                        found = end;
                        break;
                    }
                if (found is long e) ends[i] = e;
                else all = false;
            }
            if (all) return (onnxCeil, ends);
        }
        return null;
    }
}
