using System.Runtime.CompilerServices;

// The LibTorch bridge draws its training-mode dropout masks from the same per-path generators as Apply
// (PathHash.Generator), so that the two backends multiply by the same mask and can be compared element by element.
[assembly: InternalsVisibleTo("Cnn.Interop.LibTorch")]
