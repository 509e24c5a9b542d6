using Cnn.Core;
using Cnn.Dsl.IO;

namespace Cnn.Cli;

/// <summary>
/// Output folders of the commands (<c>--out DIR</c>): made when missing, refused when not empty unless forced, and
/// every failure to make one is a <see cref="CnnException"/> naming the folder. A training run also locks its folder
/// (<see cref="FolderLock"/>) for as long as it runs.
/// </summary>
internal static class RunFolder
{
    /// <summary>Makes <paramref name="path"/> if missing; refuses a non-empty folder unless <paramref name="force"/>.</summary>
    /// <exception cref="CnnException">The path is not a folder, is not empty (without force), or cannot be made.</exception>
    public static string Prepare(string path, bool force, string option = "--out")
    {
        var kind = FileKinds.Of(path);
        if (kind is not (FileKind.Missing or FileKind.Directory))
            throw new CnnException($"The output folder '{path}' ({option}) is {FileKinds.Describe(kind)}, not a folder.");
        if (kind == FileKind.Directory && !force && HasContent(path))
            throw new CnnException($"The output folder '{path}' exists and is not empty; choose another {option} or pass --force to write into it.");
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnException($"Cannot make the output folder '{path}' ({option}): {e.Message}", e);
        }
        return path;
    }

    /// <summary>
    /// The run folder of <c>cnn train</c>, prepared and locked. Without <paramref name="force"/>, a non-empty folder is
    /// accepted only when it is the folder of the checkpoint being resumed (<paramref name="resumePath"/>).
    /// </summary>
    /// <exception cref="CnnException">See <see cref="Prepare"/>; or another run holds the folder.</exception>
    public static FolderLock PrepareAndLock(string path, bool force, string? resumePath)
    {
        bool ownFolder = resumePath is not null &&
            string.Equals(Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar), Path.GetDirectoryName(Path.GetFullPath(resumePath)), StringComparison.Ordinal);
        bool existed = FileKinds.Of(path) == FileKind.Directory;
        Prepare(path, force: true);
        // The lock comes before the emptiness check, so that a second run into a busy folder is told who holds it.
        var held = FolderLock.Acquire(path);
        if (existed && !force && !ownFolder && HasContent(path))
        {
            held.Dispose();
            throw new CnnException(resumePath is null
                ? $"The output folder '{path}' exists and is not empty; choose another --out or pass --force to write into it."
                : $"The output folder '{path}' is not empty and is not the folder of the checkpoint '{resumePath}'; " +
                  "resume into the checkpoint's own folder, choose an empty --out, or pass --force to write into it.");
        }
        return held;
    }

    private static bool HasContent(string path)
    {
        try { return Directory.EnumerateFileSystemEntries(path).Any(e => !FolderLock.IsLockFile(Path.GetFileName(e))); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnException($"Cannot read the output folder '{path}': {e.Message}", e);
        }
    }
}
