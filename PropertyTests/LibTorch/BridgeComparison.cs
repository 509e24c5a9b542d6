using Cnn.Core;
using Cnn.Dsl;

namespace Cnn.Tests.LibTorch;

/// <summary>An allowed difference <c>Absolute + Relative * scale</c>, the scale being the reference's size.</summary>
public sealed record Tolerance(double Absolute, double Relative);

/// <summary>One compared quantity: what it is and how much of its tolerance the difference used (pass when at most 1).</summary>
public sealed record Comparison(string What, double Used)
{
    public bool Passed => Used <= 1;

    public override string ToString() => $"{What}: {Used:P1} of tolerance";
}

/// <summary>Compares what the im2col backend and LibTorch computed for the same network, parameters, state and batch.</summary>
public static class BridgeComparison
{
    /// <summary>
    /// Element-wise, scaled by the reference's largest magnitude: <c>max|a-b| / (atol + rtol * max|b|)</c>. For values that
    /// are computed, not accumulated through a backward pass (outputs, losses, running statistics). NaN is infinitely far.
    /// </summary>
    public static double ElementUse(Tensor actual, Tensor expected, Tolerance t)
    {
        if (actual.Shape != expected.Shape) return double.PositiveInfinity;
        double diff = 0, scale = 0;
        for (int i = 0; i < actual.Size; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            diff = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(diff, d);
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        return diff / (t.Absolute + t.Relative * scale);
    }

    /// <summary>
    /// In norm: <c>||a-b|| / (atol * scale * sqrt(n) + rtol * ||b||)</c>, with <paramref name="scale"/> the case's gradient scale
    /// (see <see cref="Compare"/>). For gradients, where an input within rounding of a ReLU kink or of a max-pooling tie may
    /// route one element's gradient differently on the two backends: one such element moves the norm by little, a wrong rule
    /// moves it by much.
    /// </summary>
    public static double NormUse(Tensor actual, Tensor expected, Tolerance t, double scale = 1)
    {
        if (actual.Shape != expected.Shape) return double.PositiveInfinity;
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Size; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        double r = Math.Sqrt(diff) / (t.Absolute * scale * Math.Sqrt(actual.Size) + t.Relative * Math.Sqrt(norm));
        return double.IsNaN(r) ? double.PositiveInfinity : r;
    }

    /// <summary>
    /// Every quantity of two gradient results: output, loss, each parameter's gradient, the input's gradient and each state tensor.
    /// The absolute part of the gradient tolerance is relative to the case's gradient scale, the largest root-mean-square
    /// element among LibTorch's gradients: a gradient that is zero in exact arithmetic (the bias of a layer that a
    /// training-mode batch norm follows, whose shift the normalisation removes) comes out of both backends as the rounding
    /// noise of sums of terms of that scale, which no tolerance relative to the (zero) result can accept.
    /// </summary>
    /// <exception cref="Xunit.Sdk.XunitException">The two do not have the same gradient or state paths.</exception>
    public static IReadOnlyList<Comparison> Compare(GradientResult ours, GradientResult theirs, Tolerance output, Tolerance gradient, Tolerance state)
    {
        if (!ours.Gradients.Paths.SequenceEqual(theirs.Gradients.Paths))
            throw new Xunit.Sdk.XunitException($"Gradient paths differ: im2col [{string.Join(", ", ours.Gradients.Paths)}], LibTorch [{string.Join(", ", theirs.Gradients.Paths)}].");
        if (!ours.State.Paths.SequenceEqual(theirs.State.Paths))
            throw new Xunit.Sdk.XunitException($"State paths differ: im2col [{string.Join(", ", ours.State.Paths)}], LibTorch [{string.Join(", ", theirs.State.Paths)}].");
        var rows = new List<Comparison>
        {
            new("output", ElementUse(ours.Output, theirs.Output, output)),
            new("loss", Math.Abs((double)ours.Loss - theirs.Loss) / (output.Absolute + output.Relative * Math.Abs((double)theirs.Loss))),
        };
        double scale = theirs.Gradients.Entries.Select(kv => kv.Value).Append(theirs.InputGradient).Max(Rms);
        rows.AddRange(ours.Gradients.Paths.Select(p => new Comparison($"gradient {p}", NormUse(ours.Gradients[p], theirs.Gradients[p], gradient, scale))));
        rows.Add(new("input gradient", NormUse(ours.InputGradient, theirs.InputGradient, gradient, scale)));
        rows.AddRange(ours.State.Paths.Select(p => new Comparison($"state {p}", ElementUse(ours.State[p], theirs.State[p], state))));
        return rows;
    }

    /// <summary>
    /// Apply's vector-Jacobian product as a <see cref="GradientResult"/>, with the loss the inner product of the output and
    /// <paramref name="outputGradient"/>, as <see cref="Cnn.Interop.LibTorch.TorchNetwork.Pullback"/> reports it.
    /// </summary>
    public static GradientResult ApplyPullback(Network network, Parameters parameters, Tensor x, Tensor outputGradient, Mode mode, Parameters state, int seed)
    {
        var forward = Apply.WithPullback(network, parameters, x, mode, state, seed);
        var pulled = forward.Pullback(outputGradient);
        double inner = 0;
        for (int i = 0; i < outputGradient.Size; i++) inner += (double)forward.Output[i] * outputGradient[i];
        return new GradientResult((float)inner, forward.Output, pulled.Parameters, pulled.Input, forward.State);
    }

    private static double Rms(Tensor t)
    {
        double sum = 0;
        foreach (var v in t.Span) sum += (double)v * v;
        return t.Size == 0 ? 0 : Math.Sqrt(sum / t.Size);
    }
}
