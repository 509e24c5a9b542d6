using System.Runtime.CompilerServices;

// The tests parse exported files with the generated protobuf types (internal) and corrupt models to check the validator.
[assembly: InternalsVisibleTo("PropertyTests")]
