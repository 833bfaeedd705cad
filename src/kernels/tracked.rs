//! Under autodiff (training; the browser build has none): each fused function is one tracked op
//! whose backward pass is the fused one.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};

use super::Fused;
use super::attention::Causal;

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
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        rms_norm::<B, C>(x, gamma, eps)
    }
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        swiglu::<B, C>(gate, up)
    }
    fn add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        add::<B, C>(a, b)
    }
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        inverse: bool,
    ) -> FloatTensor<Self> {
        rope::<B, C>(x, cos, sin, inverse)
    }
    fn affine(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        affine::<B, C>(x, w)
    }
    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
        causal: bool,
    ) -> FloatTensor<Self> {
        attention::<B, C>(q, k, v, scale, causal)
    }
}

/// `a + b` as a tracked op whose forward pass is the backend's `add`: each input's gradient is
/// the output's.
fn add<B: Backend + Fused, C: CheckpointStrategy>(
    a: FloatTensor<Autodiff<B, C>>,
    b: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Add;

    impl<B: Backend> Backward<B, 2> for Add {
        type State = ();

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            binary::<B, _, _>(ops.parents, ops.node, grads, |g| g, |g| g);
        }
    }

    let (a, node_a) = a.into_parts();
    let (b, node_b) = b.into_parts();
    let out = B::add(a, b);
    Add.prepare::<C>([node_a, node_b])
        .compute_bound()
        .stateless(out)
}

/// `silu(gate) * up` as one tracked op; its state is both inputs.
fn swiglu<B: Backend + Fused, C: CheckpointStrategy>(
    gate: FloatTensor<Autodiff<B, C>>,
    up: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Swiglu;

    impl<B: Backend + Fused> Backward<B, 2> for Swiglu {
        type State = (FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (gate, up) = ops.state;
            let gate2 = gate.clone();
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| B::swiglu_backward_gate(gate, up, grad),
                |grad| B::swiglu_backward_up(gate2, grad),
            );
        }
    }

    let (gate, node_gate) = gate.into_parts();
    let (up, node_up) = up.into_parts();
    let out = B::swiglu(gate.clone(), up.clone());
    match Swiglu
        .prepare::<C>([node_gate, node_up])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((gate, up), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// Rotary positions as one tracked op over `x` (the tables are constants): the backward pass
/// turns the gradient back (`rotary.rs`).
fn rope<B: Backend + Fused, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    cos: FloatTensor<Autodiff<B, C>>,
    sin: FloatTensor<Autodiff<B, C>>,
    inverse: bool,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Rope;

    impl<B: Backend + Fused> Backward<B, 1> for Rope {
        type State = (FloatTensor<B>, FloatTensor<B>, bool);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (cos, sin, inverse) = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::rope(grad, cos, sin, !inverse)
            });
        }
    }

    let (x, node) = x.into_parts();
    let (cos, sin) = (cos.into_primitive(), sin.into_primitive());
    let out = B::rope(x, cos.clone(), sin.clone(), inverse);
    match Rope.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((cos, sin, inverse), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// `softmax(scale Q K^T) V` as one tracked op (`attention.rs` has the maths); its state is the
/// inputs and the probabilities.
fn attention<B: Backend + Fused, C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<B, C>>,
    k: FloatTensor<Autodiff<B, C>>,
    v: FloatTensor<Autodiff<B, C>>,
    scale: f64,
    causal: bool,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Attention;

    type State<B> = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
        bool,
    );

    impl<B: Backend + Fused> Backward<B, 3> for Attention {
        type State = State<B>;

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_q, node_k, node_v] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (q, k, v, p, scale, causal) = ops.state;
            let t = |x: FloatTensor<B>| B::float_swap_dims(x, 2, 3);
            // Causal: each product skips what the mask zeroes (`Causal`).
            let product = |a, b, part| match causal {
                true => B::causal_product(a, b, part),
                false => B::product(a, b),
            };
            if let Some(node) = node_v {
                let dv = product(t(p.clone()), grad.clone(), Causal::FromPt);
                grads.register::<B>(node.id, dv);
            }
            if node_q.is_none() && node_k.is_none() {
                return;
            }
            let dp = product(grad, t(v), Causal::Scores);
            let ds = B::softmax_rows_backward(p, dp, scale);
            if let Some(node) = node_q {
                grads.register::<B>(node.id, product(ds.clone(), k, Causal::FromP));
            }
            if let Some(node) = node_k {
                grads.register::<B>(node.id, product(t(ds), q, Causal::FromPt));
            }
        }
    }

    let (q, node_q) = q.into_parts();
    let (k, node_k) = k.into_parts();
    let (v, node_v) = v.into_parts();
    let product = |a, b, part| match causal {
        true => B::causal_product(a, b, part),
        false => B::product(a, b),
    };
    let scores = product(
        q.clone(),
        B::float_swap_dims(k.clone(), 2, 3),
        Causal::Scores,
    );
    let p = B::softmax_rows(scores, scale, causal);
    let out = product(p.clone(), v.clone(), Causal::FromP);
    match Attention
        .prepare::<C>([node_q, node_k, node_v])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((q, k, v, p, scale, causal), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// `x w` as one tracked op: `dx = dy w^T` (the transpose a view), `dw = x^T dy` with `x`'s
/// leading dimensions as the rows, each the backend's `affine` or `product`.
fn affine<B: Backend + Fused, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    w: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Affine;

    impl<B: Backend + Fused> Backward<B, 2> for Affine {
        type State = (FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, w) = ops.state;
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| B::affine(grad, B::float_swap_dims(w, 0, 1)),
                |grad| {
                    let rows = |t: FloatTensor<B>| {
                        let shape = t.shape();
                        let d = shape[shape.num_dims() - 1];
                        B::float_reshape(t, [shape.num_elements() / d.max(1), d].into())
                    };
                    B::product(B::float_swap_dims(rows(x), 0, 1), rows(grad))
                },
            );
        }
    }

    let (x, node_x) = x.into_parts();
    let (w, node_w) = w.into_parts();
    let out = B::affine(x.clone(), w.clone());
    match Affine
        .prepare::<C>([node_x, node_w])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x, w), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// RMSNorm as one tracked op over `x` and `gamma`; its state is both and `eps`.
fn rms_norm<B: Backend + Fused, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    gamma: FloatTensor<Autodiff<B, C>>,
    eps: f64,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct RmsNorm;

    impl<B: Backend + Fused> Backward<B, 2> for RmsNorm {
        type State = (FloatTensor<B>, FloatTensor<B>, f64);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, gamma, eps) = ops.state;
            let x2 = x.clone();
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| B::rms_norm_backward_x(x, gamma, grad, eps),
                |grad| B::rms_norm_backward_gamma(x2, grad, eps),
            );
        }
    }

    let (x, node_x) = x.into_parts();
    let (gamma, node_gamma) = gamma.into_parts();
    let out = B::rms_norm(x.clone(), gamma.clone(), eps);
    match RmsNorm
        .prepare::<C>([node_x, node_gamma])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x, gamma, eps), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}
