namespace Cnn.Dsl;

/// <summary>A hash of a parameter or layer path that is stable across processes and machines (unlike string.GetHashCode).</summary>
internal static class PathHash
{
    /// <summary>FNV-1a over the path's UTF-16 code units.</summary>
    public static int Of(string path)
    {
        uint h = 2166136261;
        foreach (char c in path) h = (h ^ c) * 16777619;
        return (int)h;
    }

    /// <summary>A generator for one path under one seed: per-path streams do not shift when layers are added.</summary>
    public static Random Generator(int seed, string path) => new(seed ^ Of(path));
}
