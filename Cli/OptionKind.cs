namespace Cnn.Cli;

/// <summary>What an option declared by <see cref="Opt"/> takes (see <see cref="Opt.KindOf"/>).</summary>
internal abstract record OptionKind
{
    /// <summary>No value.</summary>
    public sealed record Flag : OptionKind;

    /// <summary>Any text (a path to read, a name, a list): the command's body checks it.</summary>
    public sealed record Text : OptionKind;

    /// <summary>An integer from <paramref name="Min"/> to <paramref name="Max"/>.</summary>
    public sealed record Int(long Min, long Max) : OptionKind;

    /// <summary>A finite number above 0 and at most <paramref name="Max"/>.</summary>
    public sealed record Positive(float Max) : OptionKind;

    /// <summary>A number from 0 up to but not including 1.</summary>
    public sealed record Fraction : OptionKind;

    /// <summary>One of <paramref name="Values"/>.</summary>
    public sealed record Choice(IReadOnlyList<string> Values) : OptionKind;

    /// <summary>A <c>--data</c> spec (<see cref="DataSource.Help"/>); <paramref name="AlsoNone"/> admits <c>none</c>.</summary>
    public sealed record Data(bool AlsoNone) : OptionKind;

    /// <summary>A zoo network's name.</summary>
    public sealed record Model : OptionKind;

    /// <summary>A path the command writes (a file or a folder).</summary>
    public sealed record Output : OptionKind;
}
