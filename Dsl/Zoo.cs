using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>Networks of the classic CNN curriculum, as descriptions with their input shapes.</summary>
public static class Zoo
{
    /// <summary>
    /// The textbook "SimpleConvNet" (chapter 7 of "Deep Learning from Scratch"): Conv(30, 5x5, stride 1, pad 0)
    /// -> ReLU -> MaxPool(2x2, stride 2) -> Dense(100) -> ReLU -> Dense(10), for 1x28x28 digits.
    /// Trained with softmax cross-entropy.
    /// </summary>
    public static Network SimpleConvNet() => Network.Create(
        new Serial(
            new Conv2d(30, 5, 5),
            new Relu(),
            new MaxPool2d(2, 2, 2, 2),
            new Flatten(),
            new Dense(100),
            new Relu(),
            new Dense(10)),
        new Shape(1, 28, 28));

    /// <summary>The names <see cref="ByName"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "simple-convnet" };

    /// <summary>A zoo network by its command-line name.</summary>
    /// <exception cref="CnnException">The name is unknown; the message lists the known ones.</exception>
    public static Network ByName(string name) => name switch
    {
        "simple-convnet" => SimpleConvNet(),
        _ => throw new CnnException($"Unknown network '{name}'. Known: {string.Join(", ", Names)}."),
    };
}
