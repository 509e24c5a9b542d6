namespace Cnn.Cli;

/// <summary>"Did you mean" for mistyped commands, options and names: the candidates closest in edit distance.</summary>
internal static class Suggest
{
    /// <summary>
    /// <c>"; did you mean 'x'?"</c> (or <c>'x' or 'y'</c>) for the candidates nearest to <paramref name="typed"/>, when
    /// the nearest is within a third of its length (at least 1 edit, or a prefix of at least 3 letters); else empty.
    /// </summary>
    public static string DidYouMean(string typed, IEnumerable<string> candidates)
    {
        var near = Closest(typed, candidates);
        return near.Count == 0 ? "" : $"; did you mean {string.Join(" or ", near.Select(c => $"'{c}'"))}?";
    }

    /// <summary>The candidates at the smallest distance from <paramref name="typed"/>, if close enough; at most 3.</summary>
    public static IReadOnlyList<string> Closest(string typed, IEnumerable<string> candidates)
    {
        var scored = candidates.Distinct().Select(c => (c, d: Score(typed, c))).Where(t => t.d <= Math.Max(1, typed.TrimStart('-').Length / 3)).ToList();
        if (scored.Count == 0) return [];
        int best = scored.Min(t => t.d);
        return scored.Where(t => t.d == best).Select(t => t.c).Take(3).ToList();
    }

    // A candidate that the typed text begins (at least 3 letters besides dashes) counts as one edit away, so that
    // '--early' finds '--early-stopping'.
    private static int Score(string typed, string candidate) =>
        typed.TrimStart('-').Length >= 3 && candidate.StartsWith(typed, StringComparison.Ordinal) ? 1 : Distance(typed, candidate);

    /// <summary>The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of neighbours.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
