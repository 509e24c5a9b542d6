namespace Cnn.FSharp

open Cnn.Dsl

/// <summary>
/// How a convolution or pooling layer pads its input, on both sides of each spatial axis.
/// </summary>
/// <remarks>
/// <c>Same</c> pads <c>dilation * (kernel - 1) / 2</c> on each side: for an odd kernel this keeps the size at
/// stride 1 and gives <c>ceil(size / stride)</c> otherwise, as Keras's <c>padding='same'</c>. The layers pad
/// symmetrically only, so <c>Same</c> with an even kernel raises an <c>ArgumentException</c> when the layer is made.
/// </remarks>
type Padding =
    /// No padding (Keras's 'valid'; the default).
    | Valid
    /// Enough padding to keep the size at stride 1 (odd kernels only).
    | Same
    /// The same padding on every spatial axis.
    | Pad of int
    /// Different padding for height and width (2-d layers only).
    | PadHW of height: int * width: int

/// A weight initialisation scheme, for <c>initWith</c> and <c>Model.initWith</c>. Each also says how biases start.
type WeightInit =
    /// PyTorch's default for convolutions and dense layers: weights and biases uniform in ±1/sqrt(fan_in).
    | PyTorchDefault
    /// Keras's default: Glorot (Xavier) uniform weights, zero biases.
    | GlorotUniform
    /// He (Kaiming) normal weights with standard deviation sqrt(2/fan_in), zero biases: for ReLU networks.
    | HeNormal
    /// Zero weights and biases.
    | Zeros
    /// Normal weights with the given standard deviation (DCGAN uses 0.02), zero biases.
    | Normal of std: float

/// Optional settings of <c>conv2dWith</c>; start from <c>Conv2d.defaults</c>.
type Conv2dSettings =
    { /// Stride along height and width (default 1).
      Stride: int
      /// Padding (default <c>Valid</c>).
      Padding: Padding
      /// Spacing of kernel taps along height and width (default 1).
      Dilation: int
      /// Channel groups (default 1; the input channels for a depthwise convolution).
      Groups: int
      /// Whether to add a bias per filter (default true).
      Bias: bool }

/// Optional settings of <c>conv1dWith</c>; start from <c>Conv1d.defaults</c>.
type Conv1dSettings =
    { /// Stride (default 1).
      Stride: int
      /// Padding at both ends (default <c>Valid</c>; <c>PadHW</c> does not apply).
      Padding: Padding
      /// Spacing of kernel taps (default 1).
      Dilation: int
      /// Channel groups (default 1).
      Groups: int
      /// Whether to add a bias per filter (default true).
      Bias: bool }

/// Optional settings of <c>conv3dWith</c>; start from <c>Conv3d.defaults</c>.
type Conv3dSettings =
    { /// Stride along every axis (default 1).
      Stride: int
      /// Padding on both sides of every axis (default <c>Valid</c>; <c>PadHW</c> does not apply).
      Padding: Padding
      /// Whether to add a bias per filter (default true).
      Bias: bool }

/// Optional settings of <c>convNdWith</c> and <c>convTransposeNdWith</c> (1, 2 or 3 spatial axes, from the kernel's length): each
/// per-axis option is a list of one value per axis, a single value for every axis, or empty for its default; start from
/// <c>ConvNd.defaults</c>.
type ConvNdSettings =
    { /// Stride per axis (default 1).
      Stride: int list
      /// Zero padding on both sides of each axis; for a transposed convolution, removed from each side of the output (default 0).
      Padding: int list
      /// Transposed convolutions only: extra elements at the end of each axis, below the stride (default 0).
      OutputPadding: int list
      /// Transposed convolutions only: padding removed from the end of each axis where it differs from <c>Padding</c>
      /// (default empty: the same), as ONNX's SAME_UPPER crops only the end.
      PaddingEnd: int list
      /// Spacing of kernel taps per axis (default 1).
      Dilation: int list
      /// Channel groups (default 1).
      Groups: int
      /// Whether to add a bias per filter (default true).
      Bias: bool }

/// Optional settings of <c>convTranspose2dWith</c>; start from <c>ConvTranspose2d.defaults</c>.
type ConvTranspose2dSettings =
    { /// Upsampling stride (default 1).
      Stride: int
      /// Rows and columns removed from each side of the output, as PyTorch's <c>padding</c> (default 0).
      Padding: int
      /// Extra rows and columns on one side, below the stride (default 0).
      OutputPadding: int
      /// Whether to add a bias per filter (default true).
      Bias: bool }

/// Optional settings of <c>maxPool2dWith</c>; start from <c>MaxPool2d.defaults</c>.
type MaxPool2dSettings =
    { /// Stride; <c>None</c> (the default) steps by the window size.
      Stride: int option
      /// Padding with negative infinity, at most half the window (default <c>Valid</c>).
      Padding: Padding
      /// Round the output size up, keeping a partial window at the end (default false).
      CeilMode: bool
      /// Spacing of the window's taps on both axes (default 1); a dilated window needs floor mode.
      Dilation: int }

/// Optional settings of <c>avgPool2dWith</c>; start from <c>AvgPool2d.defaults</c>.
type AvgPool2dSettings =
    { /// Stride; <c>None</c> (the default) steps by the window size.
      Stride: int option
      /// Zero padding, at most half the window (default <c>Valid</c>).
      Padding: Padding
      /// Round the output size up (default false).
      CeilMode: bool
      /// Divide by the whole window, padding included (PyTorch's default, true), or by the real elements only.
      CountIncludePad: bool
      /// Rows below and columns on the right where they differ from <c>Padding</c> (default <c>None</c>: the same), as ONNX's
      /// SAME pads an even window; padding that differs or exceeds half the window must be below it, in floor mode.
      PadBottomRight: (int * int) option }

/// Optional settings of <c>maxPoolNdWith</c> and <c>avgPoolNdWith</c>; start from <c>PoolNd.defaults</c>.
type PoolNdSettings =
    { /// Stride; <c>None</c> (the default) steps by the window size.
      Stride: int option
      /// Padding on both sides of every axis (default <c>Valid</c>; <c>PadHW</c> does not apply).
      Padding: Padding
      /// For averages: divide by the whole window, padding included (default true).
      CountIncludePad: bool }

/// Optional settings of <c>channelMaxPoolWith</c>; start from <c>ChannelMaxPool.defaults</c>.
type ChannelMaxPoolSettings =
    { /// Channel step between windows; <c>None</c> (the default) steps by the window size (maxout).
      Stride: int option }

/// Optional settings of <c>batchNormWith</c>; start from <c>BatchNorm.defaults</c>.
type BatchNormSettings =
    { /// Weight of the new batch in the running statistics (default 0.1, PyTorch's; Keras's momentum 0.99 is 0.01 here).
      Momentum: float
      /// Added to the variance (default 1e-5).
      Epsilon: float }

/// Optional settings of <c>lrnWith</c> in PyTorch's convention; start from <c>Lrn.defaults</c> or <c>Lrn.fromPaper</c>.
type LrnSettings =
    { /// Channels in the window (default 5).
      Size: int
      /// Scale, divided by <c>Size</c> in the formula (default 1e-4).
      Alpha: float
      /// Exponent (default 0.75).
      Beta: float
      /// Additive constant (default 1).
      K: float }

/// Optional settings of <c>denseWith</c>; start from <c>Dense.defaults</c>.
type DenseSettings =
    { /// Whether to add a bias (default true).
      Bias: bool }

/// The defaults of <c>conv2dWith</c>: stride 1, no padding, dilation 1, one group, a bias.
module Conv2d =
    /// Stride 1, <c>Valid</c>, dilation 1, one group, a bias: what <c>conv2d</c> uses.
    let defaults: Conv2dSettings = { Stride = 1; Padding = Valid; Dilation = 1; Groups = 1; Bias = true }

/// The defaults of <c>conv1dWith</c>.
module Conv1d =
    /// Stride 1, <c>Valid</c>, dilation 1, one group, a bias: what <c>conv1d</c> uses.
    let defaults: Conv1dSettings = { Stride = 1; Padding = Valid; Dilation = 1; Groups = 1; Bias = true }

/// The defaults of <c>conv3dWith</c>.
module Conv3d =
    /// Stride 1, <c>Valid</c>, a bias: what <c>conv3d</c> uses.
    let defaults: Conv3dSettings = { Stride = 1; Padding = Valid; Bias = true }

/// The defaults of <c>convTranspose2dWith</c>.
module ConvTranspose2d =
    /// Stride 1, no padding, no output padding, a bias: what <c>convTranspose2d</c> uses.
    let defaults: ConvTranspose2dSettings = { Stride = 1; Padding = 0; OutputPadding = 0; Bias = true }

/// The defaults of <c>convNdWith</c> and <c>convTransposeNdWith</c>.
module ConvNd =
    /// Stride 1, no padding, no output padding, dilation 1, one group, a bias: what <c>convNd</c> and <c>convTransposeNd</c> use.
    let defaults: ConvNdSettings = { Stride = []; Padding = []; OutputPadding = []; PaddingEnd = []; Dilation = []; Groups = 1; Bias = true }

/// The defaults of <c>maxPool2dWith</c>.
module MaxPool2d =
    /// Stride equal to the window, no padding, floor mode: what <c>maxPool2d</c> uses.
    let defaults: MaxPool2dSettings = { Stride = None; Padding = Valid; CeilMode = false; Dilation = 1 }

/// The defaults of <c>avgPool2dWith</c>.
module AvgPool2d =
    /// Stride equal to the window, no padding, floor mode, padding counted: what <c>avgPool2d</c> uses.
    let defaults: AvgPool2dSettings = { Stride = None; Padding = Valid; CeilMode = false; CountIncludePad = true; PadBottomRight = None }

/// The defaults of <c>maxPoolNdWith</c> and <c>avgPoolNdWith</c>.
module PoolNd =
    /// Stride equal to the window, no padding, padding counted in averages.
    let defaults: PoolNdSettings = { Stride = None; Padding = Valid; CountIncludePad = true }

/// The defaults of <c>channelMaxPoolWith</c>.
module ChannelMaxPool =
    /// Stride equal to the window (maxout).
    let defaults: ChannelMaxPoolSettings = { Stride = None }

/// The defaults of <c>channelAvgPoolWith</c> (the settings of channel max pooling).
module ChannelAvgPool =
    /// Stride equal to the window.
    let defaults: ChannelMaxPoolSettings = { Stride = None }

/// The defaults of <c>batchNormWith</c>.
module BatchNorm =
    /// PyTorch's momentum 0.1 and epsilon 1e-5: what <c>batchNorm</c> uses.
    let defaults: BatchNormSettings =
        let d = Cnn.Dsl.BatchNorm()
        { Momentum = float d.Momentum; Epsilon = float d.Epsilon }

/// The defaults of <c>lrnWith</c>, and the AlexNet paper's convention.
module Lrn =
    /// PyTorch's size 5, alpha 1e-4, beta 0.75, k 1: what <c>lrn</c> uses.
    let defaults: LrnSettings =
        let d = Cnn.Dsl.Lrn()
        { Size = d.Size; Alpha = float d.Alpha; Beta = float d.Beta; K = float d.K }

    /// The settings for the AlexNet paper's constants, whose alpha is not divided by the size
    /// (the paper's n = 5, alpha = 1e-4, beta = 0.75, k = 2 are <c>Lrn.fromPaper 5 1e-4 0.75 2.0</c>).
    let fromPaper (size: int) (paperAlpha: float) (beta: float) (k: float) : LrnSettings =
        let l = Cnn.Dsl.Lrn.FromPaper(size, float32 paperAlpha, float32 beta, float32 k)
        { Size = l.Size; Alpha = float l.Alpha; Beta = float l.Beta; K = float l.K }

/// The defaults of <c>denseWith</c>.
module Dense =
    /// A bias: what <c>dense</c> uses.
    let defaults: DenseSettings = { Bias = true }

/// Maps the F# settings onto the C# records' numbers.
module internal Resolve =
    /// The (height, width) padding for a 2-d window of (kh, kw) taps spaced by dilation.
    let padding2d (layer: string) (padding: Padding) (kh: int, kw: int) (dilation: int) : int * int =
        let same k =
            let span = dilation * (k - 1)
            if span % 2 <> 0 then
                invalidArg "Padding" $"%s{layer}: Same padding needs an odd kernel (dilated extent %d{span + 1}); found kernel %d{kh}x%d{kw}. Use Pad or PadHW."
            span / 2
        match padding with
        | Valid -> 0, 0
        | Same -> same kh, same kw
        | Pad p -> p, p
        | PadHW (h, w) -> h, w

    /// The padding of a layer with one padding for every axis.
    let paddingNd (layer: string) (padding: Padding) (kernel: int) (dilation: int) : int =
        match padding with
        | PadHW _ -> invalidArg "Padding" $"%s{layer}: PadHW applies to 2-d layers only; use Pad or Same."
        | p -> fst (padding2d layer p (kernel, kernel) dilation)

    /// The C# initialiser for an F# scheme.
    let init (scheme: WeightInit) : Init =
        match scheme with
        | PyTorchDefault -> Init.PyTorch
        | GlorotUniform -> Init.GlorotUniform
        | HeNormal -> Init.HeNormal
        | Zeros -> Init.Zeros
        | Normal std -> Init.Normal(float32 std)
