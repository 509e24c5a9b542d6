using Cnn.Core;
using Cnn.Dsl;
using Xunit;

namespace Cnn.Tests.Dsl;

public class SummaryTests
{
    /// <summary>The CIFAR-10 network of the Keras tutorial, whose summary lists 896, 18,496, 36,928, 65,600, 650 and 122,570 in all.</summary>
    [Fact]
    public void TheKerasTutorialNetworksSummaryShowsKerasCounts()
    {
        var net = Network.Create(new Serial(
            new Conv2d(32, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Conv2d(64, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2),
            new Conv2d(64, 3, 3), new Relu(),
            new Flatten(), new Dense(64), new Relu(), new Dense(10)), new Shape(3, 32, 32));
        var text = Summary.Format(net);
        var rows = Summary.Rows(net).Where(r => r.Parameters > 0).Select(r => r.Parameters).ToArray();
        Assert.Equal(new long[] { 896, 18_496, 36_928, 65_600, 650 }, rows);
        Assert.Contains("(None, 64, 4, 4)", text);
        Assert.Contains("(None, 1024)", text);
        Assert.Contains("Total params: 122,570", text);
        Assert.Contains("Trainable params: 122,570", text);
        Assert.Contains("Non-trainable params: 0", text);
    }

    [Fact]
    public void BatchNormCountsFourPerChannelOfWhichTwoDoNotTrainAndFrozenLayersDoNotTrain()
    {
        var net = Network.Create(new Serial(new Freeze(new Conv2d(8, 3, 3).Named("stem")), new BatchNorm(), new Flatten(), new Dense(2)), new Shape(1, 5, 5));
        var t = Summary.Totals(net);
        long conv = 8 * 9 + 8, bn = 4 * 8, dense = 8 * 9 * 2 + 2;
        Assert.Equal(conv + bn + dense, t.Parameters);
        Assert.Equal(2 * 8 + dense, t.Trainable);
        Assert.Equal(conv + 2 * 8, t.NonTrainable);
        Assert.Contains("Non-trainable params: 96", Summary.Format(net));
        Assert.Equal(9L * 8 * 9, Summary.Rows(net)[0].MultiplyAdds);
        Assert.Equal(4L * (8 * 9 + 8 * 9 + 72 + 2), t.ActivationBytes);
    }
}
