using System.Security.Cryptography;

namespace Cnn.Tests.Reliability.Fuzz;

/// <summary>
/// What a folder tree looks like: per entry its kind, size, modification time, mode, link target and (for regular
/// files up to 1 MB) a hash of its bytes. FIFOs are never opened.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class TreeSnapshot
{
    /// <param name="root">The folder.</param>
    /// <param name="fifos">FIFOs, never opened.</param>
    /// <param name="recursive">Whether to descend into sub-folders.</param>
    /// <param name="hashes">Whether to hash the contents of small files (else size, time and mode only).</param>
    public static Dictionary<string, string> Take(string root, ISet<string> fifos, bool recursive = true, bool hashes = true)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(root)) return map;
        var options = new EnumerationOptions { RecurseSubdirectories = recursive, AttributesToSkip = 0, IgnoreInaccessible = false, ReturnSpecialDirectories = false };
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", options)) map[path] = Describe(path, fifos, hashes);
        return map;
    }

    private static string Describe(string path, ISet<string> fifos, bool hashes)
    {
        try
        {
            FileSystemInfo info = Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null ? new DirectoryInfo(path) : new FileInfo(path);
            if (info.LinkTarget is { } target) return $"link -> {target}";
            var mode = File.GetUnixFileMode(path);
            if (info is DirectoryInfo) return $"dir {mode}";
            var file = (FileInfo)info;
            var d = $"file {file.Length} {file.LastWriteTimeUtc.Ticks} {mode}";
            if (!hashes || fifos.Contains(path) || file.Length > 1 << 20) return d;
            return d + " " + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unreadable " + e.GetType().Name;
        }
    }

    /// <summary>
    /// The differences between two snapshots, leaving out paths at or under any of <paramref name="allowed"/>, and the
    /// folders created on the way to one (an output's missing parents are made, as <c>mkdir -p</c> does).
    /// </summary>
    public static List<string> Changes(Dictionary<string, string> before, Dictionary<string, string> after, IReadOnlyList<string> allowed)
    {
        bool Allowed(string p) => allowed.Any(a => p == a.TrimEnd('/') || p.StartsWith(a.TrimEnd('/') + "/", StringComparison.Ordinal));
        bool Parent(string p) => allowed.Any(a => a.StartsWith(p + "/", StringComparison.Ordinal));
        var changes = new List<string>();
        foreach (var (p, d) in before)
        {
            if (Allowed(p)) continue;
            if (!after.TryGetValue(p, out var now)) changes.Add($"removed {p}");
            else if (now != d) changes.Add($"changed {p}: {d} -> {now}");
        }
        changes.AddRange(after.Where(e => !before.ContainsKey(e.Key) && !Allowed(e.Key) && !(e.Value.StartsWith("dir ", StringComparison.Ordinal) && Parent(e.Key)))
            .Select(e => $"created {e.Key}"));
        return changes;
    }
}
