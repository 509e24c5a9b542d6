namespace Cnn.Dsl.IO;

/// <summary>
/// Writes files so that a reader never sees half a file: the bytes go to a temporary file in the same folder,
/// are flushed to disk (a rename without the flush can leave a zero-length file after a power loss on ext4),
/// and the temporary file is renamed over the target, which is atomic on one file system.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="write"/>'s output to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="createFolder">Create a missing folder (default); when false, a missing folder is an error, for
    /// callers where it more likely means a mistyped path.</param>
    /// <exception cref="Core.CnnException">The folder cannot be written; the message names the path and the cause.</exception>
    public static void Write(string path, Action<Stream> write, bool createFolder = true)
    {
        var full = Path.GetFullPath(path);
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

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
