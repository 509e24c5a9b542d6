using Xunit;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Onnx;

namespace Cnn.Tests.Onnx;

/// <summary>
/// <see cref="InferenceModel"/> on networks a real exporter wrote: torchvision's, exported by torch and imported here
/// (<see cref="TorchvisionImportTests.Export"/>). Its output is <see cref="Apply.Forward"/>'s bit for bit where it folds no
/// batch norm (torch's exporter folds them into the convolutions already), else within the folding tolerance of
/// <c>InferenceModelTests</c> (|a - b| &lt;= 1e-4 (1 + max|b|)), for the exported input and for a short batch of it; a warm
/// call allocates exactly its output.
/// </summary>
public sealed class TorchvisionInferenceTests
{
    [TorchvisionTheory]
    [InlineData("resnet18")]
    [InlineData("mobilenet_v2")]
    public void An_imported_network_predicts_what_apply_computes_and_a_warm_call_allocates_only_its_output(string network)
    {
        var dir = TorchvisionImportTests.Export(network, 32, 17);
        try
        {
            var imported = OnnxImporter.Import(Path.Combine(dir, "net.onnx"));
            var x = Npy.ReadTensor(Path.Combine(dir, "net.input.npy"));
            var model = InferenceModel.Compile(imported.Network, imported.Parameters, imported.State);
            foreach (var batch in new[] { x, x.Slice(0, 1), x })
            {
                var expected = Apply.Forward(imported.Network, imported.Parameters, batch, Mode.Eval, imported.State);
                var actual = model.Predict(batch);
                Assert.Equal(expected.Shape, actual.Shape);
                if (model.FoldedBatchNorms == 0)
                {
                    Assert.True(actual.Span.SequenceEqual(expected.Span), $"{network}: not Apply.Forward's bits for batch {batch.Shape}");
                    continue;
                }
                float scale = 0f;
                foreach (var v in expected.Span) scale = MathF.Max(scale, MathF.Abs(v));
                for (int i = 0; i < actual.Size; i++)
                    Assert.True(MathF.Abs(actual[i] - expected[i]) <= 1e-4f * (1 + scale), $"{network}, element {i}: {actual[i]} against {expected[i]}");
            }
            model.Predict(x);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var y = model.Predict(x);
            long call = GC.GetAllocatedBytesForCurrentThread() - before;
            before = GC.GetAllocatedBytesForCurrentThread();
            var alone = Tensor.Own(new float[y.Size], y.Shape);
            Assert.Equal(GC.GetAllocatedBytesForCurrentThread() - before, call);
            GC.KeepAlive(alone);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
