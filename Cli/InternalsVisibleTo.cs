using System.Runtime.CompilerServices;

// The tests run the commands and the picture makers in-process.
[assembly: InternalsVisibleTo("PropertyTests")]
