using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RapidFire.Spec.Configs;

/// <summary>
/// The optimizers a config names, made race-free: the factories of <c>TorchSharp.torch.optim</c>, with the same names,
/// parameter names and defaults, returning <see cref="RaceFreeOptimizers"/> (a race-free subclass of each of
/// TorchSharp's managed optimizers). <see cref="Optimizers"/> reads its catalog from this class.
/// </summary>
/// <remarks>
/// LBFGS is native in TorchSharp (its step is libtorch's, with no managed Scalars): its factory passes through to
/// <c>torch.optim.LBFGS</c>.
/// </remarks>
public static class RaceFreeOptim
{
    /// <summary>Stochastic gradient descent (optionally with momentum), as <c>torch.optim.SGD</c>.</summary>
    public static RaceFreeOptimizers.SGD SGD(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false) =>
        new(parameters, learningRate, momentum, dampening, weight_decay, nesterov, maximize);

    /// <summary>Adam, as <c>torch.optim.Adam</c>.</summary>
    public static RaceFreeOptimizers.Adam Adam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false) =>
        new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>AdamW (decoupled weight decay), as <c>torch.optim.AdamW</c>.</summary>
    public static RaceFreeOptimizers.AdamW AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false) =>
        new(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);

    /// <summary>RMSprop, as <c>torch.optim.RMSProp</c>.</summary>
    public static RaceFreeOptimizers.RMSProp RMSProp(IEnumerable<Parameter> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false) =>
        new(parameters, lr, alpha, eps, weight_decay, momentum, centered, maximize);

    /// <summary>Adagrad, as <c>torch.optim.Adagrad</c>.</summary>
    public static RaceFreeOptimizers.Adagrad Adagrad(IEnumerable<Parameter> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10) =>
        new(parameters, lr, lr_decay, weight_decay, initial_accumulator_value, eps);

    /// <summary>Adadelta, as <c>torch.optim.Adadelta</c>.</summary>
    public static RaceFreeOptimizers.Adadelta Adadelta(IEnumerable<Parameter> parameters, double lr = 1.0, double rho = 0.9, double eps = 1e-6, double weight_decay = 0, bool maximize = false) =>
        new(parameters, lr, rho, eps, weight_decay, maximize);

    /// <summary>Adamax, as <c>torch.optim.Adamax</c>.</summary>
    public static RaceFreeOptimizers.Adamax Adamax(IEnumerable<Parameter> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0) =>
        new(parameters, lr, beta1, beta2, eps, weight_decay);

    /// <summary>NAdam, as <c>torch.optim.NAdam</c>.</summary>
    public static RaceFreeOptimizers.NAdam NAdam(IEnumerable<Parameter> named_parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, double momentum_decay = 4e-3) =>
        new(named_parameters, lr, beta1, beta2, eps, weight_decay, momentum_decay);

    /// <summary>RAdam, as <c>torch.optim.RAdam</c>.</summary>
    public static RaceFreeOptimizers.RAdam RAdam(IEnumerable<Parameter> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0) =>
        new(parameters, lr, beta1, beta2, eps, weight_decay);

    /// <summary>Averaged SGD, as <c>torch.optim.ASGD</c>.</summary>
    public static RaceFreeOptimizers.ASGD ASGD(IEnumerable<Parameter> parameters, double lr = 1e-3, double lambd = 1e-4, double alpha = 0.75, double t0 = 1e6, double weight_decay = 0, bool maximize = false) =>
        new(parameters, lr, lambd, alpha, t0, weight_decay, maximize);

    /// <summary>Resilient backpropagation, as <c>torch.optim.Rprop</c>.</summary>
    public static RaceFreeOptimizers.Rprop Rprop(IEnumerable<Parameter> parameters, double lr = 1e-2, double etaminus = 0.5, double etaplus = 1.2, double min_step = 1e-6, double max_step = 50, bool maximize = false) =>
        new(parameters, lr, etaminus, etaplus, min_step, max_step, maximize);

    /// <summary>L-BFGS: TorchSharp's own (native, no managed Scalars in its step), from <c>torch.optim.LBFGS</c>.</summary>
    public static TorchSharp.Modules.LBFGS LBFGS(IEnumerable<Parameter> parameters, double lr = 0.01, long max_iter = 20, long? max_eval = null, double tolerange_grad = 1e-5, double tolerance_change = 1e-9, long history_size = 100) =>
        torch.optim.LBFGS(parameters, lr, max_iter, max_eval, tolerange_grad, tolerance_change, history_size);
}

/// <summary>
/// TorchSharp's managed optimizers with a <c>step</c> that cannot race the finalizer.
/// </summary>
/// <remarks>
/// <para>
/// TorchSharp 0.107's optimizers pass numbers to libtorch as implicit <see cref="Scalar"/>s
/// (<c>exp_avg.mul_(beta1).add_(grad, alpha: 1 - beta1)</c>; <c>add_(eps)</c> and <c>add_(tensor)</c> also make an
/// implicit <c>alpha = 1</c>). A Scalar reaches native code as a bare handle with no <c>GC.KeepAlive</c>, so the
/// finalizer can free it while libtorch reads it: a random <c>Unknown scalar type</c> or <c>Expected false to be true
/// ... toFloat at Scalar.h</c> that fails the run.
/// </para>
/// <para>
/// Each class here derives from TorchSharp's class of the same name and overrides only <c>step</c>: the same tensor
/// operations, in the same order, on the same Scalar values and types (an <c>int</c> where TorchSharp converts an
/// <c>int</c>), so training is bit-identical to TorchSharp's; but every Scalar is made explicitly and held in a
/// <c>using</c> variable that outlives the native calls that read it. Options, per-parameter state and
/// <c>save_state_dict</c>/<c>load_state_dict</c> are TorchSharp's. The class names are TorchSharp's too, on purpose:
/// <c>save_state_dict</c> writes <c>GetType().Name</c> and <c>load_state_dict</c> checks it, so a checkpoint written
/// with TorchSharp's optimizer loads into ours and back, byte for byte.
/// </para>
/// </remarks>
public static class RaceFreeOptimizers
{
    /// <summary>TorchSharp's SGD with a race-free step.</summary>
    public sealed class SGD : TorchSharp.Modules.SGD
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0.0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
            : base(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var momentum = options.momentum!.Value;
            var dampening = options.dampening!.Value;
            var weightDecay = options.weight_decay!.Value;
            var nesterov = options.nesterov!.Value;
            var maximize = options.maximize!.Value;
            var lr = options.LearningRate!.Value;

            using var weightDecayS = weightDecay.ToScalar();
            using var momentumS = momentum.ToScalar();
            using var undampened = (1 - dampening).ToScalar();
            using var stepS = (maximize ? lr : -lr).ToScalar();

            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;

                if (weightDecay != 0) grad = grad.add(param, weightDecayS);
                if (momentum != 0)
                {
                    var buffer = state.momentum_buffer;
                    if (buffer is null)
                    {
                        buffer = grad.clone().detach().DetachFromDisposeScope();
                        state.momentum_buffer = buffer;
                    }
                    else
                    {
                        buffer.mul_(momentumS).add_(grad, undampened);
                    }
                    grad = nesterov ? grad.add(buffer, momentumS) : buffer;
                }
                param.add_(grad, stepS);
            }
        }, closure);
    }

    /// <summary>TorchSharp's Adam with a race-free step.</summary>
    public sealed class Adam : TorchSharp.Modules.Adam
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public Adam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
            : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var weightDecay = options.weight_decay!.Value;
            var amsgrad = options.amsgrad!.Value;
            var maximize = options.maximize!.Value;
            var eps = options.eps!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar(); // the alpha that add_(Scalar) passes
            using var beta1S = beta1.ToScalar();
            using var beta2S = beta2.ToScalar();
            using var rest1 = (1 - beta1).ToScalar();
            using var rest2 = (1 - beta2).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;
                if (maximize) grad = -grad;

                state.step += 1;
                var correction1 = 1 - Math.Pow(beta1, state.step);
                var correction2 = 1 - Math.Pow(beta2, state.step);

                if (weightDecay != 0) grad = grad.add(param, weightDecayS);

                AdamUpdate(param, grad, grad.conj(), state.exp_avg, state.exp_avg_sq, ref state.max_exp_avg_sq, amsgrad,
                    beta1S, beta2S, rest1, rest2, epsS, one, correction2, lr / correction1);
            }
        }, closure);
    }

    /// <summary>
    /// The moment updates and the parameter update that Adam and AdamW share, in TorchSharp's order (Adam's second
    /// moment multiplies the gradient by its conjugate, AdamW's by itself: <paramref name="gradFactor"/>).
    /// </summary>
    private static void AdamUpdate(Parameter param, Tensor grad, Tensor gradFactor, Tensor expAvg, Tensor expAvgSq, ref Tensor maxExpAvgSq,
        bool amsgrad, Scalar beta1, Scalar beta2, Scalar rest1, Scalar rest2, Scalar eps, Scalar one, double correction2, double stepSize)
    {
        expAvg.mul_(beta1).add_(grad, rest1);
        expAvgSq.mul_(beta2).addcmul_(grad, gradFactor, rest2);

        using var root2 = Math.Sqrt(correction2).ToScalar();
        Tensor denom;
        if (amsgrad)
        {
            var previous = maxExpAvgSq;
            maxExpAvgSq = torch.maximum(previous, expAvgSq).DetachFromDisposeScope();
            previous.Dispose();
            denom = maxExpAvgSq.sqrt().div(root2).add_(eps, one);
        }
        else
        {
            denom = expAvgSq.sqrt().div(root2).add_(eps, one);
        }

        using var stepS = (-stepSize).ToScalar();
        param.addcdiv_(expAvg, denom, stepS);
    }

    /// <summary>TorchSharp's AdamW with a race-free step.</summary>
    public sealed class AdamW : TorchSharp.Modules.AdamW
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
            : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var weightDecay = options.weight_decay!.Value;
            var amsgrad = options.amsgrad!.Value;
            var maximize = options.maximize!.Value;
            var eps = options.eps!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var decay = (1 - lr * weightDecay).ToScalar();
            using var beta1S = beta1.ToScalar();
            using var beta2S = beta2.ToScalar();
            using var rest1 = (1 - beta1).ToScalar();
            using var rest2 = (1 - beta2).ToScalar();
            using var epsS = eps.ToScalar();

            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;
                if (maximize) grad = -grad;

                state.step += 1;
                param.mul_(decay);

                var correction1 = 1 - Math.Pow(beta1, state.step);
                var correction2 = 1 - Math.Pow(beta2, state.step);

                AdamUpdate(param, grad, grad, state.exp_avg, state.exp_avg_sq, ref state.max_exp_avg_sq, amsgrad,
                    beta1S, beta2S, rest1, rest2, epsS, one, correction2, lr / correction1);
            }
        }, closure);
    }

    /// <summary>TorchSharp's RMSProp with a race-free step.</summary>
    public sealed class RMSProp : TorchSharp.Modules.RMSProp
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public RMSProp(IEnumerable<Parameter> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
            : base(parameters, lr, alpha, eps, weight_decay, momentum, centered, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var maximize = options.maximize!.Value;
            var momentum = options.momentum!.Value;
            var alpha = options.alpha!.Value;
            var weightDecay = options.weight_decay!.Value;
            var centered = options.centered!.Value;
            var eps = options.eps!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var minusOne = (-1).ToScalar();
            using var alphaS = alpha.ToScalar();
            using var rest = (1 - alpha).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();
            using var momentumS = momentum.ToScalar();
            using var stepS = (-lr).ToScalar();

            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;
                if (maximize) grad = -grad;

                state.step += 1;
                if (weightDecay != 0) grad = grad.add(param, weightDecayS);

                state.square_avg.mul_(alphaS).addcmul_(grad, grad, rest);

                Tensor avg;
                if (centered)
                {
                    var gradAvg = state.grad_avg;
                    gradAvg.mul_(alphaS).add_(grad, rest);
                    avg = state.square_avg.addcmul(gradAvg, gradAvg, minusOne).sqrt_().add_(epsS, one);
                }
                else
                {
                    avg = state.square_avg.sqrt().add_(epsS, one);
                }

                if (momentum > 0)
                {
                    var buffer = state.momentum_buffer;
                    buffer.mul_(momentumS).addcdiv_(grad, avg, one);
                    param.add_(buffer, stepS);
                }
                else
                {
                    param.addcdiv_(grad, avg, stepS);
                }
            }
        }, closure);
    }

    /// <summary>TorchSharp's Adagrad with a race-free step.</summary>
    public sealed class Adagrad : TorchSharp.Modules.Adagrad
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public Adagrad(IEnumerable<Parameter> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
            : base(parameters, lr, lr_decay, weight_decay, initial_accumulator_value, eps)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var lrDecay = options.lr_decay!.Value;
            var weightDecay = options.weight_decay!.Value;
            var eps = options.eps!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                var grad = param.grad;
                if (grad is null) continue;

                state.step += 1;
                if (weightDecay != 0) grad = grad.add(param, weightDecayS);

                var clr = lr / (1 + (state.step - 1) * lrDecay);

                if (grad.is_sparse)
                    throw new NotImplementedException("Adagrad optimization over sparse parameters");
                if (torch.is_complex(grad))
                    throw new NotImplementedException("Adagrad optimization over complex parameters");

                state.sum.addcmul_(grad, grad, one);
                var std = state.sum.sqrt().add_(epsS, one);
                using var stepS = (-clr).ToScalar();
                param.addcdiv_(grad, std, stepS);
            }
        }, closure);
    }

    /// <summary>TorchSharp's Adadelta with a race-free step.</summary>
    public sealed class Adadelta : TorchSharp.Modules.Adadelta
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public Adadelta(IEnumerable<Parameter> parameters, double lr = 1.0, double rho = 0.9, double eps = 1e-6, double weight_decay = 0, bool maximize = false)
            : base(parameters, lr, rho, eps, weight_decay, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var rho = options.rho!.Value;
            var eps = options.eps!.Value;
            var weightDecay = options.weight_decay!.Value;
            var maximize = options.maximize!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var rhoS = rho.ToScalar();
            using var rest = (1 - rho).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();
            using var stepS = (-lr).ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                if (maximize) grad = -grad;
                if (grad.is_sparse) throw new ArgumentException("Adadelta does not support sparse gradients");

                var state = (State)_state[param.Handle];
                var squareAvg = state.square_avg;
                var accDelta = state.acc_delta;

                grad = weightDecay != 0 ? grad.add(param, weightDecayS) : grad.alias();

                squareAvg.mul_(rhoS).addcmul_(grad, grad, rest);
                var std = squareAvg.add(epsS, one).sqrt_();
                var delta = accDelta.add(epsS, one).sqrt_().div_(std).mul_(grad);

                param.add_(delta, stepS);
                accDelta.mul_(rhoS).addcmul_(delta, delta, rest);
            }
        }, closure);
    }

    /// <summary>TorchSharp's Adamax with a race-free step.</summary>
    public sealed class Adamax : TorchSharp.Modules.Adamax
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public Adamax(IEnumerable<Parameter> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
            : base(parameters, lr, beta1, beta2, eps, weight_decay)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var eps = options.eps!.Value;
            var weightDecay = options.weight_decay!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var beta1S = beta1.ToScalar();
            using var beta2S = beta2.ToScalar();
            using var rest1 = (1 - beta1).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                if (grad.is_sparse) throw new ArgumentException("Adamax does not support sparse gradients");

                var state = (State)_state[param.Handle];
                state.step += 1;
                var expAvg = state.exp_avg;
                var expInf = state.exp_inf;

                grad = weightDecay != 0 ? grad.add(param, weightDecayS) : grad.alias();

                expAvg.mul_(beta1S).add_(grad, rest1);
                var normBuffer = torch.cat(new[] { expInf.mul_(beta2S).unsqueeze(0), grad.abs().add_(epsS, one).unsqueeze_(0) }, 0);
                torch.amax(normBuffer, new long[] { 0 }, false, expInf);

                var clr = lr / (1 - Math.Pow(beta1, state.step));
                using var stepS = (-clr).ToScalar();
                param.addcdiv_(expAvg, expInf, stepS);
            }
        }, closure);
    }

    /// <summary>TorchSharp's NAdam with a race-free step.</summary>
    public sealed class NAdam : TorchSharp.Modules.NAdam
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public NAdam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, double momentum_decay = 4e-3)
            : base(parameters, lr, beta1, beta2, eps, weight_decay, momentum_decay)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var eps = options.eps!.Value;
            var weightDecay = options.weight_decay!.Value;
            var momentumDecay = options.momentum_decay!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var beta1S = beta1.ToScalar();
            using var beta2S = beta2.ToScalar();
            using var rest1 = (1 - beta1).ToScalar();
            using var rest2 = (1 - beta2).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;

                var state = (State)_state[param.Handle];
                state.step += 1;
                var expAvg = state.exp_avg;
                var expAvgSq = state.exp_avg_sq;

                var correction2 = 1 - Math.Pow(beta2, state.step);

                grad = weightDecay != 0 ? grad.add(param, weightDecayS) : grad.alias();

                var mu = beta1 * (1.0 - 0.5 * Math.Pow(0.96, state.step * momentumDecay));
                var muNext = beta1 * (1.0 - 0.5 * Math.Pow(0.96, (state.step + 1) * momentumDecay));
                var muProduct = state.mu_product * mu;
                var muProductNext = muProduct * muNext;

                expAvg.mul_(beta1S).add_(grad, rest1);
                expAvgSq.mul_(beta2S).addcmul_(grad, grad, rest2);

                using var correction2S = correction2.ToScalar();
                var denom = expAvgSq.div(correction2S).sqrt_().add_(epsS, one);

                using var gradStep = (-lr * (1 - mu) / (1 - muProduct)).ToScalar();
                using var avgStep = (-lr * muNext / (1 - muProductNext)).ToScalar();
                param.addcdiv_(grad, denom, gradStep);
                param.addcdiv_(expAvg, denom, avgStep);

                state.mu_product = muProduct;
            }
        }, closure);
    }

    /// <summary>TorchSharp's RAdam with a race-free step.</summary>
    public sealed class RAdam : TorchSharp.Modules.RAdam
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public RAdam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
            : base(parameters, lr, beta1, beta2, eps, weight_decay)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var eps = options.eps!.Value;
            var weightDecay = options.weight_decay!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var minusOne = (-1.0).ToScalar(); // a double here, as TorchSharp passes it
            using var lrS = lr.ToScalar();
            using var beta1S = beta1.ToScalar();
            using var beta2S = beta2.ToScalar();
            using var rest1 = (1 - beta1).ToScalar();
            using var rest2 = (1 - beta2).ToScalar();
            using var epsS = eps.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;

                var state = (State)_state[param.Handle];
                state.step += 1;
                var expAvg = state.exp_avg;
                var expAvgSq = state.exp_avg_sq;

                var correction1 = 1 - Math.Pow(beta1, state.step);
                var correction2 = 1 - Math.Pow(beta2, state.step);

                grad = weightDecay != 0 ? grad.add(param, weightDecayS) : grad.alias();

                expAvg.mul_(beta1S).add_(grad, rest1);
                expAvgSq.mul_(beta2S).addcmul_(grad, grad, rest2);

                using var correction1S = correction1.ToScalar();
                var corrected = expAvg.div(correction1S);

                var rhoInf = 2 / (1 - beta2) - 1;
                var rhoT = rhoInf - 2 * state.step * Math.Pow(beta2, state.step) / correction2;

                var t6 = corrected.mul(lrS);
                if (rhoT > 5)
                {
                    var rect = Math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
                    using var root2 = Math.Sqrt(correction2).ToScalar();
                    using var rectS = rect.ToScalar();
                    // TorchSharp's `sqrt(c2) / t` is t.reciprocal().mul(sqrt(c2)).
                    var adaptiveLr = expAvgSq.sqrt().add_(epsS, one).reciprocal().mul(root2);
                    param.add_(t6.mul(lrS).mul(adaptiveLr).mul(rectS), minusOne);
                }
                else
                {
                    param.add_(t6, minusOne);
                }
            }
        }, closure);
    }

    /// <summary>TorchSharp's ASGD with a race-free step.</summary>
    public sealed class ASGD : TorchSharp.Modules.ASGD
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public ASGD(IEnumerable<Parameter> parameters, double lr = 0.01, double lambd = 1e-4, double alpha = 0.75, double t0 = 1e6, double weight_decay = 0, bool maximize = false)
            : base(parameters, lr, lambd, alpha, t0, weight_decay, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var maximize = options.maximize!.Value;
            var lambd = options.lambd!.Value;
            var alpha = options.alpha!.Value;
            var weightDecay = options.weight_decay!.Value;
            var t0 = options.t0!.Value;
            var lr = options.LearningRate!.Value;

            using var one = 1.ToScalar();
            using var weightDecayS = weightDecay.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                if (grad.is_sparse) throw new ArgumentException("ASGD does not support sparse gradients");
                if (maximize) grad = -grad;

                var state = (State)_state[param.Handle];
                state.step += 1;

                grad = weightDecay != 0 ? grad.add(param, weightDecayS) : grad.alias();

                using var decay = (1 - lambd * state.eta).ToScalar();
                using var stepS = (-state.eta).ToScalar();
                param.mul_(decay);
                param.add_(grad, stepS);

                if (state.mu != 1)
                {
                    using var mu = state.mu.ToScalar();
                    state.ax.add_(param.sub(state.ax).mul(mu), one);
                }
                else
                {
                    state.ax.copy_(param);
                }

                state.eta = lr / Math.Pow((1 + lambd * lr * state.step), alpha);
                state.mu = 1 / Math.Max(1, state.step - t0);
            }
        }, closure);
    }

    /// <summary>TorchSharp's Rprop with a race-free step.</summary>
    public sealed class Rprop : TorchSharp.Modules.Rprop
    {
        /// <summary>As TorchSharp's constructor of the same parameters.</summary>
        public Rprop(IEnumerable<Parameter> parameters, double lr = 1e-2, double etaminus = 0.5, double etaplus = 1.2, double min_step = 1e-6, double max_step = 50, bool maximize = false)
            : base(parameters, lr, etaminus, etaplus, min_step, max_step, maximize)
        {
        }

        /// <inheritdoc />
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            var maximize = options.maximize!.Value;
            var etaminus = options.etaminus!.Value;
            var etaplus = options.etaplus!.Value;
            var minStep = options.min_step!.Value;
            var maxStep = options.max_step!.Value;

            using var zero = 0.ToScalar();
            using var minusOne = (-1).ToScalar();
            using var etaminusS = etaminus.ToScalar();
            using var minStepS = minStep.ToScalar();
            using var maxStepS = maxStep.ToScalar();

            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                if (grad.is_sparse) throw new ArgumentException("Rprop does not support sparse gradients");
                if (maximize) grad = -grad;

                var state = (State)_state[param.Handle];
                state.step += 1;

                // Tensors, not Scalars, as TorchSharp writes them: (Tensor)x is torch.tensor(x).
                var sign = grad.mul(state.prev).sign();
                sign[sign.gt(zero)] = (Tensor)etaplus;
                sign[sign.lt(zero)] = (Tensor)etaminus;
                sign[sign.eq(zero)] = (Tensor)1;

                state.step_size.mul_(sign).clamp_(minStepS, maxStepS);

                grad = grad.clone();
                grad.index_put_(zero, sign.eq(etaminusS));

                param.addcmul_(grad.sign(), state.step_size, minusOne);
                state.prev.copy_(grad);
            }
        }, closure);
    }
}
