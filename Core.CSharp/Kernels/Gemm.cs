using System.Numerics.Tensors;

namespace Cnn.Core.Kernels;

/// <summary>
/// Single-precision matrix product on contiguous row-major operands:
/// <c>C = op(A) * op(B)</c>, or <c>C += op(A) * op(B)</c> when accumulating.
/// </summary>
public static class Gemm
{
    /// <summary>
    /// Computes <c>C (m x n) = op(A) (m x k) * op(B) (k x n)</c>, adding to C when <paramref name="accumulate"/> is true.
    /// </summary>
    /// <param name="transA">When true, A is stored as k x m and read transposed.</param>
    /// <param name="transB">When true, B is stored as n x k and read transposed.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A, row-major, m*k elements.</param>
    /// <param name="b">B, row-major, k*n elements.</param>
    /// <param name="c">C, row-major, m*n elements.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, bool accumulate = false)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), "GEMM sizes must be >= 0.");
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ArgumentException($"GEMM operands too small for m={m}, n={n}, k={k}: A {a.Length}, B {b.Length}, C {c.Length}.");
        if (!accumulate) c[..(m * n)].Clear();
        if (transB)
        {
            // C[i, j] += dot(A row i, B row j): both rows contiguous when A is not transposed.
            for (int i = 0; i < m; i++)
            {
                var crow = c.Slice(i * n, n);
                for (int j = 0; j < n; j++)
                {
                    float s = 0;
                    if (!transA) s = TensorPrimitives.Dot(a.Slice(i * k, k), b.Slice(j * k, k));
                    else for (int p = 0; p < k; p++) s += a[p * m + i] * b[j * k + p];
                    crow[j] += s;
                }
            }
            return;
        }
        // i-p-j order: C row i += A[i, p] * B row p, vectorised along the row.
        for (int i = 0; i < m; i++)
        {
            var crow = c.Slice(i * n, n);
            for (int p = 0; p < k; p++)
            {
                float aip = transA ? a[p * m + i] : a[i * k + p];
                TensorPrimitives.MultiplyAdd(b.Slice(p * n, n), aip, crow, crow);
            }
        }
    }
}
