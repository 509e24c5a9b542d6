using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The DCGAN pair of the zoo: a generator of 1x28x28 images and the discriminator that judges them.</summary>
public static partial class Zoo
{
    /// <summary>
    /// A DCGAN generator (Radford et al., 2015) for 28x28 digits: a noise vector shaped <c>noise</c>x1x1 goes through a
    /// 7x7 transposed convolution to <c>2*features</c>x7x7, then two 4x4 transposed convolutions of stride 2 and padding 1
    /// to <c>features</c>x14x14 and 1x28x28; no biases, batch normalisation and ReLU between, a tanh output (images in
    /// [-1, 1]); weights normal with standard deviation 0.02, as the paper. With the defaults (100, 64), 759,680 parameters.
    /// <see cref="DcganDiscriminator"/> is its adversary; <see cref="GanTrainer"/> trains the two.
    /// </summary>
    /// <param name="noise">Length of the latent vector (the input's channels).</param>
    /// <param name="features">Channels of the 14x14 layer; the 7x7 layer has twice as many.</param>
    public static Network DcganGenerator(int noise = 100, int features = 64) => Network.Create(
        new Serial(
            new ConvTranspose2d(features * 2, 7, 1, 0, UseBias: false), new BatchNorm(), new Relu(),
            new ConvTranspose2d(features, 4, 2, 1, UseBias: false), new BatchNorm(), new Relu(),
            new ConvTranspose2d(1, 4, 2, 1, UseBias: false), new Tanh()) { WeightInit = Init.Normal(0.02f) },
        new Shape(noise, 1, 1));

    /// <summary>
    /// The zoo's <c>dcgan-discriminator</c>: the DCGAN discriminator (Radford et al., 2015) for 1x28x28 images, the mirror
    /// of <see cref="DcganGenerator"/> and so taking its output as it is (tanh images in [-1, 1]; scale real [0, 1] pixels
    /// to <c>2 x - 1</c>). A 4x4 convolution of stride 2 and padding 1 to <c>features</c>x14x14 (with bias, no batch
    /// normalisation on the input layer, as the paper), LeakyReLU 0.2; a 4x4 stride-2 convolution without bias to
    /// <c>2*features</c>x7x7, batch normalisation, LeakyReLU 0.2; a 7x7 convolution to one value, flattened to <c>[1]</c>:
    /// a logit (no sigmoid; train it with binary cross-entropy on logits, which is stable where a sigmoid saturates).
    /// Weights normal with standard deviation 0.02. With the default 64 features, 138,689 parameters and 256 batch-norm
    /// statistics.
    /// </summary>
    /// <param name="features">Channels of the 14x14 layer; the 7x7 layer has twice as many.</param>
    public static Network DcganDiscriminator(int features = 64) => Network.Create(
        new Serial(
            new Conv2d(features, 4, 4, 2, 2, 1, 1), new LeakyRelu(0.2f),
            new Conv2d(features * 2, 4, 4, 2, 2, 1, 1, UseBias: false), new BatchNorm(), new LeakyRelu(0.2f),
            new Conv2d(1, 7, 7), new Flatten()) { WeightInit = Init.Normal(0.02f) },
        new Shape(1, 28, 28));
}
