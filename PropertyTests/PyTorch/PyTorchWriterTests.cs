using System.Collections.Immutable;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Dsl.PyTorch;
using Xunit;

namespace Cnn.Tests.PyTorch;

/// <summary>The PyTorch writer's text and refusals, without Python.</summary>
public sealed class PyTorchWriterTests
{
    /// <summary>A layer kind no interpreter knows.</summary>
    private sealed record Mystery : LeafLayer
    {
        public override string Kind => "mystery";

        public override Shape OutputShape(Shape input, string path, bool strict) => input;
    }

    [Fact]
    public void A_layer_kind_without_a_rule_is_refused_naming_the_layer_and_its_kind()
    {
        var net = Network.Create(new Serial(new Relu(), new Mystery().Named("odd")), new Shape(3));
        var e = Assert.Throws<CnnException>(() => PyTorchExport.ModuleSource(net));
        Assert.Contains("'odd'", e.Message);
        Assert.Contains("'mystery'", e.Message);
    }

    [Fact]
    public void A_layer_name_with_a_dot_is_refused()
    {
        var net = Network.Create(new Serial(new Dense(2).Named("fc.1")), new Shape(3));
        Assert.Contains("'fc.1'", Assert.Throws<CnnException>(() => PyTorchExport.ModuleSource(net)).Message);
    }

    [Fact]
    public void The_module_names_layers_by_our_paths_and_marks_frozen_parameters()
    {
        var net = Network.Create(new Serial(new Freeze(new Conv2d(2, 3, 3).Named("stem")), new BatchNorm(), new Flatten(), new Dense(4).Named("train")),
            new Shape(1, 5, 5));
        var source = PyTorchExport.ModuleSource(net, "tiny");
        Assert.Contains("class Network(Serial):", source);
        Assert.Contains("(\"stem\", nn.Conv2d(1, 2, (3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, bias=True)),", source);
        Assert.Contains("(\"bn1\", BatchNorm(2, momentum=0.1, eps=1E-05)),", source);
        Assert.Contains("(\"train\", nn.Linear(18, 4, bias=True)),", source);
        Assert.Contains("freeze(self, [\"stem.weight\", \"stem.bias\"])", source);
        Assert.Contains("INPUT_SHAPE = (1, 5, 5)", source);
    }

    [Fact]
    public void Write_puts_the_weights_in_a_checkpoint_with_the_network_and_the_training_inputs_beside_them()
    {
        var net = Zoo.LeNet5();
        var data = PyTorchTrainingTests.Digits(net.InputShape, 10, 50, seed: 1);
        var options = new TrainOptions(2, 20, new Adam(), Seed: 3);
        var dir = Directory.CreateTempSubdirectory("pytorch-write");
        try
        {
            var p = Initializer.Init(net, 1);
            var files = PyTorchExport.Write(net, p, Parameters.Empty, dir.FullName, new PyTorchExportOptions
            {
                Training = options, TrainingData = data, Metadata = new Dictionary<string, string> { ["network"] = "lenet5" },
            });
            Assert.Equal(new[] { "model.py", "weights.safetensors", "train.py", "recipe.json", "epoch_order.npy", "x_train.npy", "y_train.npy" },
                files.Select(Path.GetFileName));
            var cp = Checkpoint.Load(Path.Combine(dir.FullName, PyTorchExport.WeightsFile));
            Assert.Equal((1, 0, 0L), (cp.Epoch, cp.Batch, cp.Step));
            Assert.Equal("lenet5", cp.Metadata["network"]);
            Assert.NotNull(Checkpoint.LoadNetwork(cp));
            Assert.Equal(p.Paths, cp.Parameters.Paths);
            Assert.Equal(new[] { "m", "v" }, cp.OptimizerState.Slots.Keys);
            var orders = Npy.Read(Path.Combine(dir.FullName, PyTorchExport.OrderFile)).ToInt32();
            Assert.Equal(Trainer.EpochOrder(50, 3, 1).Concat(Trainer.EpochOrder(50, 3, 2)), orders);
            Assert.Equal(data.Labels, Npy.Read(Path.Combine(dir.FullName, PyTorchExport.LabelsFile)).ToInt32());
            var recipe = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.FullName, PyTorchExport.RecipeFile))).RootElement;
            Assert.Equal(6, recipe.GetProperty("learning_rate").GetArrayLength());
            Assert.Equal("adam", recipe.GetProperty("optimizer").GetProperty("kind").GetString());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void A_recipe_the_script_cannot_follow_is_refused()
    {
        var net = Zoo.LeNet5();
        var data = PyTorchTrainingTests.Digits(net.InputShape, 10, 20, seed: 1);
        var p = Initializer.Init(net, 1);
        var dir = Directory.CreateTempSubdirectory("pytorch-refuse");
        try
        {
            CnnException Refused(TrainingCheckpoint cp, TrainOptions? options, LabeledData? d) => Assert.Throws<CnnException>(() =>
                PyTorchExport.Write(net, cp, dir.FullName, new PyTorchExportOptions { Training = options, TrainingData = d }));
            var fresh = new TrainingCheckpoint(p, Parameters.Empty, new OptimizerState(0, ImmutableSortedDictionary<string, Parameters>.Empty), 1, 0,
                new Dictionary<string, string>());
            var sgd = new TrainOptions(1, 10, new Sgd(0.1f, 0.9f));
            Assert.Contains("callbacks", Refused(fresh, sgd with { Callbacks = [Callback.EarlyStopping("val_loss", patience: 1)] }, data).Message);
            Assert.Contains("both", Refused(fresh, sgd, null).Message);
            Assert.Contains("4 classes", Refused(fresh, sgd, PyTorchTrainingTests.Digits(net.InputShape, 4, 20, seed: 1)).Message);
            Assert.Contains("velocity", Refused(fresh with { OptimizerState = new OptimizerState(5, ImmutableSortedDictionary<string, Parameters>.Empty) }, sgd, data).Message);
            Assert.Contains("past", Refused(fresh with { Epoch = 2 }, sgd, data).Message);
            Assert.Contains("'conv1/bias'", Refused(fresh with { Parameters = Parameters.Of(p.Entries.Skip(1)) }, null, null).Message);
            Assert.Throws<ShapeException>(() => PyTorchExport.Write(net, p.With("conv1/bias", Tensor.Zeros(7)), Parameters.Empty, dir.FullName));
        }
        finally { dir.Delete(true); }
    }
}
