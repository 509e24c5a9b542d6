using Cnn.Core.Kernels;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static Cnn.Tests.Kernels.Pool2x2Properties;

namespace Cnn.Tests.Kernels;

/// <summary>
/// <see cref="Pool2x2Properties"/>' checks on the 2x2 kernels' AVX2 paths (<see cref="Vector256Paths"/>), which a machine
/// with AVX-512 does not take otherwise. Forward: eight windows a step, put back in order after an in-lane shuffle, a row's
/// last step overlapping the one before, rows of four to seven windows in two overlapping steps of four, shorter ones one
/// by one. Average pooling's backward spread: eight gradients a step, a row's last ones in overlapping steps of four, or
/// under lane masks in rows of one to three windows. Rows of 1 to 35 windows: every remainder of eight. The general loops
/// they are checked against have no vector path to force.
/// </summary>
[Collection(WorkerCountCollection.Name)]
public sealed class Pool2x2Vector256Properties
{
    [CnnProperty(200)]
    public Property Max_pooling_values_have_the_bits_of_the_forward_pass() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        if (!Vector256Paths.Supported) return;
        var x = Input(c);
        var expected = MaxPool2dKernel.Forward(x, Pairs, c.Ceil).Output;
        SameBits(expected, Vector256Paths.With(() => MaxPool2dKernel.ForwardValues(x, Pairs, c.Ceil)));
    });

    [CnnProperty(200)]
    public Property Average_pooling_has_the_bits_of_the_general_loop() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        if (!Vector256Paths.Supported) return;
        var x = Input(c);
        var expected = AvgPool2dKernel.Forward(x, Pairs, c.Ceil, true, pairs: false);
        SameBits(expected, Vector256Paths.With(() => AvgPool2dKernel.Forward(x, Pairs, c.Ceil, true)), anyNaN: true);
    });

    [CnnProperty(200)]
    public Property Average_pooling_backward_has_the_bits_of_the_general_loop() => Prop.ForAll(Cases.ToArbitrary(), c =>
    {
        if (!Vector256Paths.Supported) return;
        var x = Input(c);
        var dy = UpstreamGradient(x, c.Ceil);
        var expected = AvgPool2dKernel.Backward(dy, x.Shape, Pairs, c.Ceil, true, pairs: false);
        SameBits(expected, Vector256Paths.With(() => AvgPool2dKernel.Backward(dy, x.Shape, Pairs, c.Ceil, true)), anyNaN: true);
    });
}
