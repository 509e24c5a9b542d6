using Cnn.Core;
using Cnn.Core.Kernels;
using Cnn.Dsl;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// <see cref="InferenceModel"/> against <see cref="Apply.Forward"/> in eval mode. Where no batch normalisation is folded the
/// outputs must be equal bit for bit (same kernels, same sums, only packed earlier). Where one is folded, the scale moves
/// into the weights before the sum, so every product rounds differently: |a - b| &lt;= 1e-4 (1 + max|b|) per element, a few
/// float32 ulps of a sum of up to thousands of products per layer, through up to 20 folded layers.
/// </summary>
public class InferenceModelTests
{
    private const double Tolerance = 1e-4;

    /// <summary>The zoo networks small enough for many random cases (the large ones are checked once each below).</summary>
    private static readonly string[] Small =
    {
        "simple-convnet", "lenet5", "keras-cifar", "keras-tutorial", "alexnet-mini", "vgg-mini", "inception-mini", "inception-mini-aux", "resnet-mini",
        "conv1d-mini", "conv3d-mini", "dcgan-generator", "dcgan-discriminator", "mobilenet-mini", "efficientnet-mini", "fashion-resnet",
    };

    private static Tensor Random(Shape shape, Random rng, float scale = 1f) =>
        Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray(), shape);

    /// <summary>Running statistics away from their initial 0 and 1, so that folding them is not trivial.</summary>
    private static Parameters RandomState(Network network, Random rng) =>
        Parameters.Of(Initializer.InitState(network).Entries.Select(kv => KeyValuePair.Create(kv.Key, kv.Key.EndsWith("running_var", StringComparison.Ordinal)
            ? Tensor.FromArray(Enumerable.Range(0, kv.Value.Size).Select(_ => (float)(0.5 + rng.NextDouble() * 1.5)).ToArray(), kv.Value.Shape)
            : Random(kv.Value.Shape, rng, 0.5f))));

    private static bool Close(Tensor actual, Tensor expected, bool exact)
    {
        if (actual.Shape != expected.Shape) return false;
        if (exact) return actual.Span.SequenceEqual(expected.Span);
        float scale = 0;
        foreach (var v in expected.Span) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < actual.Size; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= Tolerance * (1 + scale))) return false;
        return true;
    }

    private static void CheckNetwork(Network net, int seed, int batch)
    {
        var rng = new Random(seed);
        var p = Initializer.Init(net, seed);
        var state = RandomState(net, rng);
        var x = Random(net.InputShape.PrependBatch(batch), rng);
        var model = InferenceModel.Compile(net, p, state);
        var expected = Apply.Forward(net, p, x, Mode.Eval, state);
        var actual = model.Predict(x);
        Assert.True(Close(actual, expected, exact: model.FoldedBatchNorms == 0),
            $"seed {seed}, batch {batch}: max |diff| {actual.Span.ToArray().Zip(expected.Span.ToArray(), (a, b) => Math.Abs(a - b)).Max()}");
    }

    [CnnProperty]
    public Property EveryNetworkPredictsWhatApplyComputes() =>
        Prop.ForAll((from name in Gen.Elements(Small) from batch in Gen.Choose(1, 5) from seed in Gen.Choose(0, 100_000) select (name, batch, seed)).ToArbitrary(),
            t => CheckNetwork(Zoo.ByName(t.name), t.seed, t.batch));

    [Theory]
    [InlineData("alexnet")]
    [InlineData("vgg16")]
    [InlineData("vgg-small")]
    [InlineData("googlenet")]
    [InlineData("googlenet-aux")]
    [InlineData("resnet18")]
    public void LargeNetworksPredictWhatApplyComputes(string name) => CheckNetwork(Zoo.ByName(name), 7, 1);

    [Fact]
    public void EveryZooNetworkIsCoveredAboveOrBelow() =>
        Assert.Empty(Zoo.Names.Where(n => !Zoo.Aliases.ContainsKey(n)).Except(Small).Except(new[] { "alexnet", "vgg16", "vgg-small", "googlenet", "googlenet-aux", "resnet18" }));

    [Fact]
    public void BatchNormalisationAndReluAreFoldedIntoTheLayerBefore()
    {
        var net = Zoo.ResNetMini();
        var model = InferenceModel.Compile(net, Initializer.Init(net, 1), Initializer.InitState(net));
        // conv1/bn1 and two or three convolutions with their BN per block (the projection shortcuts' too).
        Assert.Equal(1 + 2 + 3 + 3, model.FoldedBatchNorms);
        // bn1's ReLU and the first ReLU of each block's body.
        Assert.Equal(1 + 3, model.FusedRelus);
    }

    [Fact]
    public void TanhAndSigmoidAreAppliedByTheLayerBefore()
    {
        var lenet = Zoo.LeNet5();
        var model = InferenceModel.Compile(lenet, Initializer.Init(lenet, 1));
        // Both convolutions and the two hidden dense layers are followed by tanh.
        Assert.Equal(4, model.FusedTanhAndSigmoids);
        Assert.Equal(0, model.FusedRelus);
        var net = Network.Create(new Serial(new Conv2d(5, 3, 3), new BatchNorm(), new Sigmoid(), new AvgPool2d(2, 2, 2, 2), new Flatten(),
            new Dense(7), new Sigmoid(), new Tanh(), new Dense(3), new Tanh()), new Shape(2, 9, 9));
        var fused = InferenceModel.Compile(net, Initializer.Init(net, 2), Initializer.InitState(net));
        // The tanh after a fused sigmoid runs alone.
        Assert.Equal(3, fused.FusedTanhAndSigmoids);
        Assert.Equal(1, fused.FoldedBatchNorms);
        CheckNetwork(net, 2, 3);
        CheckNetwork(net, 4, 9);
    }

    /// <summary>Batches past the GEMM's small products (more than four rows), where the dense layers use their packed weights.</summary>
    [Theory]
    [InlineData("simple-convnet", 64)]
    [InlineData("lenet5", 33)]
    [InlineData("keras-cifar", 13)]
    public void LargerBatchesPredictWhatApplyComputes(string name, int batch) => CheckNetwork(Zoo.ByName(name), 11, batch);

    [Fact]
    public void FrozenAndNestedLayersFoldAcrossTheirBoundaries()
    {
        var net = Network.Create(new Serial(new Freeze(new Serial(new Conv2d(6, 3, 3), new BatchNorm())), new Serial(new Relu(), new Flatten(), new Dense(4), new BatchNorm(), new Relu())),
            new Shape(2, 6, 6));
        var model = InferenceModel.Compile(net, Initializer.Init(net, 3), Initializer.InitState(net));
        Assert.Equal(2, model.FoldedBatchNorms);
        Assert.Equal(2, model.FusedRelus);
        CheckNetwork(net, 3, 3);
    }

    /// <summary>
    /// A network with every step kind the compiler specialises: flatten of the input (a copy) and reshape of a step's output
    /// (a view), a convolution on the per-image GEMM path (three filters) with batch norm folded, hard tanh, a depthwise
    /// convolution, padded max and average pooling (the general kernels), concatenation, residual sum, a squeeze-and-excitation
    /// product with global average pooling, ReLU, tanh and sigmoid alone, dropout, and dense layers.
    /// </summary>
    private static Network EveryStepKind() => Network.Create(
        new Serial(
            new Flatten(), new Reshape(2, 12, 12),
            new Conv2d(3, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), HardTanh.Relu6,
            new Conv2d(6, 3, 3, PadH: 1, PadW: 1, Groups: 3),
            new MaxPool2d(3, 3, 2, 2, 1, 1),
            new FanOut(Join.Concat, new Serial(new Conv2d(8, 1, 1), new Relu()), new Identity()),
            new Residual(new Serial(new Conv2d(14, 3, 3, PadH: 1, PadW: 1), new Tanh())),
            new FanOut(Join.Product, new Identity(), new Serial(new GlobalPool(PoolOp.Average), new Conv2d(14, 1, 1), new Sigmoid())),
            new Relu(), new Sigmoid(),
            new AvgPool2d(3, 3, 2, 2, 1, 1, CountIncludePad: false),
            new Dropout(0.5f), new Flatten(), new Dense(7), new Tanh(), new Dense(3)),
        new Shape(2, 12, 12));

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    public void EveryStepKindPredictsWhatApplyComputes(int batch) => CheckNetwork(EveryStepKind(), 13, batch);

    private static InferenceModel Model(Network net, int seed) => InferenceModel.Compile(net, Initializer.Init(net, seed), RandomState(net, new Random(seed)));

    /// <summary>
    /// Managed bytes <paramref name="model"/>'s call on <paramref name="x"/> allocates on the calling thread beyond what
    /// allocating its output alone (a tensor over a fresh array of the same shape) takes: 0 for a bound shape.
    /// </summary>
    private static long BeyondTheOutput(InferenceModel model, Tensor x)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var y = model.Predict(x);
        long call = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        var alone = Tensor.Own(new float[y.Size], y.Shape);
        long output = GC.GetAllocatedBytesForCurrentThread() - before;
        // The output's array and tensor object, nothing else (its shape object is the bound plan's, shared by the calls).
        Assert.InRange(output, 4L * y.Size + 16, 4L * y.Size + 96);
        GC.KeepAlive(alone);
        return call - output;
    }

    [Theory]
    [InlineData("simple-convnet", 1)]
    [InlineData("simple-convnet", 16)]
    [InlineData("lenet5", 1)]
    [InlineData("lenet5", 16)]
    [InlineData("keras-cifar", 1)]
    [InlineData("keras-cifar", 8)]
    [InlineData("resnet18", 1)]
    [InlineData("resnet-mini", 1)]
    [InlineData("resnet-mini", 8)]
    [InlineData("mobilenet-mini", 1)]
    [InlineData("mobilenet-mini", 8)]
    [InlineData("inception-mini", 3)]
    [InlineData("every-step-kind", 1)]
    [InlineData("every-step-kind", 6)]
    public void AWarmCallAllocatesExactlyItsOutput(string name, int batch)
    {
        var net = name == "every-step-kind" ? EveryStepKind() : Zoo.ByName(name);
        var x = Random(net.InputShape.PrependBatch(batch), new Random(5));
        // On threads of their own, so that nothing an earlier test left on this one (its workspaces) hides an allocation.
        // First with the workers free while the model warms up, then held as another call would hold them: this thread then
        // runs every part of the call itself, larger shares than it had run.
        OnANewThread(() =>
        {
            var model = Model(net, 5);
            // The first call binds the plan to the shape (and warms the thread's GEMM buffers and the workspace pool).
            Assert.True(BeyondTheOutput(model, x) > 0);
            model.Predict(x);
            Assert.Equal(0L, BeyondTheOutput(model, x));
            // Another input of the same shape: nothing depends on the input tensor being the same one.
            Assert.Equal(0L, BeyondTheOutput(model, Random(x.Shape, new Random(6))));
            Assert.Equal(0L, WithEveryWorkerHeld(() => BeyondTheOutput(model, x)));
            Assert.Equal(0L, BeyondTheOutput(model, x));
        });
        // Then the other way round: warmed up while other calls hold every worker, then called with the workers free.
        OnANewThread(() =>
        {
            var model = Model(net, 5);
            WithEveryWorkerHeld(() => { model.Predict(x); return model.Predict(x); });
            Assert.Equal(0L, BeyondTheOutput(model, x));
            Assert.Equal(0L, WithEveryWorkerHeld(() => BeyondTheOutput(model, x)));
        });
    }

    /// <summary>Runs <paramref name="check"/> on a new thread and rethrows what it threw.</summary>
    private static void OnANewThread(Action check)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { check(); }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
    }

    /// <summary><paramref name="action"/>'s result, computed while this thread holds every pool worker, as a concurrent call would.</summary>
    private static T WithEveryWorkerHeld<T>(Func<T> action)
    {
        var held = new List<int>();
        // A worker another test's call holds now is free again within that call.
        while (held.Count < WorkerPool.Count)
            for (int w = 0; w < WorkerPool.Count; w++)
                if (!held.Contains(w) && WorkerPool.Worker(w).TryClaim()) held.Add(w);
        try { return action(); }
        finally { foreach (int w in held) WorkerPool.Worker(w).Release(); }
    }

    [Fact]
    public void AFallbackLayerAllocatesOnlyItsOwnWork()
    {
        // SiLU is not specialised: it runs by Apply's rule, the one step of these that allocates.
        var net = Network.Create(new Serial(new Conv2d(8, 3, 3), new Silu(), new Flatten(), new Dense(4)), new Shape(1, 10, 10));
        var model = Model(net, 3);
        var x = Random(net.InputShape.PrependBatch(2), new Random(3));
        for (int i = 0; i < 3; i++) model.Predict(x);
        Assert.InRange(BeyondTheOutput(model, x), 1, 16 * 1024);
        CheckNetwork(net, 3, 2);
    }

    [Fact]
    public void TwoInputShapesStayBoundAndAThirdReplacesTheOlder()
    {
        var net = Zoo.SimpleConvNet();
        var model = Model(net, 9);
        var p = Initializer.Init(net, 9);
        Tensor Batch(int n) => Random(net.InputShape.PrependBatch(n), new Random(n));
        var (full, last, other) = (Batch(8), Batch(3), Batch(5));
        foreach (var x in new[] { full, last, full, last })
        {
            Assert.True(model.Predict(x).Span.SequenceEqual(Apply.Forward(net, p, x, Mode.Eval).Span));
        }
        Assert.Equal(0L, BeyondTheOutput(model, full));
        Assert.Equal(0L, BeyondTheOutput(model, last));
        // A third shape is bound in place of the one used least recently (full); last stays bound.
        Assert.True(model.Predict(other).Span.SequenceEqual(Apply.Forward(net, p, other, Mode.Eval).Span));
        Assert.Equal(0L, BeyondTheOutput(model, last));
        Assert.True(BeyondTheOutput(model, full) > 0);
        Assert.True(model.Predict(full).Span.SequenceEqual(Apply.Forward(net, p, full, Mode.Eval).Span));
    }

    [Fact]
    public void AnOutputStaysValidAfterLaterCalls()
    {
        var net = Zoo.LeNet5();
        var model = Model(net, 4);
        var a = Random(net.InputShape.PrependBatch(4), new Random(1));
        var b = Random(net.InputShape.PrependBatch(4), new Random(2));
        var ya = model.Predict(a);
        var copy = ya.ToArray();
        var yb = model.Predict(b);
        Assert.True(ya.Span.SequenceEqual(copy));
        Assert.False(ya.Span.SequenceEqual(yb.Span));
        Assert.True(model.Predict(a).Span.SequenceEqual(copy));
    }

    [Fact]
    public void ConcurrentCallersGetTheSequentialResults()
    {
        var net = Zoo.ResNetMini();
        var rng = new Random(11);
        var model = InferenceModel.Compile(net, Initializer.Init(net, 11), RandomState(net, rng));
        var inputs = Enumerable.Range(0, 8).Select(i => Random(net.InputShape.PrependBatch(1 + i % 3), rng)).ToArray();
        var sequential = inputs.Select(model.Predict).ToArray();
        var parallel = new Tensor[inputs.Length * 4];
        Parallel.For(0, parallel.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = model.Predict(inputs[i % inputs.Length]));
        for (int i = 0; i < parallel.Length; i++) Assert.True(parallel[i].Span.SequenceEqual(sequential[i % inputs.Length].Span), $"call {i}");
    }

    [Fact]
    public void AWrongInputShapeIsAShapeErrorNamingTheExpectedBatch()
    {
        var net = Zoo.LeNet5();
        var model = InferenceModel.Compile(net, Initializer.Init(net, 1));
        var e = Assert.Throws<ShapeException>(() => model.Predict(Tensor.Zeros(2, 3, 28, 28)));
        Assert.Contains("[N, 1, 28, 28]", e.Message);
    }
}
