using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using Xunit;

namespace Cnn.Tests.LibTorch;

/// <summary>
/// <see cref="TorchNetwork.GradientInFloat64"/>, the rounding reference of <c>cnn run</c>'s gradient check: it is the
/// gradient computed in float64 (checked against a hand-written float64 gradient of a dense layer, where float32 engines
/// lose digits to cancellation), and on a network with batch norm it computes the same function as the float32 bridge.
/// </summary>
public sealed class Float64GradientTests
{
    /// <summary>
    /// A dense layer under softmax cross-entropy: dW = (softmax(x W^T + b) - onehot)^T x / N and db = the column sums,
    /// written out in double here. Each sample is (1e4 + u, 1e4) against weights (a, -a), so a logit is a * u after
    /// cancelling two products near 1e4 * a: float32 keeps about three digits of it, and the float32 bridge fails this
    /// test (checked by swapping it in) where the float64 one passes.
    /// </summary>
    [Fact]
    public void Dense_gradient_is_the_float64_gradient_rounded_once()
    {
        const int n = 8, inputs = 2, classes = 4;
        var net = Network.Create(new Dense(classes), new Shape(inputs));
        var rng = new Random(5);
        var w = new float[classes * inputs];
        for (int k = 0; k < classes; k++) (w[2 * k], w[2 * k + 1]) = ((float)(2 * rng.NextDouble() - 1), 0f);
        for (int k = 0; k < classes; k++) w[2 * k + 1] = -w[2 * k];
        var b = Enumerable.Range(0, classes).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var x = Enumerable.Range(0, n * inputs).Select(i => i % inputs == 0 ? 1e4f + (float)rng.NextDouble() : 1e4f).ToArray();
        var labels = Enumerable.Range(0, n).Select(i => i % classes).ToArray();
        var p = Parameters.Of(new Dictionary<string, Tensor>
        {
            [Network.Join("dense1", "weight")] = Tensor.FromArray(w, classes, inputs),
            [Network.Join("dense1", "bias")] = Tensor.FromArray(b, classes),
        });
        Assert.Equal(p.Paths.OrderBy(k => k), Initializer.Init(net, 1).Paths.OrderBy(k => k));

        var dw = new double[classes * inputs];
        var db = new double[classes];
        for (int s = 0; s < n; s++)
        {
            var z = new double[classes];
            for (int k = 0; k < classes; k++)
            {
                z[k] = b[k];
                for (int i = 0; i < inputs; i++) z[k] += (double)w[k * inputs + i] * x[s * inputs + i];
            }
            double max = z.Max(), sum = z.Sum(v => Math.Exp(v - max));
            for (int k = 0; k < classes; k++)
            {
                double g = (Math.Exp(z[k] - max) / sum - (labels[s] == k ? 1 : 0)) / n;
                db[k] += g;
                for (int i = 0; i < inputs; i++) dw[k * inputs + i] += g * x[s * inputs + i];
            }
        }

        var r = TorchNetwork.GradientInFloat64(net, p, Tensor.FromArray(x, n, inputs), labels, LossFunction.SoftmaxCrossEntropy);
        var gw = r.Gradients[Network.Join("dense1", "weight")];
        var gb = r.Gradients[Network.Join("dense1", "bias")];
        for (int i = 0; i < dw.Length; i++) Assert.True(Math.Abs(gw[i] - dw[i]) <= 1e-9 + 1e-6 * Math.Abs(dw[i]), $"dW[{i}]: {gw[i]} vs {dw[i]}");
        for (int k = 0; k < classes; k++) Assert.True(Math.Abs(gb[k] - db[k]) <= 1e-9 + 1e-6 * Math.Abs(db[k]), $"db[{k}]: {gb[k]} vs {db[k]}");
    }

    [Fact]
    public void A_network_with_batch_norm_has_the_float32_bridges_gradient_up_to_rounding()
    {
        var net = Network.Create(new Serial(new Conv2d(6, 3, 3, PadH: 1, PadW: 1, UseBias: false), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Flatten(), new Dense(5)), new Shape(2, 8, 8));
        var p = Initializer.Init(net, 3);
        var state = Initializer.InitState(net);
        var rng = new Random(9);
        var x = Tensor.FromArray(Enumerable.Range(0, 16 * 2 * 8 * 8).Select(_ => (float)rng.NextDouble()).ToArray(), 16, 2, 8, 8);
        var labels = Enumerable.Range(0, 16).Select(i => i % 5).ToArray();
        var single = TorchNetwork.Gradient(net, p, x, labels, LossFunction.SoftmaxCrossEntropy, Mode.Train, state);
        var exact = TorchNetwork.GradientInFloat64(net, p, x, labels, LossFunction.SoftmaxCrossEntropy, Mode.Train, state);
        Assert.Equal(single.Loss, exact.Loss, 5);
        Assert.Equal(single.Gradients.Paths.OrderBy(k => k), exact.Gradients.Paths.OrderBy(k => k));
        foreach (var (path, g) in exact.Gradients.Entries)
        {
            var s = single.Gradients[path];
            double num = 0, den = 0;
            for (int i = 0; i < g.Size; i++)
            {
                num += ((double)g[i] - s[i]) * ((double)g[i] - s[i]);
                den += (double)g[i] * g[i];
            }
            Assert.True(Math.Sqrt(num / den) <= 1e-4, $"{path}: relative {Math.Sqrt(num / den)}");
        }
    }
}
