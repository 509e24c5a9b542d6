using Cnn.Core;
using Cnn.Dsl;
using Cnn.Interop.LibTorch;
using Cnn.Onnx;
using TorchSharp;
using static TorchSharp.torch.nn.functional;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Cli.Bench;

/// <summary>
/// Whole networks of the zoo: a training step (forward, backward, SGD update) on the im2col backend (<see cref="Trainer.Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/>)
/// and on LibTorch (the network as a <c>torch.nn.Module</c> with <c>torch.optim.SGD</c>), and inference on both and on ONNX
/// Runtime (the network exported by <see cref="OnnxExporter"/>).
/// </summary>
internal static class NetworkBench
{
    public const float LearningRate = 0.01f;

    /// <summary>The networks of the training-step targets, with the speed each must reach against LibTorch.</summary>
    public static readonly (string Name, double Target)[] Trained = { ("simple-convnet", 1.2), ("lenet5", 1.2), ("keras-cifar", 1.2), ("resnet-mini", 1.2) };

    public static void RunTraining(BenchContext ctx)
    {
        foreach (var (name, target) in Trained)
        {
            var row = ctx.Run("training step, batch 64 (forward, backward, SGD)", name, TrainFlops(Zoo.ByName(name), 64), TrainStep(ctx, name, 64),
                Target.SpeedVsLibTorch(target), settings: SteadyState(ctx));
            var step = Accounting.Of(Zoo.ByName(name), 64);
            long measured = row.Of(Sides.Im2col)!.AllocatedBytes;
            ctx.Rows.Add(new BenchRow("training step allocation, batch 64 (im2col, steady state)", name, 0, row.Timings.Take(1).ToList(),
                Target.AllocationBeyond(step.ReturnedBytes, 64 * 1024),
                $"{Kb(measured)} per step, of which returned tensors {Kb(step.ReturnedBytes)} ({step.Arrays} arrays: new parameters, " +
                "batch-norm statistics, output)"));
        }
    }

    /// <summary>
    /// A training or inference row's measurement after a warm-up of two seconds per side (full runs): a training run and a
    /// deployed model spend their time in the steady state, and the JIT's tiers settle only after a few hundred small steps
    /// (lenet5 at batch 64: 300-400 steps, 8-9 ms a step before against 4.5 after, on the Intel Xeon) or a few dozen large
    /// calls (resnet18 at batch 1 on Zen 3: calls 5-9 at 80-110 ms while the background JIT shares the two cores, about 45
    /// up to call 20, 30 after), longer than the default quarter second.
    /// </summary>
    private static MeasureSettings SteadyState(BenchContext ctx) =>
        ctx.Quick ? ctx.Settings : ctx.Settings with { WarmupSeconds = Math.Max(ctx.Settings.WarmupSeconds, 2.0) };

    public static void RunInference(BenchContext ctx)
    {
        foreach (var name in ctx.Quick ? new[] { "keras-cifar" } : new[] { "simple-convnet", "lenet5", "keras-cifar" })
            foreach (int batch in new[] { 1, 64 })
                ctx.Run("inference", $"{name}, batch {batch}", ForwardFlops(Zoo.ByName(name), batch), Inference(ctx, name, batch),
                    Target.SpeedVsOnnxRuntime(0.8), settings: SteadyState(ctx));
        if (!ctx.Quick)
            ctx.Run("inference", "resnet18, batch 1 (3x224x224)", ForwardFlops(Zoo.ByName("resnet18"), 1), Inference(ctx, "resnet18", 1),
                Target.SpeedVsOnnxRuntime(0.8), settings: SteadyState(ctx));
    }

    public static string Kb(long bytes) => $"{bytes / 1024.0:0.0} KB";

    /// <summary>The im2col backend's and LibTorch's training step of a zoo network on a seeded batch.</summary>
    public static IReadOnlyList<Side> TrainStep(BenchContext ctx, string name, int batch, Shape? input = null)
    {
        var net = input is null ? Zoo.ByName(name) : Network.Create(Zoo.ByName(name).Root, input);
        var (p, state, x, labels) = Setup(net, batch);
        var sgd = new Sgd(LearningRate);
        var opt = sgd.Init(p);
        var module = ctx.Keep(TorchModule.Build(net, p, state));
        module.train();
        var torchOpt = ctx.Keep(torch.optim.SGD(module.parameters(), LearningRate));
        var tx = ctx.Keep(TorchTensors.ToTorch(x));
        var ty = ctx.Keep(torch.tensor(labels.Select(l => (long)l).ToArray()));
        // Each call starts from the same parameters, so the work does not drift as training would move them.
        return new[]
        {
            new Side(Sides.Im2col, () => Trainer.Step(net, p, state, sgd, opt, x, labels, seed: 1)),
            new Side(Sides.LibTorch, () =>
            {
                using var scope = torch.NewDisposeScope();
                torchOpt.zero_grad();
                var output = module.forward(tx);
                var loss = cross_entropy(output, ty);
                loss.backward();
                torchOpt.step();
            }),
        };
    }

    /// <summary>
    /// Inference of a zoo network on a seeded batch: the im2col backend's compiled <see cref="InferenceModel"/> (compiled
    /// before timing, as a deployed model is), LibTorch (eval mode, no autograd) and ONNX Runtime. ONNX Runtime's threads
    /// stop spinning when a run returns (<see cref="OnnxPredictorOptions.StopSpinningBetweenRuns"/>): by default its
    /// worker spins on through the other sides' blocks and the pauses between them (measured on 2 cores: 1.2 s of
    /// processor time in 2 s while it ran a third of the time), and the side after it ran with one core.
    /// </summary>
    public static IReadOnlyList<Side> Inference(BenchContext ctx, string name, int batch)
    {
        var net = Zoo.ByName(name);
        var (p, state, x, _) = Setup(net, batch);
        var module = ctx.Keep(TorchModule.Build(net, p, state));
        module.eval();
        var tx = ctx.Keep(TorchTensors.ToTorch(x));
        var onnx = ctx.Keep(new OnnxPredictor(OnnxExporter.ToBytes(net, p, state), new OnnxPredictorOptions { IntraOpThreads = ctx.Threads, StopSpinningBetweenRuns = true }));
        var model = InferenceModel.Compile(net, p, state);
        return new[]
        {
            new Side(Sides.Im2col, () => model.Predict(x)),
            new Side(Sides.LibTorch, () =>
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                module.forward(tx);
            }),
            new Side(Sides.Onnx, () => onnx.Run(x)),
        };
    }

    private static (Parameters P, Parameters State, Tensor X, int[] Labels) Setup(Network net, int batch)
    {
        var p = Initializer.Init(net, 1);
        var state = Initializer.InitState(net);
        var x = Tensor.FromArray(BenchContext.Random(batch * net.InputShape.Size, 31), net.InputShape.PrependBatch(batch));
        var rng = new Random(32);
        var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(net.OutputShape[0])).ToArray();
        return (p, state, x, labels);
    }

    /// <summary>FLOPs of a forward pass in convolution and dense layers (2 per multiply-add).</summary>
    public static double ForwardFlops(Network net, int batch)
    {
        double f = 0;
        foreach (var leaf in net.Leaves)
        {
            if (leaf.Layer is Conv2d c)
                f += 2.0 * batch * leaf.Output.Size * (leaf.Input[0] / c.Groups) * c.KernelH * c.KernelW;
            else if (leaf.Layer is Dense)
                f += 2.0 * batch * leaf.Output.Size * leaf.Input.Size;
        }
        return f;
    }

    /// <summary>A training step's FLOPs: forward, and a backward twice as large (input and weight gradients).</summary>
    public static double TrainFlops(Network net, int batch) => 3 * ForwardFlops(net, batch);

    /// <summary>
    /// The bytes of the arrays a training step returns, counted from the network's shapes: the new parameters (immutable, so
    /// the optimizer writes fresh arrays), the new batch-norm statistics and the output. Activations, masks and gradients
    /// come from the trainer's <see cref="Cnn.Core.TensorArena"/> and are recycled, so in the steady state they cost
    /// nothing; what a step allocates beyond the returned arrays (small intermediates under the arena's minimum length, the
    /// interpreter's bookkeeping) is the overhead the 64 KB target bounds.
    /// </summary>
    public sealed record Accounting(long ReturnedBytes, int Arrays)
    {
        public static Accounting Of(Network net, int batch)
        {
            long bytes = 0;
            int arrays = 0;
            void Array(long elements)
            {
                bytes += (24 + 4 * elements + 7) / 8 * 8;
                arrays++;
            }
            foreach (var leaf in net.Leaves)
            {
                foreach (var (_, spec) in leaf.ParameterSpecs()) Array(spec.Shape.Size);
                foreach (var (_, spec) in leaf.StateSpecs()) Array(spec.Shape.Size);
            }
            Array((long)batch * net.OutputShape.Size);
            return new Accounting(bytes, arrays);
        }
    }
}
