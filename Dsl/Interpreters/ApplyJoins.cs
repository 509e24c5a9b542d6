using Cnn.Core;
using Cnn.Core.Kernels;

namespace Cnn.Dsl;

public static partial class Apply
{
    /// <summary>The apply interpreter's rules for the combinators that join branches: sums, concatenations and auxiliary heads.</summary>
    private sealed partial class Run
    {
        /// <summary>
        /// The rule of a fan-out joined by sum or concatenation, or of a residual block; with <paramref name="relu"/> (a sum of
        /// two branches or more, see <see cref="WithRelu"/>), that of the join and a ReLU after it.
        /// </summary>
        private (Tensor, Func<Tensor, GradientSink, Tensor>) JoinRule(Node node, Tensor x, bool needDx, bool relu)
        {
            // Loops rather than LINQ: a residual block runs every step, and its iterators and closures were a share of what
            // a step allocates beyond its tensors.
            var outs = new (Tensor Output, Func<Tensor, GradientSink, Tensor> Back)[node.Children.Count];
            for (int i = 0; i < outs.Length; i++) outs[i] = Node(node.Children[i], x, needDx);
            bool concat = node.Layer is FanOut { Join: Dsl.Join.Concat };
            Tensor y;
            if (concat)
            {
                var ys = new Tensor[outs.Length];
                for (int i = 0; i < outs.Length; i++) ys[i] = outs[i].Output;
                y = TensorOps.ConcatChannels(ys);
            }
            else
            {
                y = outs[0].Output;
                for (int i = 1; i < outs.Length; i++)
                    y = relu && i == outs.Length - 1 ? TensorOps.AddRelu(y, outs[i].Output) : TensorOps.Add(y, outs[i].Output);
            }
            var channels = concat ? node.Children.Select(c => c.Output[0]).ToArray() : Array.Empty<int>();
            return (y, (dy, sink) =>
            {
                if (relu) dy = Activations.ReluBackward(y, dy);
                var parts = concat ? TensorOps.SplitChannels(dy, channels) : null;
                Tensor? dx = null;
                for (int i = 0; i < outs.Length; i++)
                {
                    var d = outs[i].Back(parts is null ? dy : parts[i], sink);
                    if (needDx) dx = dx is null ? d : TensorOps.Add(dx, d);
                }
                return dx!;
            });
        }

        /// <summary>
        /// The identity on the trunk; in training the head also runs, its output is recorded, and its pullback (of the gradient
        /// the caller gives for it) is added to the trunk's gradient. Without one, the head's parameters get zero gradients,
        /// as LibTorch's autograd gives a parameter that did not reach the loss.
        /// </summary>
        private (Tensor, Func<Tensor, GradientSink, Tensor>) Auxiliary(Node node, AuxiliaryHead aux, Tensor x, bool needDx)
        {
            var headNode = node.Children[0];
            if (mode != Mode.Train) return (x, (dy, sink) => { ZeroGradients(sink, headNode); return dy; });
            var (h, headBack) = Node(headNode, x, needDx);
            int index = _heads.Count;
            _heads.Add(new HeadOutput(node.Path, aux.Weight, h));
            return (x, (dy, sink) =>
            {
                if (sink.HeadGradient(index) is not { } g)
                {
                    ZeroGradients(sink, headNode);
                    return dy;
                }
                var dh = headBack(g, sink);
                return needDx ? TensorOps.Add(dy, dh) : dy;
            });
        }

        private static void ZeroGradients(GradientSink sink, Node head)
        {
            foreach (var leaf in head.Leaves())
                if (!leaf.Frozen)
                    foreach (var (path, spec) in leaf.ParameterSpecs()) sink.Add(path, Tensor.Zeros(spec.Shape));
        }
    }
}
