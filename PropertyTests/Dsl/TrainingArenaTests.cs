using Cnn.Core;
using Cnn.Dsl;
using Xunit;

namespace Cnn.Tests.Dsl;

/// <summary>
/// A training step recycles its intermediate arrays between steps (<see cref="TensorArena"/>): what a step returns must
/// survive the steps after it, and the results must be those of a step whose every array is new.
/// </summary>
public sealed class TrainingArenaTests
{
    // Batch norm (state), dropout (masks), momentum (optimizer slots) and an output of 2 x 1500 elements: the training
    // arena recycles arrays of every length, so every kind of returned tensor has had a chance to come from it.
    private static readonly Network Net = Network.Create(new Serial(
        new Conv2d(8, 3, 3, PadH: 1, PadW: 1), new BatchNorm(), new Relu(), new MaxPool2d(2, 2, 2, 2),
        new Flatten(), new Dropout(0.3f), new Dense(1500)), new Shape(1, 12, 12));

    private static (Tensor X, int[] Labels) Batch(int seed)
    {
        var rng = new Random(seed);
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * 144).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), 2, 1, 12, 12);
        return (x, new[] { rng.Next(1500), rng.Next(1500) });
    }

    private static StepResult Step(Parameters p, Parameters state, OptimizerState opt, int seed)
    {
        var (x, labels) = Batch(seed);
        return Trainer.Step(Net, p, state, new Sgd(0.1f, 0.9f), opt, x, labels, seed: seed);
    }

    private static float[][] Snapshot(StepResult r) =>
        r.Parameters.Paths.Select(path => r.Parameters[path].ToArray())
            .Concat(r.State.Paths.Select(path => r.State[path].ToArray()))
            .Concat(r.OptimizerState.Slots.Values.SelectMany(slot => slot.Paths.Select(path => slot[path].ToArray())))
            .Append(r.Output.ToArray()).ToArray();

    [Fact]
    public void What_a_step_returns_survives_later_steps_and_equals_a_step_with_new_arrays()
    {
        var p = Initializer.Init(Net, 3);
        var state = Initializer.InitState(Net);
        var opt = new Sgd(0.1f, 0.9f).Init(p);
        // On a new thread, each step's first use of its thread's arena: every array new.
        float[][] fresh = [];
        var thread = new Thread(() => fresh = Snapshot(Step(p, state, opt, seed: 1)));
        thread.Start();
        thread.Join();

        var first = Step(p, state, opt, seed: 1);
        var before = Snapshot(first);
        for (int s = 2; s < 5; s++) Step(p, state, opt, seed: s); // reuse, and overwrite, the arena's arrays
        var after = Snapshot(first);

        Assert.Equal(fresh.Length, before.Length);
        for (int i = 0; i < before.Length; i++)
        {
            Assert.Equal(fresh[i], before[i]);
            Assert.Equal(before[i], after[i]);
        }
        // The same step again, now on recycled arrays, gives the same bits.
        var again = Snapshot(Step(p, state, opt, seed: 1));
        for (int i = 0; i < before.Length; i++) Assert.Equal(before[i], again[i]);
    }

    [Fact]
    public void A_step_inside_a_callers_arena_allocates_from_it_and_returns_usable_results()
    {
        var p = Initializer.Init(Net, 4);
        var state = Initializer.InitState(Net);
        var opt = new Sgd(0.1f, 0.9f).Init(p);
        var expected = Snapshot(Step(p, state, opt, seed: 9));
        var arena = new TensorArena();
        StepResult inside;
        using (arena.Activate()) inside = Step(p, state, opt, seed: 9);
        Assert.True(arena.RetainedBytes > 0, "the step's kernels should have used the caller's arena");
        var actual = Snapshot(inside);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i]);
    }

    /// <summary>This thread's training arena (a private field: what it holds is otherwise invisible).</summary>
    private static TensorArena? ThreadArena() =>
        (TensorArena?)typeof(Trainer).GetField("t_arena", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.GetValue(null);

    [Fact]
    public void Steps_keep_their_arrays_until_released_and_fit_releases_them()
    {
        var p = Initializer.Init(Net, 6);
        var state = Initializer.InitState(Net);
        var opt = new Sgd(0.1f, 0.9f).Init(p);
        Step(p, state, opt, seed: 2);
        Assert.True(ThreadArena() is { RetainedBytes: > 0 }, "a step keeps its arrays for the next one");
        Trainer.ReleaseCachedMemory();
        Assert.Null(ThreadArena());

        var (x, labels) = Batch(3);
        var data = new Cnn.Dsl.Data.LabeledData(x, labels, 1500);
        Trainer.Fit(Net, p, data, new TrainOptions(1, 2, new Sgd(0.1f)), initialState: state);
        Assert.Null(ThreadArena());
    }
}
