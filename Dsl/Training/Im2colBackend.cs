using Cnn.Core;

namespace Cnn.Dsl;

/// <summary>The im2col backend as a <see cref="TrainingBackend"/>: each step is <see cref="Trainer.Step(Network, Parameters, Parameters, Optimizer, OptimizerState, Tensor, ReadOnlySpan{int}, LossFunction?, int)"/> on immutable values.</summary>
internal sealed class Im2colBackend : TrainingBackend
{
    public override string Name => "im2col";

    public override TrainingSession Start(Network network, Parameters parameters, Parameters state, OptimizerState optimizerState) =>
        new Session(network, parameters, state, optimizerState);

    private sealed class Session(Network network, Parameters parameters, Parameters state, OptimizerState optimizerState) : TrainingSession
    {
        private Parameters _parameters = parameters, _state = state;
        private OptimizerState _optimizerState = optimizerState;

        public override Parameters Parameters => _parameters;

        public override Parameters State => _state;

        public override OptimizerState OptimizerState => _optimizerState;

        public override BatchOutcome Step(Optimizer optimizer, Tensor x, ReadOnlySpan<int> labels, LossFunction loss, int seed) =>
            Take(Trainer.Step(network, _parameters, _state, optimizer, _optimizerState, x, labels, loss, seed));

        public override BatchOutcome Step(Optimizer optimizer, Tensor x, Tensor targets, LossFunction loss, int seed) =>
            Take(Trainer.Step(network, _parameters, _state, optimizer, _optimizerState, x, targets, loss, seed));

        private BatchOutcome Take(StepResult g)
        {
            if (float.IsFinite(g.Loss)) (_parameters, _state, _optimizerState) = (g.Parameters, g.State, g.OptimizerState);
            return new BatchOutcome(g.Loss, g.Output);
        }

        public override void Restore(Parameters parameters, Parameters state) => (_parameters, _state) = (parameters, state);
    }
}
