using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;

namespace Cnn.Cli;

/// <summary>What a classifier makes of a batch of generated images.</summary>
/// <param name="Confident">The fraction it labels as one of the data's classes with a softmax probability over <see cref="GanQuality.Threshold"/>.</param>
/// <param name="PerClass">How many images it labels with that confidence in each class (a collapsed generator fills one); the
/// last entry counts those it labels confidently as none of the data's classes.</param>
internal sealed record GanVerdict(double Confident, int[] PerClass);

/// <summary>
/// The quality measure of <c>cnn gan</c>: a small classifier (<c>simple-convnet</c>'s layers) trained here on the real
/// images, and the fraction of a fixed batch of generated images it labels as one of the classes with confidence. A
/// classifier trained on digits alone labels anything: measured, lenet5 called 69 % of an untrained generator's flat grey
/// images an 8 with probability over 0.9 (the class with the most ink). So the classifier has one class more, "none", trained on images
/// that are no class by construction (a tenth of the training set: uniform noise, flat grey of any level, and real
/// images with their pixels shuffled, which keeps the amount of ink and destroys the shape), as outlier exposure does
/// (Hendrycks et al., 2019). The extra class can only lower the share of confident labels, never raise it.
/// </summary>
internal sealed class GanQuality(Dsl.Model classifier, float validationAccuracy)
{
    /// <summary>The confidence a label needs to count.</summary>
    public const float Threshold = 0.9f;

    /// <summary>The classifier's accuracy on the held-out real images.</summary>
    public float ValidationAccuracy { get; } = validationAccuracy;

    /// <summary>
    /// Trains the classifier for <paramref name="epochs"/> on <paramref name="train"/> (pixels in [0, 1]) and the "none"
    /// images, Adam 1e-3, batches of 64.
    /// </summary>
    public static GanQuality Train(LabeledData train, LabeledData validation, int epochs, int seed)
    {
        int classes = train.Classes, sample = train.Images.Size / train.Count, extra = Math.Max(1, train.Count / 10);
        var rng = new Random(seed);
        var pixels = new float[(train.Count + extra) * sample];
        train.Images.Span.CopyTo(pixels);
        for (int i = 0; i < extra; i++)
        {
            var image = pixels.AsSpan((train.Count + i) * sample, sample);
            switch (i % 3)
            {
                case 0:
                    for (int k = 0; k < sample; k++) image[k] = rng.NextSingle();
                    break;
                case 1:
                    image.Fill(rng.NextSingle());
                    break;
                default:
                    train.Images.Span.Slice(rng.Next(train.Count) * sample, sample).CopyTo(image);
                    rng.Shuffle(image);
                    break;
            }
        }
        var labels = train.Labels.Concat(Enumerable.Repeat(classes, extra)).ToArray();
        var convnet = (Serial)Zoo.SimpleConvNet().Root;
        var net = Network.Create(new Serial(convnet.Layers.SkipLast(1).Append(new Dense(classes + 1))), train.Images.Shape.DropBatch());
        var withNone = new LabeledData(Tensor.Own(pixels, train.Images.Shape.WithBatch(train.Count + extra)), labels, classes + 1);
        var r = Dsl.Model.Init(net, seed).Fit(withNone, new TrainOptions(epochs, 64, new Adam(1e-3f), seed),
            new LabeledData(validation.Images, validation.Labels, classes + 1));
        return new GanQuality(r.Model, r.History[^1].Validation!.Accuracy);
    }

    /// <summary>Judges images of pixels in [0, 1] (map a tanh generator's output with <c>(y + 1) / 2</c>).</summary>
    public GanVerdict Judge(Tensor x)
    {
        var perClass = new int[classifier.Network.OutputShape[0]];
        int confident = 0;
        for (int start = 0; start < x.Shape[0]; start += Apply.DefaultBatchSize)
        {
            var p = classifier.PredictProbabilities(x.Slice(start, Math.Min(Apply.DefaultBatchSize, x.Shape[0] - start)));
            int k = p.Shape[1];
            for (int i = 0; i < p.Shape[0]; i++)
            {
                var row = p.Span.Slice(i * k, k);
                int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
                if (row[best] <= Threshold) continue;
                perClass[best]++;
                if (best < k - 1) confident++;
            }
        }
        return new GanVerdict((double)confident / Math.Max(1, x.Shape[0]), perClass);
    }
}
