using System.Runtime.CompilerServices;

// The tests run the convolution on each micro-kernel and on the code paths of CPUs without AVX-512.
[assembly: InternalsVisibleTo("PropertyTests")]
