using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>
/// Networks of the classic CNN curriculum, as descriptions with their input shapes. Each is built from the same
/// layer records a user writes; nothing here is special-cased by any interpreter.
/// </summary>
public static partial class Zoo
{
    /// <summary>
    /// The textbook "SimpleConvNet" (chapter 7 of "Deep Learning from Scratch"): Conv(30, 5x5, stride 1, pad 0)
    /// -> ReLU -> MaxPool(2x2, stride 2) -> Dense(100) -> ReLU -> Dense(10), for 1x28x28 digits.
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

    /// <summary>
    /// LeNet-5 (LeCun et al., 1998) for 1x28x28 digits: the first convolution pads by 2 to see the 32x32 field
    /// of the original; C1 6@5x5 -> tanh -> S2 average 2x2 -> C3 16@5x5 -> tanh -> S4 average 2x2 -> F5 120 -> tanh
    /// -> F6 84 -> tanh -> 10 outputs (logits, in place of the original's RBF units). 61,706 parameters.
    /// </summary>
    public static Network LeNet5() => Network.Create(
        new Serial(
            new Conv2d(6, 5, 5, PadH: 2, PadW: 2), new Tanh(), new AvgPool2d(2, 2, 2, 2),
            new Conv2d(16, 5, 5), new Tanh(), new AvgPool2d(2, 2, 2, 2),
            new Flatten(),
            new Dense(120), new Tanh(),
            new Dense(84), new Tanh(),
            new Dense(10)),
        new Shape(1, 28, 28));

    /// <summary>
    /// AlexNet (Krizhevsky et al., 2012) for 3x227x227 images: five convolutions (the second, fourth and fifth in two
    /// groups, as the original's two GPUs), ReLU, local response normalisation with the paper's constants
    /// (n 5, α 1e-4, β 0.75, k 2), overlapping 3x3 stride-2 max pooling, and three dense layers with dropout 0.5.
    /// </summary>
    public static Network AlexNet(int classes = 1000) => Network.Create(
        new Serial(
            new Conv2d(96, 11, 11, 4, 4), new Relu(), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 3, 2, 2),
            new Conv2d(256, 5, 5, PadH: 2, PadW: 2, Groups: 2), new Relu(), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 3, 2, 2),
            new Conv2d(384, 3, 3, PadH: 1, PadW: 1), new Relu(),
            new Conv2d(384, 3, 3, PadH: 1, PadW: 1, Groups: 2), new Relu(),
            new Conv2d(256, 3, 3, PadH: 1, PadW: 1, Groups: 2), new Relu(), new MaxPool2d(3, 3, 2, 2),
            new Flatten(),
            new Dropout(0.5f), new Dense(4096), new Relu(),
            new Dropout(0.5f), new Dense(4096), new Relu(),
            new Dense(classes)),
        new Shape(3, 227, 227));

    /// <summary>
    /// VGG-16 (Simonyan and Zisserman, configuration D) for 3x224x224 images: stacks of 3x3 convolutions with
    /// padding 1, 2x2 max pooling after each stack, three dense layers with dropout. 138,357,544 parameters.
    /// </summary>
    public static Network Vgg16(int classes = 1000) => Network.Create(
        new Serial(
            VggStack("block1", 64, 2), VggStack("block2", 128, 2), VggStack("block3", 256, 3),
            VggStack("block4", 512, 3), VggStack("block5", 512, 3),
            new Flatten(),
            new Dense(4096), new Relu(), new Dropout(0.5f),
            new Dense(4096), new Relu(), new Dropout(0.5f),
            new Dense(classes)),
        new Shape(3, 224, 224));

    /// <summary>
    /// A small VGG-style network for 3x32x32 images, showing the 1x1 convolutions of VGG's configuration C: two 3x3
    /// stacks, then a 3x3 and a 1x1 convolution, global average pooling and a dense classifier.
    /// </summary>
    public static Network VggSmall(int classes = 10) => Network.Create(
        new Serial(
            VggStack("block1", 32, 2), VggStack("block2", 64, 2),
            new Serial(Conv3x3(128), new Relu(), new Conv2d(128, 1, 1), new Relu()).Named("block3"),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes)),
        new Shape(3, 32, 32));

    /// <summary>
    /// A small AlexNet for 1x28x28 digits (or 3x32x32 images, or any input of at least 19x19): the
    /// original's ingredients at a size that trains on a CPU. Conv 32@5x5 (padding 2) -> ReLU -> LRN -> overlapping max
    /// pooling 3x3 stride 2; Conv 64@3x3 in two groups -> ReLU -> LRN -> max pool 3/2; Conv 96@3x3, Conv 96@3x3 and
    /// Conv 64@3x3 (the last two in two groups) with ReLU -> max pool 3/2; then dropout 0.5 -> Dense 256 -> ReLU -> dropout
    /// 0.5 -> Dense 256 -> ReLU -> Dense(classes). LRN with the paper's constants (n 5, α 1e-4, β 0.75, k 2).
    /// 268,938 parameters for 1x28x28 and 10 classes (spatial 28 -> 13 -> 6 -> 2).
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 1x28x28 by default.</param>
    /// <param name="classes">Output classes.</param>
    public static Network AlexNetMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            new Conv2d(32, 5, 5, PadH: 2, PadW: 2), new Relu(), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 3, 2, 2),
            new Conv2d(64, 3, 3, PadH: 1, PadW: 1, Groups: 2), new Relu(), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 3, 2, 2),
            Conv3x3(96), new Relu(),
            new Conv2d(96, 3, 3, PadH: 1, PadW: 1, Groups: 2), new Relu(),
            new Conv2d(64, 3, 3, PadH: 1, PadW: 1, Groups: 2), new Relu(), new MaxPool2d(3, 3, 2, 2),
            new Flatten(),
            new Dropout(0.5f), new Dense(256), new Relu(),
            new Dropout(0.5f), new Dense(256), new Relu(),
            new Dense(classes)),
        input ?? new Shape(1, 28, 28));

    /// <summary>
    /// A small VGG-style network for 3x32x32 images (CIFAR-10) with VGG's three kinds of convolution, all with ReLU:
    /// <c>block1</c> two 3x3 convolutions of 16 filters; <c>block2</c> a 3x3 factorised as 1x3 then 3x1 (as Inception-v3
    /// and the VGG paper's argument for stacks suggest: the same field with fewer weights), then a 3x3, 32 filters;
    /// <c>block3</c> a 3x3 then a 1x1 convolution (VGG's configuration C), 64 filters; 2x2 max pooling after each block;
    /// then Dense 128 -> ReLU -> dropout 0.5 -> Dense(classes). 171,834 parameters for 3x32x32 and 10 classes.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 3x32x32 by default (1x28x28 digits also fit).</param>
    /// <param name="classes">Output classes.</param>
    public static Network VggMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            VggStack("block1", 16, 2),
            new Serial(
                new Conv2d(32, 1, 3, PadW: 1).Named("conv1x3"), new Relu(),
                new Conv2d(32, 3, 1, PadH: 1).Named("conv3x1"), new Relu(),
                Conv3x3(32).Named("conv3x3"), new Relu(),
                new MaxPool2d(2, 2, 2, 2)).Named("block2"),
            new Serial(
                Conv3x3(64).Named("conv3x3"), new Relu(),
                new Conv2d(64, 1, 1).Named("conv1x1"), new Relu(),
                new MaxPool2d(2, 2, 2, 2)).Named("block3"),
            new Flatten(), new Dense(128), new Relu(), new Dropout(0.5f), new Dense(classes)),
        input ?? new Shape(3, 32, 32));

    /// <summary>
    /// A small GoogLeNet for 3x32x32 images: a stem (Conv 32@3x3, padding 1 -> ReLU -> max pool 2x2), one inception
    /// module of four branches fed by the same input and concatenated along channels (1x1 conv 16; 1x1 conv 16 then 3x3
    /// conv 32; 1x1 conv 8 then 5x5 conv 16; 3x3 max pool stride 1 then 1x1 conv 16; 80 channels in all, each conv
    /// followed by ReLU), global average pooling and Dense(classes). 11,410 parameters for 3x32x32 and 10 classes.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 3x32x32 by default (1x28x28 digits also fit).</param>
    /// <param name="classes">Output classes.</param>
    public static Network InceptionMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            new Serial(Conv3x3(32), new Relu(), new MaxPool2d(2, 2, 2, 2)).Named("stem"),
            Inception("inception", 16, 16, 32, 8, 16, 16),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes)),
        input ?? new Shape(3, 32, 32));

    /// <summary>
    /// A small ResNet for 3x32x32 images (in the manner of the CIFAR ResNets of He et al.): Conv 16@3x3 without bias
    /// -> batch norm -> ReLU, then three basic residual blocks (3x3 conv, BN, ReLU, 3x3 conv, BN, plus the shortcut,
    /// then ReLU): <c>block1</c> 16 channels with the identity shortcut, <c>block2</c> 32 and <c>block3</c> 64 channels
    /// at stride 2 with a projection shortcut (1x1 strided conv and BN) where the shape changes; global average pooling
    /// and Dense(classes) named <c>fc</c>. 78,042 parameters for 3x32x32 and 10 classes.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 3x32x32 by default (1x28x28 digits also fit).</param>
    /// <param name="classes">Output classes.</param>
    public static Network ResNetMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            Conv3x3(16, bias: false).Named("conv1"), new BatchNorm().Named("bn1"), new Relu(),
            BasicBlock(16, 16, 1).Named("block1"), BasicBlock(16, 32, 2).Named("block2"), BasicBlock(32, 64, 2).Named("block3"),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes).Named("fc")),
        input ?? new Shape(3, 32, 32));

    /// <summary>
    /// The zoo's network for Fashion-MNIST (1x28x28, 10 classes), sized for training on two CPU cores: a 3x3 stem of
    /// 32 filters at 28x28 with batch norm and ReLU, 2x2 max pooling, then two stages, each a 3x3 convolution that widens
    /// (48 filters at 14x14, 96 at 7x7) with batch norm and ReLU followed by a basic residual block of that width (two
    /// 3x3 convolutions with batch norm, identity shortcut, ReLU), 2x2 max pooling between the stages; global average
    /// pooling and Dense(classes) named <c>fc</c>. Convolutions have no bias (batch norm follows each). 21.2 million
    /// multiply-adds per image forward (the convolutions at 7x7 and 14x14 cost the same, the stem a hundredth), 265,770
    /// parameters; <see cref="Recipe.FashionMnist"/> trains it.
    /// </summary>
    /// <param name="classes">Output classes.</param>
    public static Network FashionResNet(int classes = 10) => Network.Create(
        new Serial(
            new Serial(Conv3x3(32, bias: false), new BatchNorm(), new Relu()).Named("stem"),
            new MaxPool2d(2, 2, 2, 2),
            new Serial(Conv3x3(48, bias: false), new BatchNorm(), new Relu()).Named("widen1"),
            BasicBlock(48, 48, 1).Named("res1"),
            new MaxPool2d(2, 2, 2, 2),
            new Serial(Conv3x3(96, bias: false), new BatchNorm(), new Relu()).Named("widen2"),
            BasicBlock(96, 96, 1).Named("res2"),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes).Named("fc")),
        new Shape(1, 28, 28));

    /// <summary>
    /// A small MobileNet v2 (Sandler et al., 2018) for 1x28x28 digits: a stem (Conv 16@3x3 stride 2 without bias, batch norm,
    /// ReLU6), three inverted residual blocks (a 1x1 expansion by the factor t, a 3x3 depthwise convolution, a linear 1x1
    /// projection, each with batch norm, ReLU6 after the first two, and the identity shortcut where the shape is kept):
    /// <c>block1</c> t = 1 to 8 channels, <c>block2</c> t = 4 to 16 channels at stride 2, <c>block3</c> t = 4, 16 channels
    /// with its shortcut; then a 1x1 convolution to 64 channels with batch norm and ReLU6, global average pooling and
    /// Dense(classes) named <c>fc</c>. Spatial 28 -> 14 -> 7.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 1x28x28 by default.</param>
    /// <param name="classes">Output classes.</param>
    public static Network MobileNetMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            new Serial(Conv3x3(16, 2, bias: false), new BatchNorm(), HardTanh.Relu6).Named("stem"),
            InvertedResidual(16, 8, 1, 1).Named("block1"),
            InvertedResidual(8, 16, 4, 2).Named("block2"),
            InvertedResidual(16, 16, 4, 1).Named("block3"),
            new Serial(new Conv2d(64, 1, 1, UseBias: false), new BatchNorm(), HardTanh.Relu6).Named("head"),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes).Named("fc")),
        input ?? new Shape(1, 28, 28));

    /// <summary>
    /// A small EfficientNet (Tan and Le, 2019) for 1x28x28 digits: a stem (Conv 16@3x3 stride 2 without bias, batch norm, SiLU),
    /// three MBConv blocks (1x1 expansion by the factor t, 3x3 depthwise convolution, squeeze-and-excitation, linear 1x1
    /// projection; batch norm after each convolution, SiLU after the first two, the identity shortcut where the shape is kept):
    /// <c>block1</c> t = 1, 16 channels; <c>block2</c> t = 4 to 24 channels at stride 2; <c>block3</c> t = 4, 24 channels.
    /// Squeeze-and-excitation multiplies the features by a per-channel gate, <c>x * sigmoid(conv(silu(conv(pool(x)))))</c>, a
    /// product <see cref="FanOut"/> whose gate <c>[C, 1, 1]</c> broadcasts over the image. Then a 1x1 convolution to 64 channels
    /// with batch norm and SiLU, global average pooling and Dense(classes) named <c>fc</c>. Spatial 28 -> 14 -> 7.
    /// </summary>
    /// <param name="input">One sample's shape [C, H, W]; 1x28x28 by default.</param>
    /// <param name="classes">Output classes.</param>
    public static Network EfficientNetMini(Shape? input = null, int classes = 10) => Network.Create(
        new Serial(
            new Serial(Conv3x3(16, 2, bias: false), new BatchNorm(), new Silu()).Named("stem"),
            MbConv(16, 16, 1, 1, 4).Named("block1"),
            MbConv(16, 24, 4, 2, 4).Named("block2"),
            MbConv(24, 24, 4, 1, 6).Named("block3"),
            new Serial(new Conv2d(64, 1, 1, UseBias: false), new BatchNorm(), new Silu()).Named("head"),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes).Named("fc")),
        input ?? new Shape(1, 28, 28));

    /// <summary>
    /// GoogLeNet (Szegedy et al., 2014) for 3x224x224 images: the stem, nine inception modules (1x1, 3x3 and 5x5
    /// branches behind 1x1 reductions, and a pooling branch, joined by concatenation), global average pooling,
    /// dropout 0.4 and a dense classifier (the auxiliary classifiers of training are left out, as torchvision does by default;
    /// <see cref="GoogLeNetAux"/> has them).
    /// </summary>
    public static Network GoogLeNet(int classes = 1000) => Network.Create(
        new Serial(
            new Conv2d(64, 7, 7, 2, 2, 3, 3), new Relu(), new MaxPool2d(3, 3, 2, 2, CeilMode: true), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f),
            new Conv2d(64, 1, 1), new Relu(), Conv3x3(192), new Relu(), Lrn.FromPaper(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 3, 2, 2, CeilMode: true),
            Inception("inception3a", 64, 96, 128, 16, 32, 32), Inception("inception3b", 128, 128, 192, 32, 96, 64),
            new MaxPool2d(3, 3, 2, 2, CeilMode: true),
            Inception("inception4a", 192, 96, 208, 16, 48, 64), Inception("inception4b", 160, 112, 224, 24, 64, 64),
            Inception("inception4c", 128, 128, 256, 24, 64, 64), Inception("inception4d", 112, 144, 288, 32, 64, 64),
            Inception("inception4e", 256, 160, 320, 32, 128, 128),
            new MaxPool2d(3, 3, 2, 2, CeilMode: true),
            Inception("inception5a", 256, 160, 320, 32, 128, 128), Inception("inception5b", 384, 192, 384, 48, 128, 128),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dropout(0.4f), new Dense(classes)),
        new Shape(3, 224, 224));

    /// <summary>
    /// ResNet-18 (He et al., 2015) for 3x224x224 images: a 7x7 stem with batch normalisation and max pooling, four
    /// stages of two basic residual blocks (3x3 conv, BN, ReLU, 3x3 conv, BN, plus the shortcut; a 1x1 strided
    /// projection with BN where the shape changes), global average pooling and a dense classifier. 11,689,512 parameters.
    /// </summary>
    public static Network ResNet18(int classes = 1000) => Network.Create(
        new Serial(
            new Conv2d(64, 7, 7, 2, 2, 3, 3, UseBias: false).Named("conv1"), new BatchNorm().Named("bn1"), new Relu(),
            new MaxPool2d(3, 3, 2, 2, 1, 1),
            ResStage("layer1", 64, 64, 1), ResStage("layer2", 64, 128, 2), ResStage("layer3", 128, 256, 2), ResStage("layer4", 256, 512, 2),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes).Named("fc")),
        new Shape(3, 224, 224));

    /// <summary>
    /// The Keras example CNN for CIFAR-10 (<c>cifar10_cnn.py</c>) for 3x32x32 images: two blocks of two 3x3
    /// convolutions (the first 'same'-padded) with ReLU, 2x2 max pooling and dropout 0.25, then Dense(512), ReLU,
    /// dropout 0.5, Dense(10); Glorot-uniform initialisation, as Keras does. 1,250,858 parameters.
    /// </summary>
    public static Network KerasCifar() => Network.Create(
        new Serial(
            Conv3x3(32), new Relu(), new Conv2d(32, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2), new Dropout(0.25f),
            Conv3x3(64), new Relu(), new Conv2d(64, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2), new Dropout(0.25f),
            new Flatten(), new Dense(512), new Relu(), new Dropout(0.5f), new Dense(10)) { WeightInit = Init.GlorotUniform },
        new Shape(3, 32, 32));

    /// <summary>
    /// The CIFAR-10 network of the TensorFlow/Keras "Convolutional Neural Network (CNN)" tutorial, for 3x32x32 images:
    /// Conv2D(32, 3x3, relu) 896 -> MaxPool 2x2 -> Conv2D(64, 3x3, relu) 18,496 -> MaxPool 2x2 -> Conv2D(64, 3x3, relu)
    /// 36,928 -> Flatten 1024 -> Dense(64, relu) 65,600 -> Dense(10) 650 (logits: train with softmax cross-entropy);
    /// 'valid' padding and Glorot-uniform initialisation, as Keras does. 122,570 parameters.
    /// </summary>
    public static Network KerasTutorial() => Network.Create(
        new Serial(
            new Conv2d(32, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Conv2d(64, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Conv2d(64, 3, 3), new Relu(),
            new Flatten(), new Dense(64), new Relu(), new Dense(10)) { WeightInit = Init.GlorotUniform },
        new Shape(3, 32, 32));

    /// <summary>
    /// The zoo's <c>conv1d-mini</c> (also accepted as <c>conv1d-signal</c>): a 1-d convolutional classifier of 1x128
    /// signals: two stages of Conv1d (5 taps, padding 2; 16 then 32 filters), ReLU and 1-d max pooling 2, then global
    /// average pooling and Dense(classes). 3,018 parameters for 10 classes.
    /// </summary>
    /// <param name="classes">Output classes.</param>
    public static Network Conv1dSignal(int classes = 10) => Network.Create(
        new Serial(
            new Conv1d(16, 5, Pad: 2), new Relu(), new PoolNd(PoolOp.Max, 2, 2),
            new Conv1d(32, 5, Pad: 2), new Relu(), new PoolNd(PoolOp.Max, 2, 2),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes)),
        new Shape(1, 128));

    /// <summary>
    /// The zoo's <c>conv3d-mini</c> (also accepted as <c>conv3d-volume</c>): a 3-d convolutional classifier of 1x16x16x16
    /// volumes (or one-channel clips of 16 frames): two stages of Conv3d (3x3x3, padding 1; 8 then 16 filters), ReLU and
    /// 2x2x2 max pooling, then global average pooling and Dense(classes). 3,866 parameters for 10 classes.
    /// </summary>
    /// <param name="classes">Output classes.</param>
    public static Network Conv3dVolume(int classes = 10) => Network.Create(
        new Serial(
            new Conv3d(8, 3, Pad: 1), new Relu(), new PoolNd(PoolOp.Max, 2, 2),
            new Conv3d(16, 3, Pad: 1), new Relu(), new PoolNd(PoolOp.Max, 2, 2),
            new GlobalPool(PoolOp.Average), new Flatten(), new Dense(classes)),
        new Shape(1, 16, 16, 16));
}
