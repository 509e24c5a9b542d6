/// LeNet-5 (LeCun et al., 1998) written with the F# layer functions; the same network as the C# Zoo.LeNet5.
module LeNetFSharp.LeNet5

open Cnn.FSharp

/// C1 6@5x5 (padded by 2, to see the original's 32x32 field) -> tanh -> S2 average 2x2 -> C3 16@5x5 -> tanh
/// -> S4 average 2x2 -> F5 120 -> tanh -> F6 84 -> tanh -> 10 logits. 61,706 parameters.
let layers =
    conv2dWith { Conv2d.defaults with Padding = Same } 6 (5, 5) >-> tanh' >-> avgPool2d 2
    >-> conv2d 16 (5, 5) >-> tanh' >-> avgPool2d 2
    >-> flatten
    >-> dense 120 >-> tanh'
    >-> dense 84 >-> tanh'
    >-> dense 10

/// The shape of one digit: one channel of 28x28 pixels.
let inputShape = [ 1; 28; 28 ]
