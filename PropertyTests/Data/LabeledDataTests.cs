using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Data;

public sealed class LabeledDataTests
{
    /// <summary>n examples of shape [2, 3] whose every element is the row's index, so a row can be told by its pixels.</summary>
    private static LabeledData Numbered(int n, int classes = 3)
    {
        var px = new float[n * 6];
        for (int i = 0; i < px.Length; i++) px[i] = i / 6;
        return new LabeledData(Tensor.FromArray(px, n, 2, 3), Enumerable.Range(0, n).Select(i => i % classes).ToArray(), classes);
    }

    /// <summary>The row each example came from, read from its pixels; checks that labels travelled with their images.</summary>
    private static int[] Rows(LabeledData d)
    {
        var rows = new int[d.Count];
        for (int i = 0; i < d.Count; i++)
        {
            var row = d.Images.Span.Slice(i * 6, 6);
            rows[i] = (int)row[0];
            foreach (var v in row) Assert.Equal(row[0], v);
            Assert.Equal(rows[i] % d.Classes, d.Labels[i]);
        }
        return rows;
    }

    [Property(MaxTest = 200)]
    public void Split_is_deterministic_disjoint_and_complete(int size, int first, int seed)
    {
        int n = Math.Abs(size % 300);
        int k = n == 0 ? 0 : Math.Abs(first % (n + 1));
        var data = Numbered(n);

        var a = data.Split(k, seed);
        var b = data.Split(k, seed);
        Assert.Equal(k, a.First.Count);
        Assert.Equal(n - k, a.Second.Count);
        Assert.Equal(Rows(a.First), Rows(b.First));
        Assert.Equal(Rows(a.Second), Rows(b.Second));
        Assert.True(a.First.Images.Span.SequenceEqual(b.First.Images.Span));

        var all = Rows(a.First).Concat(Rows(a.Second)).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, n), all); // disjoint and complete: every row exactly once
        Assert.Equal(data.Classes, a.First.Classes);
    }

    [Fact]
    public void Split_shuffles_and_different_seeds_give_different_splits()
    {
        var data = Numbered(100);
        var s1 = Rows(data.Split(50, 1).First);
        var s2 = Rows(data.Split(50, 2).First);
        Assert.NotEqual(s1, s2);
        Assert.NotEqual(Enumerable.Range(0, 50), s1);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(11)]
    public void Split_rejects_a_first_part_outside_the_data(int firstCount)
    {
        var ex = Assert.Throws<CnnException>(() => Numbered(10).Split(firstCount, 0));
        Assert.Contains(firstCount.ToString(), ex.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3)]
    [InlineData(int.MaxValue)]
    public void Labels_out_of_range_are_rejected_naming_row_and_value(int bad)
    {
        var labels = new[] { 0, 1, 2, bad, 1 };
        var ex = Assert.Throws<CnnException>(() => new LabeledData(Tensor.Zeros(5, 4), labels, 3));
        Assert.Contains("row 3", ex.Message);
        Assert.Contains(bad.ToString(), ex.Message);
    }

    [Fact]
    public void Label_count_must_match_the_images()
    {
        Assert.Throws<CnnException>(() => new LabeledData(Tensor.Zeros(5, 4), new[] { 0, 1 }, 3));
        Assert.Throws<CnnException>(() => new LabeledData(Tensor.Zeros(2, 4), new[] { 0, 1 }, 0));
    }

    [Fact]
    public void Is_immutable_against_changes_to_the_callers_list()
    {
        var labels = new List<int> { 0, 1, 2 };
        var data = new LabeledData(Tensor.Zeros(3, 1), labels, 3);
        labels[0] = 2;
        Assert.Equal(0, data.Labels[0]);
        Assert.Throws<NotSupportedException>(() => ((IList<int>)data.Labels)[0] = 1);
    }

    [Fact]
    public void Take_returns_the_rows_in_order_and_rejects_bad_rows()
    {
        var data = Numbered(10);
        var t = data.Take(new[] { 7, 2, 2, 9 });
        Assert.Equal(new[] { 7, 2, 2, 9 }, Rows(t));
        Assert.Equal(new Shape(4, 2, 3), t.Images.Shape);
        var ex = Assert.Throws<CnnException>(() => data.Take(new[] { 1, 10 }));
        Assert.Contains("10", ex.Message);
        Assert.Throws<CnnException>(() => data.Take(new[] { -1 }));
    }

    [Fact]
    public void Batch_slices_images_and_labels_together()
    {
        var data = Numbered(10);
        var b = data.Batch(3, 4);
        Assert.Equal(new[] { 3, 4, 5, 6 }, Rows(b));
        Assert.Equal(0, data.Batch(10, 0).Count);
        Assert.Throws<CnnException>(() => data.Batch(8, 3));
        Assert.Throws<CnnException>(() => data.Batch(-1, 2));
        Assert.Throws<CnnException>(() => data.Batch(1, int.MaxValue));
    }
}
