//! Under autodiff (training; the browser build has none): each fused function is one tracked op
//! whose backward pass is the fused one.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

use super::Fused;

/// One tracked op whose backward pass is `backward(input, grad)`, the input its only state.
fn op<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Op<B: Backend>(fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>);

    impl<B: Backend> Backward<B, 1> for Op<B> {
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let input = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| (self.0)(input, grad));
        }
    }

    let (input, node) = x.into_parts();
    match Op::<B>(backward)
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(input.clone(), forward(input)),
        OpsKind::UnTracked(prep) => prep.finish(forward(input)),
    }
}

impl<B: Backend + Fused, C: CheckpointStrategy> Fused for Autodiff<B, C> {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        op::<B, C>(x, B::silu, B::silu_backward)
    }
    fn gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        op::<B, C>(x, B::gelu_tanh, B::gelu_tanh_backward)
    }
}
