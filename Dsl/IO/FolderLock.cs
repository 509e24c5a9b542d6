using System.Globalization;
using Cnn.Core;

namespace Cnn.Dsl.IO;

/// <summary>
/// An exclusive claim on a folder, so that two runs never write into one run folder at once: the file
/// <see cref="LockFileName"/> in the folder, held open with <see cref="FileShare.None"/> (on Unix an advisory
/// <c>flock(2)</c>, which the kernel releases when the process ends, however it ends), and
/// <see cref="OwnerFileName"/> naming the holder's process id for the message another run gets. Both files stay in
/// the folder after release (deleting a lock file races with a process about to take it); they are hidden and
/// do not count as content. Taking the lock also removes temporary files that killed runs left behind
/// (<see cref="AtomicFile.RemoveStaleTemporaries"/>).
/// </summary>
public sealed class FolderLock : IDisposable
{
    /// <summary>The lock file's name.</summary>
    public const string LockFileName = ".cnn.lock";

    /// <summary>The file that names the holder: its process id and when it took the lock.</summary>
    public const string OwnerFileName = ".cnn.lock.owner";

    private readonly FileStream _stream;

    private FolderLock(string folder, FileStream stream) => (Folder, _stream) = (folder, stream);

    /// <summary>The locked folder.</summary>
    public string Folder { get; }

    /// <summary>Whether a file name is one of the lock's own files, which do not make a folder "not empty".</summary>
    public static bool IsLockFile(string name) => name is LockFileName or OwnerFileName;

    /// <summary>Takes the folder's lock, or fails at once (no waiting) naming the process that holds it.</summary>
    /// <param name="folder">An existing folder.</param>
    /// <exception cref="CnnException">Another process (or another run in this one) holds the lock, or the folder cannot be written.</exception>
    public static FolderLock Acquire(string folder)
    {
        var lockPath = Path.Combine(folder, LockFileName);
        FileStream stream;
        try { stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (UnauthorizedAccessException e) { throw new CnnException($"Cannot write in the folder '{folder}': {e.Message}", e); }
        catch (IOException e) when (File.Exists(lockPath))
        {
            string owner = "another process";
            try
            {
                var text = File.ReadAllText(Path.Combine(folder, OwnerFileName)).Trim();
                if (text.Length is > 0 and < 200) owner = text;
            }
            catch (Exception r) when (r is IOException or UnauthorizedAccessException) { }
            throw new CnnException($"The folder '{folder}' is in use by {owner}: another run is writing into it (lock file {LockFileName}). Wait for it to finish, or choose another --out. ({e.Message})", e);
        }
        catch (IOException e) { throw new CnnException($"Cannot write in the folder '{folder}': {e.Message}", e); }
        try
        {
            AtomicFile.WriteAllBytes(Path.Combine(folder, OwnerFileName), System.Text.Encoding.UTF8.GetBytes(
                string.Create(CultureInfo.InvariantCulture, $"process {Environment.ProcessId} (since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC)\n")), createFolder: false);
            AtomicFile.RemoveStaleTemporaries(folder);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        return new FolderLock(folder, stream);
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _stream.Dispose();
}
