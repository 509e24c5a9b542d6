using Cnn.Core;
using Cnn.Dsl;
using Cnn.Onnx;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Reliability;

public class OnnxReliabilityTests
{
    private static readonly Lazy<byte[]> Model = new(() =>
    {
        var net = Network.Create(new Serial(new Conv2d(3, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Flatten(), new Dense(4)), new Shape(1, 6, 6));
        return OnnxExporter.ToBytes(net, Initializer.Init(net, 1), state: Initializer.InitState(net));
    });

    /// <summary>
    /// Truncated, byte-flipped and length-overwritten ONNX files give the project's exception (or import, when the
    /// mutation happens to leave a valid model), never another exception and never a crash.
    /// </summary>
    [Property(MaxTest = 300)]
    public Property MutatedOnnxFilesOnlyEverRaiseTheProjectsException() =>
        Prop.ForAll((from kind in Gen.Choose(0, 2) from pos in Gen.Choose(0, 1_000_000) from value in Gen.Choose(0, 255) select (kind, pos, value)).ToArbitrary(), t =>
        {
            var bytes = Model.Value;
            int at = t.pos % bytes.Length;
            byte[] mutated = t.kind switch
            {
                0 => bytes[..at],
                1 => bytes.Select((b, i) => i == at ? (byte)t.value : b).ToArray(),
                // A varint's continuation bits set on a run of bytes: sizes that claim far more than the file holds.
                _ => bytes.Select((b, i) => i >= at && i < at + 5 ? (byte)(b | 0x80) : b).ToArray(),
            };
            try
            {
                OnnxImporter.FromBytes(mutated, "mutated.onnx");
                return true;
            }
            catch (CnnException)
            {
                return true;
            }
        });

    /// <summary>One ONNX Runtime predictor serves 16 threads, thousands of calls, each result equal to the single-threaded one.</summary>
    [Fact]
    public void OnePredictorServesSixteenThreads()
    {
        using var predictor = new OnnxPredictor(Model.Value);
        var rng = new Random(3);
        var inputs = Enumerable.Range(0, 8).Select(i =>
            Tensor.FromArray(Enumerable.Range(0, (1 + i % 4) * 36).Select(_ => (float)rng.NextDouble()).ToArray(), 1 + i % 4, 1, 6, 6)).ToArray();
        var expected = inputs.Select(x => predictor.Run(x).ToArray()).ToArray();
        int mismatches = 0, calls = 0;
        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            for (int k = 0; k < 150; k++)
            {
                int i = (t * 3 + k) % inputs.Length;
                if (!predictor.Run(inputs[i]).Span.SequenceEqual(expected[i])) Interlocked.Increment(ref mismatches);
                Interlocked.Increment(ref calls);
            }
        })).ToList();
        threads.ForEach(th => th.Start());
        threads.ForEach(th => th.Join());
        Assert.Equal(16 * 150, calls);
        Assert.Equal(0, mismatches);
    }
}
