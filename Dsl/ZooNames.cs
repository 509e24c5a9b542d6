using Cnn.Core;

namespace Cnn.Dsl;

// The zoo by name: the names, their aliases, and each network for a name (and an input shape).
public static partial class Zoo
{
    /// <summary>
    /// Every name <see cref="ByName"/> accepts, in the order of the curriculum: <c>simple-convnet</c>, <c>lenet5</c>,
    /// <c>keras-cifar</c>, <c>keras-tutorial</c>, <c>alexnet</c>, <c>alexnet-mini</c>, <c>vgg16</c>, <c>vgg-mini</c>,
    /// <c>vgg-small</c>, <c>googlenet</c>, <c>googlenet-aux</c>, <c>inception-mini</c>, <c>inception-mini-aux</c>, <c>resnet18</c>, <c>resnet-mini</c>, <c>mobilenet-mini</c>, <c>efficientnet-mini</c>,
    /// <c>fashion-resnet</c>, <c>conv1d-mini</c>,
    /// <c>conv3d-mini</c>, <c>dcgan-generator</c>, <c>dcgan-discriminator</c>, and the older names of <see cref="Aliases"/> (<c>conv1d-signal</c>,
    /// <c>conv3d-volume</c>), last.
    /// </summary>
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "simple-convnet", "lenet5", "keras-cifar", "keras-tutorial", "alexnet", "alexnet-mini", "vgg16", "vgg-mini", "vgg-small",
        "googlenet", "googlenet-aux", "inception-mini", "inception-mini-aux", "resnet18", "resnet-mini", "mobilenet-mini", "efficientnet-mini", "fashion-resnet", "conv1d-mini", "conv3d-mini",
        "dcgan-generator", "dcgan-discriminator",
        "conv1d-signal", "conv3d-volume",
    };

    /// <summary>Names <see cref="ByName"/> also accepts for another entry of <see cref="Names"/>: the alias and the name it stands for.</summary>
    public static IReadOnlyDictionary<string, string> Aliases { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["conv1d-signal"] = "conv1d-mini",
        ["conv3d-volume"] = "conv3d-mini",
    };

    /// <summary>A zoo network by its command-line name (one of <see cref="Names"/>), with its default classes and input shape.</summary>
    /// <exception cref="CnnException">The name is unknown; the message lists the known ones.</exception>
    public static Network ByName(string name) => name switch
    {
        "simple-convnet" => SimpleConvNet(),
        "lenet5" => LeNet5(),
        "keras-cifar" => KerasCifar(),
        "keras-tutorial" => KerasTutorial(),
        "alexnet" => AlexNet(),
        "alexnet-mini" => AlexNetMini(),
        "vgg16" => Vgg16(),
        "vgg-mini" => VggMini(),
        "vgg-small" => VggSmall(),
        "googlenet" => GoogLeNet(),
        "googlenet-aux" => GoogLeNetAux(),
        "inception-mini" => InceptionMini(),
        "inception-mini-aux" => InceptionMiniAux(),
        "resnet18" => ResNet18(),
        "resnet-mini" => ResNetMini(),
        "mobilenet-mini" => MobileNetMini(),
        "efficientnet-mini" => EfficientNetMini(),
        "fashion-resnet" => FashionResNet(),
        "conv1d-mini" or "conv1d-signal" => Conv1dSignal(),
        "conv3d-mini" or "conv3d-volume" => Conv3dVolume(),
        "dcgan-generator" => DcganGenerator(),
        "dcgan-discriminator" => DcganDiscriminator(),
        _ => throw new CnnException($"Unknown network '{name}'. Known: {string.Join(", ", Names)}."),
    };

    /// <summary>
    /// A zoo network by name, built for samples of shape <paramref name="input"/> where the network adapts to its input
    /// (<c>alexnet-mini</c>, <c>vgg-mini</c>, <c>inception-mini</c>, <c>inception-mini-aux</c>, <c>resnet-mini</c>: their layers end in global pooling,
    /// or size their classifier from the input); the others keep the input they were designed for, so a caller compares
    /// <see cref="Network.InputShape"/> with its data and reports a mismatch.
    /// </summary>
    /// <exception cref="CnnException">The name is unknown, or the input is too small for the network's layers.</exception>
    public static Network ForInput(string name, Shape input) => name switch
    {
        "alexnet-mini" => AlexNetMini(input),
        "vgg-mini" => VggMini(input),
        "inception-mini" => InceptionMini(input),
        "inception-mini-aux" => InceptionMiniAux(input),
        "resnet-mini" => ResNetMini(input),
        _ => ByName(name),
    };

    private static Conv2d Conv3x3(int filters, int stride = 1, bool bias = true) => new(filters, 3, 3, stride, stride, 1, 1, UseBias: bias);

    private static Layer VggStack(string name, int filters, int convs) =>
        new Serial(Enumerable.Range(0, convs).SelectMany(_ => new Layer[] { Conv3x3(filters), new Relu() })
            .Append(new MaxPool2d(2, 2, 2, 2))).Named(name);

    private static Layer Inception(string name, int b1, int b3Reduce, int b3, int b5Reduce, int b5, int poolProj) =>
        FanOut.Concat(
            new Serial(new Conv2d(b1, 1, 1), new Relu()).Named("branch1x1"),
            new Serial(new Conv2d(b3Reduce, 1, 1), new Relu(), Conv3x3(b3), new Relu()).Named("branch3x3"),
            new Serial(new Conv2d(b5Reduce, 1, 1), new Relu(), new Conv2d(b5, 5, 5, PadH: 2, PadW: 2), new Relu()).Named("branch5x5"),
            new Serial(new MaxPool2d(3, 3, 1, 1, 1, 1), new Conv2d(poolProj, 1, 1), new Relu()).Named("branch_pool")).Named(name);

    /// <summary>
    /// MobileNet v2's inverted residual: 1x1 expansion (left out when the factor is 1), 3x3 depthwise convolution, linear 1x1
    /// projection, each followed by batch norm and the first two by ReLU6; the identity shortcut when the shape is kept.
    /// </summary>
    private static Layer InvertedResidual(int inChannels, int outChannels, int expansion, int stride)
    {
        int hidden = inChannels * expansion;
        var layers = new List<Layer>();
        if (expansion != 1) layers.AddRange(new Layer[] { new Conv2d(hidden, 1, 1, UseBias: false).Named("expand"), new BatchNorm(), HardTanh.Relu6 });
        layers.AddRange(new Layer[]
        {
            new Conv2d(hidden, 3, 3, stride, stride, 1, 1, UseBias: false, Groups: hidden).Named("depthwise"), new BatchNorm(), HardTanh.Relu6,
            new Conv2d(outChannels, 1, 1, UseBias: false).Named("project"), new BatchNorm(),
        });
        var body = new Serial(layers);
        return stride == 1 && inChannels == outChannels ? new Residual(body) : body;
    }

    /// <summary>
    /// EfficientNet's MBConv: MobileNet v2's inverted residual with SiLU, and squeeze-and-excitation (to
    /// <paramref name="squeeze"/> channels and back) between the depthwise convolution and the projection.
    /// </summary>
    private static Layer MbConv(int inChannels, int outChannels, int expansion, int stride, int squeeze)
    {
        int hidden = inChannels * expansion;
        var layers = new List<Layer>();
        if (expansion != 1) layers.AddRange(new Layer[] { new Conv2d(hidden, 1, 1, UseBias: false).Named("expand"), new BatchNorm(), new Silu() });
        layers.AddRange(new Layer[]
        {
            new Conv2d(hidden, 3, 3, stride, stride, 1, 1, UseBias: false, Groups: hidden).Named("depthwise"), new BatchNorm(), new Silu(),
            FanOut.Product(new Identity(), new Serial(
                new GlobalPool(PoolOp.Average), new Conv2d(squeeze, 1, 1).Named("reduce"), new Silu(), new Conv2d(hidden, 1, 1).Named("expand"), new Sigmoid())
                .Named("gate")).Named("se"),
            new Conv2d(outChannels, 1, 1, UseBias: false).Named("project"), new BatchNorm(),
        });
        var body = new Serial(layers);
        return stride == 1 && inChannels == outChannels ? new Residual(body) : body;
    }

    private static Layer ResStage(string name, int inChannels, int channels, int stride) =>
        new Serial(BasicBlock(inChannels, channels, stride).Named("block1"), BasicBlock(channels, channels, 1).Named("block2")).Named(name);

    private static Layer BasicBlock(int inChannels, int channels, int stride)
    {
        var body = new Serial(
            Conv3x3(channels, stride, bias: false), new BatchNorm(), new Relu(),
            Conv3x3(channels, 1, bias: false), new BatchNorm());
        Layer? shortcut = stride != 1 || inChannels != channels
            ? new Serial(new Conv2d(channels, 1, 1, stride, stride, UseBias: false), new BatchNorm())
            : null;
        return new Serial(new Residual(body, shortcut), new Relu());
    }
}
