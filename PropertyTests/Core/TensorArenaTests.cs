using Cnn.Core;
using Cnn.Core.Kernels;
using System.Runtime.InteropServices;
using Xunit;

namespace Cnn.Tests.Core;

/// <summary>The arena recycles the arrays of kernel outputs, copies out what is kept, and refuses misuse.</summary>
public sealed class TensorArenaTests
{
    private static readonly Tensor Input = Tensor.FromArray(Enumerable.Range(0, 4096).Select(i => (i % 7) - 3f).ToArray(), 4, 1024);

    [Fact]
    public void An_output_after_recycle_reuses_the_array_of_one_before()
    {
        var arena = new TensorArena();
        Tensor first, second;
        using (arena.Activate()) first = Activations.Relu(Input);
        var firstValues = first.ToArray();
        arena.Recycle();
        using (arena.Activate()) second = Activations.Sigmoid(Input);
        arena.Recycle();
        // The same storage now holds the sigmoid: what the contract says a recycled tensor is worth.
        Assert.Same(first.Array(), second.Array());
        Assert.False(first.Span.SequenceEqual(firstValues));
    }

    [Fact]
    public void Small_arrays_are_recycled_only_by_an_arena_made_for_them()
    {
        var small = Tensor.FromArray(new[] { -1f, 2f, -3f }, 3);
        foreach (var (arena, recycled) in new[] { (new TensorArena(), false), (new TensorArena(minimumLength: 1), true) })
        {
            Tensor first, second;
            using (arena.Activate()) first = Activations.Relu(small);
            arena.Recycle();
            using (arena.Activate()) second = Activations.Relu(small);
            arena.Recycle();
            Assert.Equal(recycled, ReferenceEquals(first.Array(), second.Array()));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new TensorArena(minimumLength: 0));
    }

    [Fact]
    public void Keep_copies_arena_tensors_out_and_returns_others_as_they_are()
    {
        var arena = new TensorArena();
        Tensor inside;
        using (arena.Activate()) inside = Activations.Relu(Input);
        var kept = arena.Keep(inside);
        var expected = inside.ToArray();
        Assert.NotSame(inside.Array(), kept.Array());
        Assert.Same(Input, arena.Keep(Input));
        arena.Recycle();
        using (arena.Activate()) Activations.Sigmoid(Input);
        arena.Recycle();
        Assert.Equal(expected, kept.ToArray());
    }

    [Fact]
    public void Small_arrays_and_other_threads_are_not_served_by_the_arena()
    {
        var arena = new TensorArena();
        var small = Tensor.FromArray(new float[] { -1f, 2f }, 2);
        using (arena.Activate())
        {
            var y = Activations.Relu(small);
            Assert.Same(y, arena.Keep(y));
            Tensor? other = null;
            var thread = new Thread(() => other = Activations.Relu(Input));
            thread.Start();
            thread.Join();
            Assert.Same(other, arena.Keep(other!));
        }
        Assert.Equal(0, arena.RetainedBytes);
    }

    [Fact]
    public void Lengths_a_round_did_not_use_are_released()
    {
        var arena = new TensorArena();
        using (arena.Activate()) Activations.Relu(Input);
        arena.Recycle();
        Assert.Equal(4096L * sizeof(float), arena.RetainedBytes);
        using (arena.Activate()) Activations.Relu(Input.Reshape(8, 512).Slice(0, 4));
        arena.Recycle();
        Assert.Equal(2048L * sizeof(float), arena.RetainedBytes);
    }

    [Fact]
    public void Misuse_is_refused_with_a_message()
    {
        var arena = new TensorArena();
        using (arena.Activate())
        {
            Assert.True(TensorArena.ActiveOnThisThread);
            Assert.Contains("already active", Assert.Throws<InvalidOperationException>(() => arena.Activate()).Message);
            Assert.Contains("another arena", Assert.Throws<InvalidOperationException>(() => new TensorArena().Activate()).Message);
            Assert.Contains("dispose the active scope", Assert.Throws<InvalidOperationException>(arena.Recycle).Message);
        }
        Assert.False(TensorArena.ActiveOnThisThread);
    }
}

internal static class TensorStorage
{
    /// <summary>The array behind a tensor (its memory is always a whole array).</summary>
    public static float[] Array(this Tensor t) =>
        MemoryMarshal.TryGetArray(t.Memory, out var segment) ? segment.Array! : throw new InvalidOperationException("not array-backed");
}
