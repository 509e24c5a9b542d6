using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Dsl;

public class ZooTests
{
    /// <summary>The zoo's own names (aliases left out), each once.</summary>
    public static TheoryData<string> CanonicalNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Zoo.Names.Where(n => !Zoo.Aliases.ContainsKey(n))) data.Add(name);
        return data;
    }

    /// <summary>
    /// Parameter counts published for the full-size architectures (torchvision, the Keras example and tutorial, the
    /// LeNet-5 paper's layer sizes), and those of the minis, worked out by hand from their layer sizes: the trainable
    /// parameters, and the batch-norm running statistics (2 per channel) that the Keras-style total adds as non-trainable.
    /// </summary>
    [Theory]
    [InlineData("simple-convnet", 433_890)]
    [InlineData("lenet5", 61_706)]
    [InlineData("alexnet", 60_965_224)]
    [InlineData("vgg16", 138_357_544)]
    // 4,800 batch-norm channels.
    [InlineData("resnet18", 11_689_512, 9_600)]
    [InlineData("keras-cifar", 1_250_858)]
    [InlineData("keras-tutorial", 122_570)]
    // conv 1*25*32+32; grouped 16*9*64+64; 64*9*96+96; grouped 48*9*96+96 and 48*9*64+64; dense 256*256+256 twice; 256*10+10.
    [InlineData("alexnet-mini", 832 + 9_280 + 55_392 + 41_568 + 27_712 + 65_792 + 65_792 + 2_570)]
    // block1 3*9*16+16, 16*9*16+16; block2 16*3*32+32, 32*3*32+32, 32*9*32+32; block3 32*9*64+64, 64*64+64; 1024*128+128; 1290.
    [InlineData("vgg-mini", 448 + 2_320 + 1_568 + 3_104 + 9_248 + 18_496 + 4_160 + 131_200 + 1_290)]
    // stem 3*9*32+32; branches 32*16+16 | 32*16+16, 16*9*32+32 | 32*8+8, 8*25*16+16 | 32*16+16; 80*10+10.
    [InlineData("inception-mini", 896 + 528 + 528 + 4_640 + 264 + 3_216 + 528 + 810)]
    // stem 432 + BN 32; block1 2*2,304 + 2*32; block2 4,608 + 9,216 + 2*64 + projection 512 + 64; block3 18,432 + 36,864 + 2*128 + 2,048 + 128; fc 650.
    // Batch-norm channels 16 + 2*16 + 3*32 + 3*64.
    [InlineData("resnet-mini", 464 + 4_672 + 14_528 + 57_728 + 650, 2 * 336)]
    // stem 1*9*32 + BN 64; widen1 32*9*48 + BN 96; res1 2*48*9*48 + 2 BN 96; widen2 48*9*96 + BN 192; res2 2*96*9*96 + 2 BN 192; fc 96*10+10.
    // Batch-norm channels 32 + 3*48 + 3*96.
    [InlineData("fashion-resnet", 352 + 13_920 + 41_664 + 41_664 + 166_272 + 970, 2 * 464)]
    // 100*128*7*7 + BN 256; 128*64*4*4 + BN 128; 64*1*4*4 (no biases); batch-norm channels 128 + 64.
    [InlineData("dcgan-generator", 627_200 + 256 + 131_072 + 128 + 1_024, 2 * 192)]
    // 1*64*4*4 + 64; 64*128*4*4 (no bias) + BN 256; 128*1*7*7 + 1; batch-norm channels 128.
    [InlineData("dcgan-discriminator", 1_088 + 131_072 + 256 + 6_273, 2 * 128)]
    // stem 144 + BN 32; block1 dw 144 + 32, project 128 + 16; block2 expand 256 + 64, dw 288 + 64, project 512 + 32;
    // block3 expand 1,024 + 128, dw 576 + 128, project 1,024 + 32; head 1,024 + 128; fc 650. Batch-norm channels 16 + 24 + 80 + 144 + 64.
    [InlineData("mobilenet-mini", 176 + 320 + 1_216 + 2_912 + 1_152 + 650, 2 * 328)]
    // stem 144 + BN 32; block1 dw 144 + 32, SE 68 + 80, project 256 + 32; block2 expand 1,024 + 128, dw 576 + 128, SE 260 + 320,
    // project 1,536 + 48; block3 expand 2,304 + 192, dw 864 + 192, SE 582 + 672, project 2,304 + 48; head 1,536 + 128; fc 650.
    // Batch-norm channels 16 + 32 + 152 + 216 + 64.
    [InlineData("efficientnet-mini", 176 + 612 + 4_020 + 7_158 + 1_664 + 650, 2 * 480)]
    [InlineData("conv1d-mini", 96 + 2_592 + 330)]
    [InlineData("conv3d-mini", 224 + 3_472 + 170)]
    public void ParameterCountsMatchThePublishedFigures(string name, long trainable, long batchNormStatistics = 0)
    {
        var totals = Summary.Totals(Zoo.ByName(name));
        Assert.Equal(trainable, totals.Trainable);
        Assert.Equal(batchNormStatistics, totals.NonTrainable);
        Assert.Equal(trainable + batchNormStatistics, totals.Parameters);
    }

    /// <summary>The Keras tutorial's model.summary(), layer by layer.</summary>
    [Fact]
    public void TheKerasTutorialNetworkHasTheTutorialsLayerCountsAndShapes()
    {
        var net = Zoo.KerasTutorial();
        var rows = Summary.Rows(net);
        Assert.Equal(new[] { "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "flatten1", "dense1", "relu4", "dense2" }, rows.Select(r => r.Path));
        Assert.Equal(new long[] { 896, 0, 0, 18_496, 0, 0, 36_928, 0, 0, 65_600, 0, 650 }, rows.Select(r => r.Parameters));
        Assert.Equal(new[] { new Shape(32, 30, 30), new Shape(32, 15, 15), new Shape(64, 13, 13), new Shape(64, 6, 6), new Shape(64, 4, 4), new Shape(1024), new Shape(64), new Shape(10) },
            rows.Where(r => r.Type != nameof(Relu)).Select(r => r.OutputShape));
        var totals = Summary.Totals(net);
        Assert.Contains("Total params: 122,570", Summary.Format(net));
        Assert.Equal(122_570, totals.Parameters);
        Assert.Equal(122_570, totals.Trainable);
        Assert.Equal(0, totals.NonTrainable);
        Assert.Equal(Init.GlorotUniform, net.Root.WeightInit);
    }

    [Theory]
    [InlineData("alexnet", new[] { 1000 })]
    [InlineData("vgg16", new[] { 1000 })]
    [InlineData("googlenet", new[] { 1000 })]
    [InlineData("resnet18", new[] { 1000 })]
    [InlineData("dcgan-generator", new[] { 1, 28, 28 })]
    [InlineData("dcgan-discriminator", new[] { 1 })]
    public void LargeNetworksInferTheirOutputShapes(string name, int[] output) =>
        Assert.Equal(new Shape(output), Zoo.ByName(name).OutputShape);

    [Fact]
    public void GoogLeNetsInceptionModulesConcatenateTheirBranches()
    {
        var net = Zoo.GoogLeNet();
        var channels = net.RootNode.Children.Where(n => n.Path.StartsWith("inception", StringComparison.Ordinal)).Select(n => n.Output[0]).ToArray();
        Assert.Equal(new[] { 256, 480, 512, 512, 512, 528, 832, 832, 1024 }, channels);
    }

    [Fact]
    public void EveryNameBuildsAndPrintsItsSummaryAndAnUnknownNameListsThemAll()
    {
        Assert.Equal(Zoo.Names.Count, Zoo.Names.Distinct().Count());
        foreach (var name in Zoo.Names)
        {
            var net = Zoo.ByName(name);
            var text = Summary.Format(net);
            Assert.Contains($"Total params: {Summary.ParameterCount(net):N0}", text);
            Assert.All(net.Leaves, leaf => Assert.Contains(leaf.Path, text));
        }
        foreach (var (alias, name) in Zoo.Aliases) Assert.Equal(Zoo.ByName(name).Root, Zoo.ByName(alias).Root);
        var e = Assert.Throws<CnnException>(() => Zoo.ByName("alexnet-maxi"));
        Assert.All(Zoo.Names, name => Assert.Contains(name, e.Message));
    }

    [Fact]
    public void TheMinisHaveTheIngredientsOfTheirNamesakes()
    {
        var alex = Zoo.AlexNetMini();
        Assert.Equal(2, alex.Leaves.Count(n => n.Layer is Lrn));
        Assert.All(alex.Leaves.Select(n => n.Layer).OfType<MaxPool2d>(), p => Assert.True(p.KernelH > p.StrideH, "AlexNet's pooling overlaps"));
        var dense = alex.Leaves.Select((n, i) => (n.Layer, i)).Where(x => x.Layer is Dense).Select(x => x.i).ToArray();
        Assert.All(dense.Take(2), i => Assert.IsType<Dropout>(alex.Leaves[i - 1].Layer));
        Assert.Equal(new Shape(10), Zoo.AlexNetMini(new Shape(3, 32, 32)).OutputShape);

        var vgg = Zoo.VggMini().Leaves.Select(n => n.Layer).OfType<Conv2d>().Select(c => (c.KernelH, c.KernelW)).ToArray();
        Assert.Contains((1, 3), vgg);
        Assert.Contains((3, 1), vgg);
        Assert.Contains((1, 1), vgg);
        Assert.True(vgg.Count(k => k == (3, 3)) >= 3, "stacks of 3x3");
        var factorised = Zoo.VggMini().Leaves.Where(n => n.Path is "block2/conv1x3" or "block2/conv3x1").ToArray();
        Assert.Equal(new Shape(32, 16, 16), factorised[1].Output);

        var inception = Zoo.InceptionMini().RootNode.Children.Single(n => n.Path == "inception");
        Assert.IsType<FanOut>(inception.Layer);
        Assert.Equal(Join.Concat, ((FanOut)inception.Layer).Join);
        Assert.Equal(new[] { 16, 32, 16, 16 }, inception.Children.Select(b => b.Output[0]));
        Assert.Equal(new Shape(80, 16, 16), inception.Output);
        Assert.IsType<MaxPool2d>(inception.Children[3].Leaves().First().Layer);
        Assert.IsType<GlobalPool>(Zoo.InceptionMini().Leaves[^3].Layer);

        var res = Zoo.ResNetMini();
        var blocks = res.RootNode.Children.Where(n => n.Path.StartsWith("block", StringComparison.Ordinal)).ToArray();
        Assert.Equal(new[] { new Shape(16, 32, 32), new Shape(32, 16, 16), new Shape(64, 8, 8) }, blocks.Select(b => b.Output));
        var shortcuts = blocks.Select(b => ((Residual)b.Children[0].Layer).Shortcut).ToArray();
        Assert.Null(shortcuts[0]);
        Assert.All(shortcuts.Skip(1), s => Assert.Contains(((Serial)s!).Layers, l => l is Conv2d { KernelH: 1, StrideH: 2 }));
        Assert.True(res.Leaves.Count(n => n.Layer is BatchNorm) == 1 + 2 + 3 + 3, "BN after every conv and each projection");
        Assert.IsType<GlobalPool>(res.Leaves[^3].Layer);
    }

    [Fact]
    public void TheDcganGeneratorMapsALatentVectorToADigitSizedImageWithNormalWeights()
    {
        var net = Zoo.DcganGenerator();
        Assert.Equal(new Shape(100, 1, 1), net.InputShape);
        var deconvs = net.Leaves.Where(n => n.Layer is ConvTranspose2d).Select(n => n.Output).ToArray();
        Assert.Equal(new[] { new Shape(128, 7, 7), new Shape(64, 14, 14), new Shape(1, 28, 28) }, deconvs);
        Assert.IsType<Tanh>(net.Leaves[^1].Layer);
        var w = Initializer.Init(net, 1)["deconv1/weight"].ToArray();
        double std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.0195, 0.0205);
        var z = Tensor.FromArray(Enumerable.Range(0, 300).Select(i => MathF.Sin(i)).ToArray(), 3, 100, 1, 1);
        var images = Apply.Forward(net, Initializer.Init(net, 1), z, Mode.Train, Initializer.InitState(net));
        Assert.All(images.ToArray(), v => Assert.InRange(v, -1f, 1f));
    }

    /// <summary>
    /// One optimizer step through <c>Trainer.Fit</c> (the generator, whose output is an image, and the discriminator, whose
    /// output is one logit: one step of mean-squared error towards a target). Every trainable parameter must move and stay finite.
    /// </summary>
    [Theory]
    [MemberData(nameof(CanonicalNames))]
    public void EveryZooNetworkTrainsForOneStep(string name)
    {
        var net = StepSized(name);
        var p = Initializer.Init(net, 1);
        var rng = new Random(2);
        const int n = 2;
        var x = Tensor.FromArray(Enumerable.Range(0, n * net.InputShape.Size).Select(_ => rng.NextSingle()).ToArray(), net.InputShape.PrependBatch(n));
        Parameters after;
        // A classifier trains on labels; a generator's image and a discriminator's one logit (softmax over one class has
        // no gradient) take a step of squared error instead.
        if (net.OutputShape.Rank == 1 && net.OutputShape[0] > 1)
        {
            var data = new LabeledData(x, new[] { 0, 1 }, net.OutputShape[0]);
            var result = Trainer.Fit(net, p, data, new TrainOptions(1, n, new Sgd(0.01f), Seed: 3));
            Assert.Single(result.History);
            Assert.True(float.IsFinite(result.History[0].TrainLoss));
            Assert.Equal(1, result.OptimizerState.Step);
            after = result.Parameters;
        }
        else
        {
            var state = Initializer.InitState(net);
            var f = Apply.WithPullback(net, p, x, Mode.Train, state, seed: 3);
            var target = Tensor.Full(f.Output.Shape, 0.5f);
            var dy = f.Output.ToArray();
            for (int i = 0; i < dy.Length; i++) dy[i] = 2 * (dy[i] - target[i]) / dy.Length;
            var g = f.Pullback(Tensor.Own(dy, f.Output.Shape));
            var optimizer = new Adam(1e-3f);
            after = optimizer.Step(p, g.Parameters, optimizer.Init(p)).Parameters;
        }
        Assert.Equal(p.Paths, after.Paths);
        foreach (var path in p.Paths)
        {
            Assert.All(after[path].ToArray(), v => Assert.True(float.IsFinite(v), $"{name}: {path} is not finite after a step"));
            if (!ScaleInvariantAtInitialisation.Contains((name, path)))
                Assert.False(p[path].Span.SequenceEqual(after[path].Span), $"{name}: {path} did not move in a step");
        }
    }

    /// <summary>
    /// The γ of a batch norm followed by ReLU6 and a depthwise (per-channel) convolution into a training-mode batch norm: at
    /// initialisation (β = 0, no value near the clip at 6) ReLU6 is positively homogeneous, so the second normalisation undoes
    /// any scaling by γ and its gradient is zero in exact arithmetic (MobileNet v2's stem and expansion layers). It moves once
    /// β has.
    /// </summary>
    private static readonly HashSet<(string Network, string Path)> ScaleInvariantAtInitialisation = new()
    {
        ("mobilenet-mini", "stem/bn1/weight"), ("mobilenet-mini", "block2/bn1/weight"), ("mobilenet-mini", "block3/block/bn1/weight"),
    };

    /// <summary>
    /// The network a one-step test trains: the zoo's own, except that the full-size ImageNet networks run on a
    /// smaller image (GoogLeNet with heads on 96x96, where their 5x5 pooling still fits) (the same layer tree, so the same code paths; only the dense layer after the flatten shrinks), since a
    /// step of VGG-16 at 224x224 is about 45 GFLOP and minutes on two cores. Their full-size shapes and parameter counts
    /// are checked above.
    /// </summary>
    private static Network StepSized(string name)
    {
        var net = Zoo.ByName(name);
        int? side = name switch { "alexnet" => 67, "vgg16" => 32, "googlenet" => 64, "googlenet-aux" => 96, "resnet18" => 32, _ => null };
        return side is int s ? Network.Create(net.Root, new Shape(3, s, s)) : net;
    }

    [Fact]
    public void InitialisersDrawWithTheirStatedSpreadAndPerPathStreams()
    {
        var layer = new Serial(new Dense(400).Named("a"), new Dense(300).Named("b"));
        var net = Network.Create(layer, new Shape(500));
        var glorot = Initializer.Init(net, 1, Init.GlorotUniform)["b/weight"].ToArray();
        double bound = Math.Sqrt(6.0 / (400 + 300));
        Assert.All(glorot, v => Assert.True(Math.Abs(v) <= bound));
        Assert.True(glorot.Max() > 0.95 * bound && glorot.Min() < -0.95 * bound);
        var he = Initializer.Init(net, 1, Init.HeNormal)["b/weight"].ToArray();
        double std = Math.Sqrt(he.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.97 * Math.Sqrt(2.0 / 400), 1.03 * Math.Sqrt(2.0 / 400));
        Assert.All(Initializer.Init(net, 1, Init.HeNormal)["b/bias"].ToArray(), v => Assert.Equal(0f, v));
        // Per-layer choice overrides the default, and adding a layer leaves the others' values as they were.
        var mixed = Network.Create(new Serial(new Dense(400).Named("a"), new Dense(300).Named("b").InitWith(Init.Zeros)), new Shape(500));
        Assert.All(Initializer.Init(mixed, 1)["b/weight"].ToArray(), v => Assert.Equal(0f, v));
        var grown = Network.Create(new Serial(new Dense(400).Named("a"), new Relu(), new Dense(300).Named("b"), new Dense(7).Named("c")), new Shape(500));
        Assert.True(Initializer.Init(grown, 1)["a/weight"].Span.SequenceEqual(Initializer.Init(net, 1)["a/weight"].Span));
    }
}
