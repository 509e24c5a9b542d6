using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The zoo's networks with auxiliary classifiers (<see cref="AuxiliaryHead"/>): GoogLeNet's, and the small version.</summary>
public static partial class Zoo
{
    /// <summary>The weight of each auxiliary loss in GoogLeNet's total (Szegedy et al., 2014; torchvision's recipe).</summary>
    public const float GoogLeNetAuxiliaryWeight = 0.3f;

    /// <summary>
    /// The zoo's <c>googlenet-aux</c>: <see cref="GoogLeNet"/> with its two auxiliary classifiers as in Szegedy et al.
    /// (2014), <c>aux1</c> after inception 4a and <c>aux2</c> after inception 4d: average pooling 5x5 of stride 3, a 1x1
    /// convolution of 128 filters with ReLU, a dense layer of 1,024 with ReLU, dropout 0.7 and a dense classifier; each
    /// head's loss weighs 0.3 in the training total. Inference (and ONNX export) uses the main head, so its outputs are
    /// GoogLeNet's; the trunk's parameter paths are GoogLeNet's too.
    /// </summary>
    /// <param name="classes">Output classes (of every head).</param>
    /// <param name="input">One sample's shape; 3x224x224 by default (the heads' 5x5 pooling needs images of at least 79x79).</param>
    public static Network GoogLeNetAux(int classes = 1000, Shape? input = null) => Network.Create(
        WithHeads(GoogLeNet(classes).Root, new Dictionary<string, Layer>
        {
            ["inception4a"] = Head("aux1", 128, 1024, classes),
            ["inception4d"] = Head("aux2", 128, 1024, classes),
        }),
        input ?? new Shape(3, 224, 224));

    /// <summary>
    /// The zoo's <c>inception-mini-aux</c>: <see cref="InceptionMini"/> with two auxiliary classifiers of GoogLeNet's
    /// shape, scaled down, for tests and quick runs: <c>aux1</c> after the stem and <c>aux2</c> after the inception
    /// module, each average pooling 5x5 of stride 3, a 1x1 convolution of 16 filters with ReLU, a dense layer of 32
    /// with ReLU, dropout 0.7 and a dense classifier, its loss weighing 0.3.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 3x32x32 by default (1x28x28 digits also fit).</param>
    /// <param name="classes">Output classes.</param>
    public static Network InceptionMiniAux(Shape? input = null, int classes = 10) => Network.Create(
        WithHeads(InceptionMini(input, classes).Root, new Dictionary<string, Layer>
        {
            ["stem"] = Head("aux1", 16, 32, classes),
            ["inception"] = Head("aux2", 16, 32, classes),
        }),
        input ?? new Shape(3, 32, 32));

    /// <summary>GoogLeNet's auxiliary classifier with <paramref name="filters"/> in its 1x1 convolution and <paramref name="units"/> in its hidden layer.</summary>
    private static Layer Head(string name, int filters, int units, int classes) => new AuxiliaryHead(
        new Serial(
            new AvgPool2d(5, 5, 3, 3).Named("pool"), new Conv2d(filters, 1, 1).Named("conv"), new Relu(), new Flatten(),
            new Dense(units).Named("fc1"), new Relu(), new Dropout(0.7f), new Dense(classes).Named("fc2")),
        GoogLeNetAuxiliaryWeight).Named(name);

    /// <summary>The serial <paramref name="trunk"/> with each head placed right after the child of its key's name.</summary>
    private static Serial WithHeads(Layer trunk, IReadOnlyDictionary<string, Layer> after)
    {
        var serial = (Serial)trunk;
        var names = serial.ChildNames();
        var layers = new List<Layer>();
        for (int i = 0; i < names.Count; i++)
        {
            layers.Add(serial.Layers[i]);
            if (after.TryGetValue(names[i], out var head)) layers.Add(head);
        }
        return new Serial(layers) { Name = serial.Name, WeightInit = serial.WeightInit };
    }
}
