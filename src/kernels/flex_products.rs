//! Flex tensors as the operands of `product.rs`, read through their strides (a transposed view
//! is not copied). The wasm build answers `None` and Burn's own product runs.

use burn::backend::Flex;
use burn::backend::tensor::FloatTensor;

/// `a b` over the last two dimensions, the leading ones broadcast (a missing one counts as 1),
/// plus `bias` (`[n]`) on every row; `None` where this path does not apply (another dtype, a
/// negative stride, shapes that do not fit).
pub fn product(
    a: &FloatTensor<Flex>,
    b: &FloatTensor<Flex>,
    bias: Option<&FloatTensor<Flex>>,
) -> Option<FloatTensor<Flex>> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (a, b, bias);
        None
    }
    #[cfg(not(target_arch = "wasm32"))]
    native::product_with(a, b, bias, None)
}

/// One of causal attention's products (`Causal`): the values the mask makes irrelevant are
/// left 0; `None` where `product` would answer `None`.
pub fn causal_product(
    a: &FloatTensor<Flex>,
    b: &FloatTensor<Flex>,
    part: super::attention::Causal,
) -> Option<FloatTensor<Flex>> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (a, b, part);
        None
    }
    #[cfg(not(target_arch = "wasm32"))]
    native::product_with(a, b, None, Some(part))
}

/// `x w + bias` over `x`'s last dimension; with `x` contiguous its leading dimensions become
/// the rows of one product.
pub fn affine(
    x: &FloatTensor<Flex>,
    w: &FloatTensor<Flex>,
    bias: Option<&FloatTensor<Flex>>,
) -> Option<FloatTensor<Flex>> {
    let shape = x.layout().shape().clone();
    let rank = shape.num_dims();
    if rank < 2 || w.layout().shape().num_dims() != 2 {
        return None;
    }
    let d_in = shape[rank - 1];
    let x2 = if x.is_contiguous() && d_in > 0 {
        x.reshape([shape.num_elements() / d_in, d_in].into())
    } else {
        x.clone()
    };
    let out = product(&x2, w, bias)?;
    let mut dims = shape.to_vec();
    dims[rank - 1] = w.layout().shape()[1];
    Some(out.reshape(dims.into()))
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use burn::backend::Flex;
    use burn::backend::ops::FloatTensorOps;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::{DType, TensorData};

    use super::super::attention::Causal;
    use super::super::product::{Operand, banded, product as multiply};

    /// Below this many rows `few_rows.rs` runs.
    const FEW_ROWS: usize = 16;

    /// `product`, or with `causal` one of causal attention's products.
    pub fn product_with(
        a: &FloatTensor<Flex>,
        b: &FloatTensor<Flex>,
        bias: Option<&FloatTensor<Flex>>,
        causal: Option<Causal>,
    ) -> Option<FloatTensor<Flex>> {
        let (sa, sb) = (a.layout().shape(), b.layout().shape());
        let (ra, rb) = (sa.num_dims(), sb.num_dims());
        let f32s = [a, b].iter().all(|t| t.dtype() == DType::F32);
        if !f32s || ra < 2 || rb < 2 || sa[ra - 1] != sb[rb - 2] {
            return None;
        }
        let [m, k, n] = [sa[ra - 2], sa[ra - 1], sb[rb - 1]];
        // The output's leading dimensions: both operands' right-aligned, 1 broadcast.
        let lead = ra.max(rb) - 2;
        let dim =
            |s: &[usize], r: usize, d: usize| (d + r >= lead + 2).then(|| s[d + r - lead - 2]);
        let mut batch = Vec::with_capacity(lead);
        for d in 0..lead {
            let (x, y) = (dim(sa, ra, d).unwrap_or(1), dim(sb, rb, d).unwrap_or(1));
            batch.push(match (x, y) {
                _ if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            });
        }
        let bias = match bias {
            None => None,
            Some(t) if t.dtype() == DType::F32 && t.layout().shape().num_elements() == n => {
                Some(if t.is_contiguous() {
                    t.clone()
                } else {
                    t.to_contiguous()
                })
            }
            Some(_) => return None,
        };
        let bias = bias
            .as_ref()
            .map(|t| t.as_slice::<f32>().expect("contiguous f32"));
        let (a, b) = (operand(a, &batch)?, operand(b, &batch)?);
        let out = if let Some(part) = causal {
            banded([m, k, n], &a, &b, |rows| part.band([m, k, n], rows))
        } else if m < FEW_ROWS {
            // A few rows (one new token at a time): `b` streamed once, no packing.
            super::super::few_rows::product([m, k, n], &a, &b, bias)?
        } else {
            multiply([m, k, n], &a, &b, bias)
        };
        let dims: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
        Some(Flex::float_from_data(
            TensorData::new(out, dims),
            &Default::default(),
        ))
    }

    /// `t` as an operand over the output's leading dimensions `batch`: where each of its
    /// matrices starts (a dimension of 1, or a missing one, repeated); `None` for a negative
    /// stride.
    fn operand<'a>(t: &'a FloatTensor<Flex>, batch: &[usize]) -> Option<Operand<'a>> {
        let layout = t.layout();
        let (shape, strides) = (layout.shape(), layout.strides());
        let r = shape.num_dims();
        if strides.iter().any(|s| *s < 0) {
            return None;
        }
        let count: usize = batch.iter().product();
        let mut starts = Vec::with_capacity(count);
        for i in 0..count {
            let (mut rest, mut at) = (i, layout.start_offset());
            for d in (0..batch.len()).rev() {
                let index = rest % batch[d];
                rest /= batch[d];
                // This operand's dimension for output dimension d, if it has one.
                if let Some(own) = (d + r).checked_sub(batch.len() + 2)
                    && shape[own] != 1
                {
                    at += index * strides[own] as usize;
                }
            }
            starts.push(at);
        }
        Some(Operand {
            values: t.storage::<f32>(),
            starts,
            strides: [strides[r - 2] as usize, strides[r - 1] as usize],
        })
    }
}
