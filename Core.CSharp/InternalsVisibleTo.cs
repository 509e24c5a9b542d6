using System.Runtime.CompilerServices;

// The tests run the convolution on each micro-kernel and on the code paths of CPUs without AVX-512.
[assembly: InternalsVisibleTo("PropertyTests")]

// The inference plan binds the kernels to one input shape and calls their write-into-this-array entry points.
[assembly: InternalsVisibleTo("Cnn.Dsl")]
