namespace Cnn.Dsl.IO;

/// <summary>
/// Writes files so that a reader never sees half a file: the bytes go to a temporary file in the same folder,
/// are flushed to disk (a rename without the flush can leave a zero-length file after a power loss on ext4),
/// and the temporary file is renamed over the target, which is atomic on one file system. Every file the library
/// and the command line write goes through here.
/// <para>
/// What may be replaced: nothing, or a regular file, whose permission bits the new file keeps (a mode-600 file
/// stays 600). A device, a named pipe, a socket or a folder at the path is refused, since a rename would replace the
/// device node itself rather than write to it. A symbolic link is followed: the regular file it finally names is
/// replaced (in that file's folder, so the rename stays atomic) and the link is kept; a link to nothing or to
/// anything but a regular file is refused.
/// </para>
/// <para>
/// A temporary file is named <c>.NAME.PID.GUID.tmp</c>; a process killed inside a write leaves it behind, and
/// <see cref="RemoveStaleTemporaries"/> deletes those of processes no longer alive.
/// </para>
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="write"/>'s output to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="createFolder">Create a missing folder (default); when false, a missing folder is an error, for
    /// callers where it more likely means a mistyped path.</param>
    /// <exception cref="Core.CnnException">The folder cannot be written, or the path names something other than a
    /// regular file; the message names the path and the cause.</exception>
    public static void Write(string path, Action<Stream> write, bool createFolder = true)
    {
        ArgumentNullException.ThrowIfNull(write);
        var full = Target(Path.GetFullPath(path), path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            if (createFolder) Directory.CreateDirectory(dir);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows() && File.Exists(full)) File.SetUnixFileMode(tmp, File.GetUnixFileMode(full));
            // Checked again just before the rename: a device made at the path meanwhile is not replaced either.
            if (FileKinds.OfLink(full) is not (FileKind.Missing or FileKind.Regular) and var kind) throw NotRegular(path, kind);
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new Core.CnnException($"Could not write '{full}': {e.Message}", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="bytes">The content.</param>
    /// <param name="createFolder">Create a missing folder (default), or treat it as an error.</param>
    public static void WriteAllBytes(string path, byte[] bytes, bool createFolder = true) =>
        Write(path, s => s.Write(bytes), createFolder);

    /// <summary>
    /// Checks that <paramref name="path"/> may be written by <see cref="Write"/>: it names nothing, a regular file, or
    /// a symbolic link to a regular file. Commands call it before their work, so that a refused output costs nothing.
    /// </summary>
    /// <exception cref="Core.CnnException">The path names something else.</exception>
    public static void CheckWritable(string path) => Target(Path.GetFullPath(path), path);

    /// <summary>
    /// Deletes the temporary files (<c>.NAME.PID.GUID.tmp</c>) that processes no longer alive left in
    /// <paramref name="folder"/> when they were killed inside a write; files of live processes are kept.
    /// </summary>
    /// <returns>The number of files deleted.</returns>
    public static int RemoveStaleTemporaries(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            var parts = Path.GetFileName(file).Split('.');
            // "", NAME parts..., PID, GUID, "tmp"
            if (parts.Length < 5 || parts[^2].Length != 32 || !int.TryParse(parts[^3], out var pid)) continue;
            if (pid == Environment.ProcessId || IsAlive(pid)) continue;
            TryDelete(file);
            if (!File.Exists(file)) removed++;
        }
        return removed;
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>The file to replace: the path itself, or the regular file a symbolic link finally names.</summary>
    private static string Target(string full, string given)
    {
        var kind = FileKinds.OfLink(full);
        if (kind is FileKind.Missing or FileKind.Regular) return full;
        if (kind != FileKind.SymbolicLink) throw NotRegular(given, kind);
        FileSystemInfo? final;
        try { final = File.ResolveLinkTarget(full, returnFinalTarget: true); }
        catch (IOException e) { throw new Core.CnnException($"Could not write '{given}': its symbolic link cannot be followed ({e.Message}).", e); }
        var target = final?.FullName;
        var targetKind = target is null ? FileKind.Missing : FileKinds.OfLink(target);
        if (target is null || targetKind != FileKind.Regular)
            throw new Core.CnnException($"Could not write '{given}': it is a symbolic link to {(targetKind == FileKind.Missing ? "nothing" : FileKinds.Describe(targetKind))}; " +
                "only a link to a regular file is followed (the file is replaced, the link kept).");
        return target;
    }

    private static Core.CnnException NotRegular(string path, FileKind kind) =>
        new($"Could not write '{path}': it is {FileKinds.Describe(kind)}, not a regular file; only a regular file (or nothing) is replaced. Choose another output path.");

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
