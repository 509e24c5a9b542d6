using Cnn.Core;
using Cnn.Dsl;
using Xunit;
using F = Cnn.FSharp.Layers;
using FModel = Cnn.FSharp.ModelModule;

namespace Cnn.Tests.Dsl;

/// <summary>
/// The F# surface seen from C#: its functions build the same records as the C# API. The F# surface's own laws and
/// twins are tested in F#, in PropertyTests.FSharp.
/// </summary>
public class FSharpSurfaceTests
{
    [Fact]
    public void TheFSharpFunctionsBuildTheSameValueAsTheCSharpRecords()
    {
        var fsharp = F.op_GreaterMinusGreater(F.op_GreaterMinusGreater(F.conv2d(30, 5, 5), F.relu),
            F.op_GreaterMinusGreater(F.maxPool2d(2), F.op_GreaterMinusGreater(F.flatten, F.dense(10))));
        var csharp = new Serial(new Conv2d(30, 5, 5), new Relu(), new MaxPool2d(2, 2, 2, 2), new Flatten(), new Dense(10));
        Assert.Equal<Layer>(csharp, fsharp);
    }

    [Fact]
    public void BuildReturnsTheShapeErrorAsAValue()
    {
        var r = FModel.build(Microsoft.FSharp.Collections.ListModule.OfArray(new[] { 1, 3, 3 }), F.conv2d(4, 5, 5));
        Assert.True(r.IsError);
        Assert.Contains("'conv1'", r.ErrorValue);
    }
}
