using System.Collections.Immutable;
using System.Text;
using System.Text.Json.Nodes;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.IO;

public class NetworkJsonTests
{
    // ---------------------------------------------------------------- generators

    /// <summary>Any finite float, from its bits (so exact round trips of awkward values are tested).</summary>
    private static Gen<float> AnyFinite() =>
        from hi in Gen.Choose(0, 0xFFFF)
        from lo in Gen.Choose(0, 0xFFFF)
        let f = BitConverter.Int32BitsToSingle((hi << 16) | lo)
        where float.IsFinite(f)
        select f;

    /// <summary>A float in [0, 1), common values and arbitrary ones.</summary>
    private static Gen<float> Unit() => Gen.OneOf(
        Gen.Elements(0f, 0.1f, 0.5f, 0.3f, 1e-7f, MathF.BitDecrement(1f)),
        Gen.Choose(0, 1 << 23).Select(i => i / (float)(1 << 24) * 2f).Where(f => f < 1f));

    private static Gen<int> Pos() => Gen.Frequency((4, Gen.Choose(1, 9)), (1, Gen.Elements(1 << 20, int.MaxValue)));

    private static Gen<int> NonNeg() => Gen.Frequency((4, Gen.Choose(0, 4)), (1, Gen.Elements(1000, int.MaxValue)));

    private static Gen<bool> Bool() => Gen.Elements(true, false);

    /// <summary>Per-axis sizes: one time in two the same on every axis (written as one number), else drawn per axis (an array).</summary>
    private static Gen<Size2> Size2s(Gen<int> axis) => Gen.OneOf(axis.Select(v => (Size2)v), from h in axis from w in axis select new Size2(h, w));

    private static Gen<Size3> Size3s(Gen<int> axis) =>
        Gen.OneOf(axis.Select(v => (Size3)v), from d in axis from h in axis from w in axis select new Size3(d, h, w));

    private static Gen<string?> Names() => Gen.Elements<string?>(null, null, null, "conv1", "a", "block 2", "é\"\\<>&'\n", "日本", "x/y", "", "\u2028");

    private static Gen<Init?> Inits() => Gen.OneOf(
        Gen.Elements<Init?>(null, null, Init.PyTorch, Init.GlorotUniform, Init.HeNormal, Init.Zeros, Init.Normal(0.02f)),
        AnyFinite().Select(s => (Init?)Init.Normal(s)));

    /// <summary>One generator per leaf layer type, every property drawn from the range the format accepts.</summary>
    private static readonly Gen<Layer>[] LeafGens =
    {
        from f in Pos() from k in Pos() from s in Pos() from p in NonNeg() from b in Bool() from d in Pos() from g in Pos()
        select (Layer)new Conv1d(f, k, s, p, b, d, g),
        from f in Pos() from kh in Pos() from kw in Pos() from sh in Pos() from sw in Pos() from ph in NonNeg() from pw in NonNeg()
        from b in Bool() from dh in Pos() from dw in Pos() from g in Pos()
        select (Layer)new Conv2d(f, kh, kw, sh, sw, ph, pw, b, dh, dw, g),
        from f in Pos() from k in Size3s(Pos()) from s in Size3s(Pos()) from p in Size3s(NonNeg()) from b in Bool() from d in Size3s(Pos()) from g in Pos()
        select (Layer)new Conv3d(f, k, s, p, b, d, g),
        from f in Pos() from k in Pos() from s in Pos() from p in NonNeg() from op in Gen.Choose(0, s - 1) from b in Bool() from d in Pos() from g in Pos()
        select (Layer)new ConvTranspose1d(f, k, s, p, op, b, d, g),
        from f in Pos() from k in Size2s(Pos()) from s in Size2s(Pos()) from p in Size2s(NonNeg()) from oph in Gen.Choose(0, s.H - 1) from opw in Gen.Choose(0, s.W - 1)
        from b in Bool() from d in Size2s(Pos()) from g in Pos()
        select (Layer)new ConvTranspose2d(f, k, s, p, (oph, opw), b, d, g),
        from f in Pos() from k in Size3s(Pos()) from s in Size3s(Pos()) from p in Size3s(NonNeg()) from opd in Gen.Choose(0, s.D - 1) from oph in Gen.Choose(0, s.H - 1)
        from opw in Gen.Choose(0, s.W - 1) from b in Bool() from d in Size3s(Pos()) from g in Pos()
        select (Layer)new ConvTranspose3d(f, k, s, p, (opd, oph, opw), b, d, g),
        from kh in Pos() from kw in Pos() from sh in Pos() from sw in Pos() from ph in Gen.Choose(0, Math.Min(kh / 2, 5)) from pw in Gen.Choose(0, Math.Min(kw / 2, 5))
        from c in Bool() select (Layer)new MaxPool2d(kh, kw, sh, sw, ph, pw, c),
        from kh in Pos() from kw in Pos() from sh in Pos() from sw in Pos() from ph in Gen.Choose(0, Math.Min(kh / 2, 5)) from pw in Gen.Choose(0, Math.Min(kw / 2, 5))
        from c in Bool() from i in Bool() select (Layer)new AvgPool2d(kh, kw, sh, sw, ph, pw, c, i),
        from op in Gen.Elements(PoolOp.Max, PoolOp.Average) from k in Pos() from s in Pos() from p in Gen.Choose(0, Math.Min(k / 2, 5)) from i in Bool()
        select (Layer)new PoolNd(op, k, s, p, i),
        Gen.Elements(PoolOp.Max, PoolOp.Average).Select(op => (Layer)new GlobalPool(op)),
        from k in Pos() from s in Pos() select (Layer)new ChannelMaxPool(k, s),
        from k in Pos() from s in Pos() select (Layer)new ChannelAvgPool(k, s),
        Gen.Constant((Layer)new Relu()),
        AnyFinite().Select(s => (Layer)new LeakyRelu(s)),
        AnyFinite().Select(a => (Layer)new Elu(a)),
        Gen.Constant((Layer)new Sigmoid()),
        Gen.Constant((Layer)new Tanh()),
        from lo in AnyFinite() from hi in AnyFinite() select (Layer)new HardTanh(lo, hi),
        from lo in AnyFinite() from hi in AnyFinite() from open in Gen.Choose(0, 2)
        select (Layer)new HardTanh(open == 1 ? lo : float.NegativeInfinity, open == 0 ? hi : float.PositiveInfinity),
        Gen.Constant((Layer)new HardSigmoid()),
        from op in Gen.Choose(0, 3) from dims in Gen.ArrayOf(Gen.Choose(1, 6), 3) select (Layer)new ConstantOperand((Cnn.Core.Kernels.BinaryOp)op, dims),
        from alpha in AnyFinite() from beta in AnyFinite() select (Layer)new HardSigmoid(alpha, beta),
        Gen.Constant((Layer)new HardSwish()),
        Gen.Constant((Layer)new Silu()),
        Gen.Constant((Layer)new Gelu()),
        Gen.Elements(-1, 1, 2, -3, int.MinValue, int.MaxValue).Select(a => (Layer)new Softmax(a)),
        Gen.Elements(-1, 1, 3).Select(a => (Layer)new LogSoftmax(a)),
        from m in Gen.OneOf(Unit(), Gen.Constant(1f)) from e in Gen.OneOf(Gen.Elements(1e-5f, 1e-3f, float.Epsilon, float.MaxValue), AnyFinite().Where(x => x > 0))
        select (Layer)new BatchNorm(m, e),
        from n in Pos() from a in AnyFinite() from b in AnyFinite() from k in AnyFinite() select (Layer)new Lrn(n, a, b, k),
        Unit().Select(p => (Layer)new Dropout(p)),
        Gen.Constant((Layer)new Flatten()),
        Gen.Choose(0, 4).SelectMany(rank => Gen.ArrayOf(Gen.Choose(0, 30), rank)).Select(d => (Layer)new Reshape(d)),
        Gen.Constant((Layer)new Identity()),
        Pos().Select(g => (Layer)new ChannelShuffle(g)),
        from rank in Gen.Choose(1, 4) from keys in Gen.ArrayOf(Gen.Choose(0, 99), rank)
        select (Layer)new Permute(Enumerable.Range(0, rank).OrderBy(i => keys[i]).ThenBy(i => i).ToArray()),
        from s in NonNeg() from n in Pos() select (Layer)new ChannelSlice(s, n),
        from t in NonNeg() from b in NonNeg() from m in Gen.Elements(PadMode.Constant, PadMode.Reflect, PadMode.Edge) from v in AnyFinite()
        select (Layer)new Pad2d(t, b, b, t, m, v),
        from u in Pos() from b in Bool() select (Layer)new Dense(u, b),
        Pos().Select(u => (Layer)new MatMul(u)),
    };

    private static Gen<Layer> Decorated(Gen<Layer> layers) =>
        from l in layers from name in Names() from init in Inits() select l with { Name = name, WeightInit = init };

    /// <summary>
    /// Random layer trees: every leaf kind, and every combinator nested in every other. The generators of smaller trees are
    /// built once per size: each is built when this one is, so building two of size - 1 per level would take 2^size.
    /// </summary>
    private static Gen<Layer> Tree(int size)
    {
        if (size <= 1) return Decorated(Gen.OneOf(LeafGens));
        var smaller = Tree(size - 1);
        var half = Tree(size / 2);
        return Gen.Frequency(
            (3, Decorated(Gen.OneOf(LeafGens))),
            (2, Decorated(Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(Tree(size / n), n)).Select(c => (Layer)new Serial(c)))),
            (2, Decorated(from j in Gen.Elements(Join.Sum, Join.Concat, Join.Product) from n in Gen.Choose(1, 3) from c in Gen.ArrayOf(Tree(size / n), n)
                select (Layer)new FanOut(j, c))),
            (2, Decorated(from b in half from s in Gen.OneOf(Gen.Constant<Layer?>(null), half.Select(l => (Layer?)l))
                select (Layer)new Residual(b, s))),
            (1, Decorated(smaller.Select(l => (Layer)new Freeze(l)))),
            (1, Decorated(from h in smaller from w in AnyFinite() select (Layer)new AuxiliaryHead(h, MathF.Abs(w)))));
    }

    private static Gen<Layer> Trees() => Gen.Sized(s => Tree(Math.Min(s, 24)));

    /// <summary>Valid networks on a [C, 6, 6] input: shape-preserving blocks of every kind that runs on images, then a head.</summary>
    private static Gen<Block> Blocks(int c, int size) => size <= 1
        ? Gen.OneOf(SimpleBlocks(c))
        : Gen.Frequency(
            (3, Gen.OneOf(SimpleBlocks(c))),
            (1, Gen.Choose(1, 3).SelectMany(n => Gen.ArrayOf(Blocks(c, size / n), n)).Select(b => new Block(new Serial(b.Select(x => x.Layer))))),
            (1, from n in Gen.Choose(1, 3) from b in Gen.ArrayOf(Blocks(c, size / n), n) select new Block(FanOut.Sum(b.Select(x => x.Layer).ToArray()))),
            (1, from n in Gen.Choose(1, 3) from b in Gen.ArrayOf(Blocks(c, size / n), n)
                select new Block(new Serial(FanOut.Concat(b.Select(x => x.Layer).ToArray()), new Conv2d(c, 1, 1)))),
            (1, from b in Blocks(c, size / 2) from projection in Bool()
                select new Block(new Residual(b.Layer, projection ? new Conv2d(c, 1, 1, UseBias: false) : null))),
            (1, Blocks(c, size / 2).Select(b => new Block(new Freeze(b.Layer)))),
            (1, from b in Blocks(c, size / 2) from init in Inits().Where(i => i is not null) select new Block(b.Layer with { WeightInit = init })));

    /// <summary>A layer wrapper, so that FsCheck does not try to shrink or compare records by reflection.</summary>
    private sealed record Block(Layer Layer);

    private static Gen<Block>[] SimpleBlocks(int c) =>
    [
        from k in Gen.Choose(0, 1) from b in Bool() select new Block(new Conv2d(c, 2 * k + 1, 2 * k + 1, PadH: k, PadW: k, UseBias: b)),
        Gen.Choose(1, 2).Select(s => new Block(new Serial(new ConvTranspose2d(c, s == 1 ? 1 : 4, s, Pad: s / 2), new MaxPool2d(s, s, s, s)))),
        from m in Unit() select new Block(new BatchNorm(m)),
        Gen.Elements<Layer>(new Relu(), new Sigmoid(), new Tanh(), new Identity(), new LeakyRelu(0.2f), new Elu(0.7f),
            new Softmax(1), new LogSoftmax(-1), new Lrn(3, 1e-3f, 0.75f, 2f), new Dropout(0.25f),
            new AvgPool2d(3, 3, 1, 1, 1, 1, CountIncludePad: false), new MaxPool2d(3, 3, 1, 1, 1, 1, CeilMode: true)).Select(l => new Block(l)),
    ];

    private static Gen<(Network Net, int Seed)> Networks() =>
        from c in Gen.Choose(1, 3)
        from body in Gen.Sized(s => Blocks(c, Math.Min(s, 12)))
        from head in Gen.Elements<Layer>(new GlobalPool(PoolOp.Average), new GlobalPool(PoolOp.Max), new Identity())
        from classes in Gen.Choose(1, 4)
        from seed in Gen.Choose(0, 9999)
        select (Network.Create(new Serial(body.Layer, head, new Flatten(), new Dense(classes)), new Shape(c, 6, 6)), seed);

    // ---------------------------------------------------------------- round trips

    [Property(MaxTest = 300)]
    public Property EveryLayerTreeRoundTripsToAnEqualValueAndTheSameJson() =>
        Prop.ForAll(Trees().Select(l => new Block(l)).ToArbitrary(), b =>
        {
            var json = NetworkJson.SerializeLayer(b.Layer);
            var back = NetworkJson.DeserializeLayer(json, "tree");
            var indented = NetworkJson.DeserializeLayer(NetworkJson.SerializeLayer(b.Layer, indented: true), "indented");
            return (back.Equals(b.Layer) && indented.Equals(b.Layer) && NetworkJson.SerializeLayer(back) == json).Label(json);
        });

    /// <summary>The serializer has a case for every concrete layer type of the library, and the generators draw each of them.</summary>
    [Fact]
    public void EveryLayerTypeOfTheLibraryIsDescribedAndGenerated()
    {
        var library = typeof(Layer).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(Layer)) && !t.IsAbstract && t.IsPublic).Select(t => t.Name).ToHashSet();
        var generated = LeafGens.Select(g => g.Sample(1, 1).First().GetType().Name)
            .Concat(new[] { nameof(Serial), nameof(FanOut), nameof(Residual), nameof(Freeze), nameof(AuxiliaryHead) }).ToHashSet();
        Assert.Equal(library.Order(), generated.Order());
        foreach (var g in LeafGens)
        {
            var l = g.Sample(5, 1).First();
            Assert.Equal($"\"{l.GetType().Name}\"", JsonNode.Parse(NetworkJson.SerializeLayer(l))!["type"]!.ToJsonString());
        }
    }

    public static TheoryData<string> ZooNames() => new(Zoo.Names);

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void EveryZooNetworkRoundTrips(string name)
    {
        var net = Zoo.ByName(name);
        var json = NetworkJson.Serialize(net);
        var back = NetworkJson.Deserialize(json, name);
        Assert.Equal(net.Root, back.Root);
        Assert.Equal(net.InputShape, back.InputShape);
        Assert.Equal(net.Strict, back.Strict);
        Assert.Equal(net.OutputShape, back.OutputShape);
        Assert.Equal(json, NetworkJson.Serialize(back));
        Assert.Equal(net.Root, NetworkJson.Deserialize(NetworkJson.Serialize(net, indented: true), name).Root);
    }

    [Fact]
    public void TheFormatIsExplicitAndReadable()
    {
        var net = Network.Create(new Serial(new Conv2d(30, 5, 5).Named("conv1"), new Relu(), new Flatten(), new Dense(10))
            { WeightInit = Init.Normal(0.02f) }, new Shape(1, 28, 28), strict: true);
        Assert.Equal(
            """{"format":"cnn-dsl-network/1","input":[1,28,28],"strict":true,"layer":{"type":"Serial","name":null,"weightInit":{"scheme":"normal","std":0.02},"layers":[""" +
            """{"type":"Conv2d","name":"conv1","weightInit":null,"filters":30,"kernelH":5,"kernelW":5,"strideH":1,"strideW":1,"padH":0,"padW":0,"useBias":true,"dilationH":1,"dilationW":1,"groups":1},""" +
            """{"type":"Relu","name":null,"weightInit":null},{"type":"Flatten","name":null,"weightInit":null},""" +
            """{"type":"Dense","name":null,"weightInit":null,"units":10,"useBias":true}]}}""",
            NetworkJson.Serialize(net));
    }

    // ---------------------------------------------------------------- refusals

    /// <summary>Replaces the value at a path of the simple convnet's description and returns the error message.</summary>
    private static string Refusal(Action<JsonObject> edit)
    {
        var doc = JsonNode.Parse(NetworkJson.Serialize(Zoo.SimpleConvNet()))!.AsObject();
        edit(doc);
        return Assert.Throws<FormatException>(() => NetworkJson.Deserialize(doc.ToJsonString(), "edited.json")).Message;
    }

    private static JsonObject Child(JsonObject doc, int i) => doc["layer"]!["layers"]![i]!.AsObject();

    [Fact]
    public void ErrorsNameTheSourceAndTheJsonPath()
    {
        Assert.Contains("'edited.json': $.layer.layers[0].filters: expected an integer >= 1; found 0", Refusal(d => Child(d, 0)["filters"] = 0));
        Assert.Contains("$.layer.layers[0].filters: expected an integer >= 1; found the string \"30\"", Refusal(d => Child(d, 0)["filters"] = "30"));
        Assert.Contains("$.layer.layers[0].filters: expected an integer >= 1; found 2.5", Refusal(d => Child(d, 0)["filters"] = 2.5));
        Assert.Contains("$.layer.layers[0].filters: expected an integer >= 1; found 3000000000", Refusal(d => Child(d, 0)["filters"] = 3_000_000_000L));
        Assert.Contains("$.layer.layers[0].useBias: expected true or false; found 1", Refusal(d => Child(d, 0)["useBias"] = 1));
        Assert.Contains("$.layer.layers[0].padH: expected an integer >= 0; found -1", Refusal(d => Child(d, 0)["padH"] = -1));
        Assert.Contains("$.layer.layers[0].groups: missing property", Refusal(d => Child(d, 0).Remove("groups")));
        Assert.Contains("$.layer.layers[0].bias: unexpected property", Refusal(d => Child(d, 0)["bias"] = true));
        Assert.Contains("$.layer.layers[0][\"a b\"]: unexpected property", Refusal(d => Child(d, 0)["a b"] = true));
        Assert.Contains("$.layer.layers[1].type: unknown layer type \"ReLU\"", Refusal(d => Child(d, 1)["type"] = "ReLU"));
        Assert.Contains("$.layer.layers[1].name: expected a string; found 7", Refusal(d => Child(d, 1)["name"] = 7));
        Assert.Contains("$.layer.layers[1].weightInit.scheme: expected \"pytorch\"", Refusal(d => Child(d, 1)["weightInit"] = new JsonObject { ["scheme"] = "xavier" }));
        Assert.Contains("$.layer.layers[1].weightInit.std: missing property", Refusal(d => Child(d, 1)["weightInit"] = new JsonObject { ["scheme"] = "normal" }));
        Assert.Contains("$.layer.layers[1].weightInit.std: unexpected property",
            Refusal(d => Child(d, 1)["weightInit"] = new JsonObject { ["scheme"] = "zeros", ["std"] = 1 }));
        Assert.Contains("$.layer.layers[2].padH: expected an integer in [0, 1]; found 5", Refusal(d => Child(d, 2)["padH"] = 5));
        Assert.Contains("$.layer.layers: expected at least one layer", Refusal(d => d["layer"]!["layers"] = new JsonArray()));
        Assert.Contains("$.layer.layers[3]: expected an object; found an array", Refusal(d => d["layer"]!["layers"]![3] = new JsonArray()));
        Assert.Contains("$.format: expected \"cnn-dsl-network/1\"; found \"cnn-dsl-network/2\"", Refusal(d => d["format"] = "cnn-dsl-network/2"));
        Assert.Contains("$.input[1]: expected an integer >= 0; found -28", Refusal(d => d["input"]![1] = -28));
        Assert.Contains("$.strict: expected true or false; found null", Refusal(d => d["strict"] = null));
        Assert.Contains("$.layer: the network does not fit its input [1, 3, 3]", Refusal(d => d["input"] = new JsonArray(1, 3, 3)));
    }

    [Fact]
    public void FloatsAreCheckedForRangeAndFiniteness()
    {
        Layer Read(string props) => NetworkJson.DeserializeLayer("{\"type\":" + props + ",\"name\":null,\"weightInit\":null}", "f");
        string Refused(string props) => Assert.Throws<FormatException>(() => Read(props)).Message;
        Assert.Equal(new Dropout(0.5f), Read("\"Dropout\",\"p\":0.5"));
        Assert.Contains("$.p: expected a number in [0, 1); found 1", Refused("\"Dropout\",\"p\":1"));
        Assert.Contains("$.momentum: expected a number in [0, 1]; found -0.1", Refused("\"BatchNorm\",\"momentum\":-0.1,\"epsilon\":1e-5"));
        Assert.Contains("$.epsilon: expected a finite number > 0; found 0", Refused("\"BatchNorm\",\"momentum\":0.1,\"epsilon\":0"));
        Assert.Contains("$.slope: expected a finite number; found 1e39", Refused("\"LeakyRelu\",\"slope\":1e39"));
        Assert.Contains("$.axis: axis 0 is the batch axis", Refused("\"Softmax\",\"axis\":0"));
        Assert.Contains("$.op: expected \"max\" or \"average\"", Refused("\"GlobalPool\",\"op\":\"Max\""));
        Assert.Contains("$.join: expected \"sum\", \"concat\" or \"product\"", Refused("\"FanOut\",\"join\":\"add\",\"branches\":[]"));
        Assert.Contains("$.name: the property appears twice", Refused("\"Relu\",\"name\":\"b\""));
        Assert.Contains("$.outputPad: expected an integer in [0, 1]; found 2",
            Refused("\"ConvTranspose2d\",\"filters\":1,\"kernel\":1,\"stride\":2,\"pad\":0,\"outputPad\":2,\"useBias\":true"));
        Assert.Contains("$.target: A tensor of shape", Refused("\"Reshape\",\"target\":[65536,65536]"));
    }

    /// <summary>Files written when Conv3d and ConvTranspose2d were square-only (no dilation, no groups) still read, as the same layers.</summary>
    [Fact]
    public void SquareOnlyConvolutionFilesOfEarlierVersionsStillRead()
    {
        Layer Read(string props) => NetworkJson.DeserializeLayer("{\"type\":" + props + ",\"name\":null,\"weightInit\":null}", "old");
        Assert.Equal(new Conv3d(8, 3, Stride: 2, Pad: 1, UseBias: false), Read("\"Conv3d\",\"filters\":8,\"kernel\":3,\"stride\":2,\"pad\":1,\"useBias\":false"));
        Assert.Equal(new ConvTranspose2d(4, 4, Stride: 2, Pad: 1, OutputPad: 1),
            Read("\"ConvTranspose2d\",\"filters\":4,\"kernel\":4,\"stride\":2,\"pad\":1,\"outputPad\":1,\"useBias\":true"));
        // An option that differs between axes is an array; one that does not stays one number, as those files have it.
        Assert.Equal(3, (int)JsonNode.Parse(NetworkJson.SerializeLayer(new Conv3d(2, 3)))!["kernel"]!);
        Assert.Equal(new int[] { 1, 2, 3 }, JsonNode.Parse(NetworkJson.SerializeLayer(new Conv3d(2, (1, 2, 3))))!["kernel"]!.AsArray().Select(n => (int)n!).ToArray());
    }

    [Fact]
    public void WhatCannotBeReadBackCannotBeWritten()
    {
        Assert.Throws<ArgumentException>(() => NetworkJson.SerializeLayer(new LeakyRelu(float.NaN)));
        Assert.Throws<ArgumentException>(() => NetworkJson.SerializeLayer(new Relu { WeightInit = Init.Normal(float.PositiveInfinity) }));
        Assert.Throws<ArgumentException>(() => NetworkJson.SerializeLayer(Nest(NetworkJson.MaxDepth + 1)));
    }

    private static Layer Nest(int depth)
    {
        Layer l = new Relu();
        for (int i = 1; i < depth; i++) l = i % 3 == 0 ? new Serial(l) : i % 3 == 1 ? new Freeze(l) : new Residual(l);
        return l;
    }

    [Fact]
    public void NestingIsLimited()
    {
        var deepest = Nest(NetworkJson.MaxDepth);
        Assert.Equal(deepest, NetworkJson.Deserialize(NetworkJson.Serialize(Network.Create(deepest, new Shape(3))), "deep").Root);

        string tooDeep = Wrap(NetworkJson.SerializeLayer(Nest(NetworkJson.MaxDepth)));
        Assert.Contains("nest deeper than 64", Assert.Throws<FormatException>(() => NetworkJson.DeserializeLayer(tooDeep, "deep")).Message);

        var serials = new StringBuilder();
        for (int i = 0; i < 10_000; i++) serials.Append("{\"type\":\"Serial\",\"name\":null,\"weightInit\":null,\"layers\":[");
        Assert.Contains("'hostile'", Assert.Throws<FormatException>(() => NetworkJson.DeserializeLayer(serials.ToString(), "hostile")).Message);
        Assert.Contains("'arrays'", Assert.Throws<FormatException>(() => NetworkJson.DeserializeLayer(new string('[', 100_000), "arrays")).Message);
    }

    /// <summary>A layer's description, spliced by hand: the serializer itself refuses to write one too deep.</summary>
    private static string Wrap(string inner) => "{\"type\":\"Freeze\",\"name\":null,\"weightInit\":null,\"inner\":" + inner + "}";

    // ---------------------------------------------------------------- mutations

    private static readonly string[] Bases = new[] { "simple-convnet", "resnet-mini", "inception-mini", "dcgan-generator", "conv1d-mini" }
        .Select(n => NetworkJson.Serialize(Zoo.ByName(n))).ToArray();

    private static readonly string[] Tokens =
        ["\"x\"", "true", "null", "[]", "{}", "-1", "0", "1e999", "2147483648", "1.5", "\"\\ud800\"", "\"Serial\"", "\"normal\"", "\"\\u0000\""];

    private const string Chars = "{}[]\",:-.0123456789eEtrufalsn \\/u\ud800é\0";

    private static string Mutate(string json, int kind, int pos, int len, int pick)
    {
        int at = pos % (json.Length + 1);
        int end = Math.Min(json.Length, at + len);
        char c = Chars[pick % Chars.Length];
        return kind switch
        {
            0 => json[..at],
            1 => json.Remove(at, end - at),
            2 => json.Insert(at, c.ToString()),
            3 => at < json.Length ? json.Remove(at, 1).Insert(at, c.ToString()) : json + c,
            4 => ReplaceValue(json, at, Tokens[pick % Tokens.Length]),
            _ => json.Insert(at, json[at..end]),
        };
    }

    /// <summary>Replaces the JSON value after the first ':' at or after a position.</summary>
    private static string ReplaceValue(string json, int at, string token)
    {
        int colon = json.IndexOf(':', at);
        if (colon < 0) return json;
        int depth = 0, i = colon + 1;
        bool inString = false;
        for (; i < json.Length; i++)
        {
            char ch = json[i];
            if (inString) { if (ch == '\\') i++; else if (ch == '"') inString = false; continue; }
            if (ch == '"') inString = true;
            else if (ch is '{' or '[') depth++;
            else if (ch is '}' or ']') { if (depth-- == 0) break; }
            else if (ch == ',' && depth == 0) break;
        }
        return json[..(colon + 1)] + token + json[i..];
    }

    [Property(MaxTest = 600)]
    public Property MutatedDescriptionsGiveOnlyFormatExceptionsOrValidNetworks() =>
        Prop.ForAll((from b in Gen.Choose(0, Bases.Length - 1)
                     from kind in Gen.Choose(0, 5)
                     from pos in Gen.Choose(0, 40_000)
                     from len in Gen.Choose(1, 60)
                     from pick in Gen.Choose(0, 1000)
                     select (b, kind, pos, len, pick)).ToArbitrary(), t =>
        {
            var mutated = Mutate(Bases[t.b], t.kind, t.pos, t.len, t.pick);
            try
            {
                var net = NetworkJson.Deserialize(mutated, "mutated.json");
                return (NetworkJson.Deserialize(NetworkJson.Serialize(net), "again").Root == net.Root).Label("accepted: " + mutated);
            }
            catch (FormatException e) { return e.Message.StartsWith("'mutated.json': $", StringComparison.Ordinal).Label(e.Message); }
        });

    [Property(MaxTest = 300)]
    public Property MutatedLayerTreesGiveOnlyFormatExceptionsOrLayers() =>
        Prop.ForAll((from l in Trees() from kind in Gen.Choose(0, 5) from pos in Gen.Choose(0, 5000) from len in Gen.Choose(1, 40) from pick in Gen.Choose(0, 1000)
                     select (Json: NetworkJson.SerializeLayer(l), kind, pos, len, pick)).ToArbitrary(), t =>
        {
            var mutated = Mutate(t.Json, t.kind, t.pos, t.len, t.pick);
            try { return (NetworkJson.DeserializeLayer(NetworkJson.SerializeLayer(NetworkJson.DeserializeLayer(mutated, "m")), "m") is not null).Label("accepted"); }
            catch (FormatException e) { return e.Message.StartsWith("'m': $", StringComparison.Ordinal).Label(e.Message); }
        });

    // ---------------------------------------------------------------- checkpoints

    private static Tensor Input(Network net, int seed)
    {
        var rng = new Random(seed);
        var shape = net.InputShape.PrependBatch(2);
        return Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
    }

    /// <summary>Saves a checkpoint with its network, reloads both, and checks the network, every tensor and the outputs.</summary>
    private static bool SavedWithItsNetworkReloadsIdentically(Network net, int seed)
    {
        var parameters = Initializer.Init(net, seed);
        var rng = new Random(seed);
        // Running statistics away from their initial values, so that inference-mode batch norm is exercised.
        var state = Initializer.InitState(net).Map((_, t) =>
            Tensor.FromArray(Enumerable.Range(0, t.Size).Select(_ => (float)(0.5 + rng.NextDouble())).ToArray(), t.Shape));
        var ck = new TrainingCheckpoint(parameters, state, new OptimizerState(3, ImmutableSortedDictionary<string, Parameters>.Empty), 2, 1,
            new Dictionary<string, string> { ["note"] = "n" });
        var path = Path.Combine(Directory.CreateTempSubdirectory("cnn-netjson-").FullName, "c.safetensors");
        try
        {
            Checkpoint.Save(path, ck, net);
            var back = Checkpoint.Load(path);
            var loaded = Checkpoint.LoadNetwork(back, path)!;
            bool Same(Parameters a, Parameters b) => a.Paths.SequenceEqual(b.Paths) && a.Paths.All(p => a[p].Shape == b[p].Shape && a[p].Span.SequenceEqual(b[p].Span));
            var x = Input(net, seed);
            return loaded.Root.Equals(net.Root) && loaded.InputShape == net.InputShape && loaded.Strict == net.Strict
                && Same(parameters, back.Parameters) && Same(state, back.State) && back.Metadata["note"] == "n"
                && Apply.Forward(net, parameters, x, state: state).Span.SequenceEqual(Apply.Forward(loaded, back.Parameters, x, state: back.State).Span)
                && Apply.Forward(net, parameters, x, Mode.Train, state, seed).Span.SequenceEqual(Apply.Forward(loaded, back.Parameters, x, Mode.Train, back.State, seed).Span);
        }
        finally { File.Delete(path); }
    }

    [CnnProperty]
    public Property RandomNetworksSavedWithTheirCheckpointReloadIdentically() =>
        Prop.ForAll(Networks().ToArbitrary(), t => SavedWithItsNetworkReloadsIdentically(t.Net, t.Seed));

    [Theory]
    [InlineData("lenet5")]
    [InlineData("resnet-mini")]
    [InlineData("inception-mini")]
    [InlineData("alexnet-mini")]
    [InlineData("conv1d-mini")]
    [InlineData("conv3d-mini")]
    public void ZooNetworksSavedWithTheirCheckpointReloadIdentically(string name) =>
        Assert.True(SavedWithItsNetworkReloadsIdentically(Zoo.ByName(name), 7));

    [Fact]
    public void ACheckpointWithoutANetworkHasNoneAndAReloadedOneKeepsItsNetworkWhenSavedAgain()
    {
        var net = Zoo.ByName("conv1d-mini");
        var ck = new TrainingCheckpoint(Initializer.Init(net, 1), Parameters.Empty,
            new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty), 1, 0, new Dictionary<string, string>());
        var dir = Directory.CreateTempSubdirectory("cnn-netjson-").FullName;
        Checkpoint.Save(Path.Combine(dir, "plain.safetensors"), ck);
        Assert.Null(Checkpoint.LoadNetwork(Checkpoint.Load(Path.Combine(dir, "plain.safetensors"))));

        Checkpoint.Save(Path.Combine(dir, "with.safetensors"), ck, net);
        Checkpoint.Save(Path.Combine(dir, "again.safetensors"), Checkpoint.Load(Path.Combine(dir, "with.safetensors")));
        Assert.Equal(net.Root, Checkpoint.LoadNetwork(Checkpoint.Load(Path.Combine(dir, "again.safetensors")))!.Root);

        var broken = ck with { Metadata = new Dictionary<string, string> { [Checkpoint.NetworkKey] = "{\"format\":1}" } };
        var e = Assert.Throws<FormatException>(() => Checkpoint.LoadNetwork(broken, "ck.safetensors"));
        Assert.Contains("ck.safetensors", e.Message);
        Assert.Contains("$.format", e.Message);
        Directory.Delete(dir, recursive: true);
    }
}
