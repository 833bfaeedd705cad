//! Rotary position embedding in one pass (Burn composes it from two slices, a negation, a
//! concatenation, two products and a sum, each with its own backward pass). HF Llama's "rotate
//! half" layout: dimension `j < d/2` of a head pairs with `j + d/2`, and
//! `y = x cos + rotate_half(x) sin`, `rotate_half([x1, x2]) = [-x2, x1]`. The tables repeat over
//! the two halves, so the rotation's transpose (its backward pass) is the same with `-sin`.

use super::simd::rows;

/// `x` is `[.., positions, heads, head_dim]`, `cos` and `sin` `[positions, head_dim]`; with
/// `inverse` each pair turns back (`-sin`): the backward pass.
pub fn apply(
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    [positions, heads, d]: [usize; 3],
    inverse: bool,
) -> Vec<f32> {
    assert_eq!(cos.len(), positions * d, "rotary table");
    assert_eq!(sin.len(), positions * d, "rotary table");
    let half = d / 2;
    let sign = if inverse { -1.0 } else { 1.0 };
    rows(x, None, d, |r, x, _, o| {
        let at = (r / heads) % positions * d;
        let (c, s) = (&cos[at..at + d], &sin[at..at + d]);
        let (x1, x2) = x.split_at(half);
        let (o1, o2) = o.split_at_mut(half);
        for j in 0..half {
            o1[j] = x1[j] * c[j] - sign * x2[j] * s[j];
            o2[j] = x2[j] * c[half + j] + sign * x1[j] * s[half + j];
        }
    })
}

#[cfg(test)]
mod tests {
    /// Each pair turns by its angle, and `inverse` turns it back.
    #[test]
    fn pairs_turn_by_their_angle_and_back() {
        let (positions, heads, d) = (3, 2, 4);
        let angle = |p: usize, j: usize| p as f32 * [0.7, 0.2][j % 2];
        let table = |f: fn(f32) -> f32| -> Vec<f32> {
            (0..positions * d)
                .map(|i| f(angle(i / d, i % d % 2)))
                .collect()
        };
        let (cos, sin) = (table(f32::cos), table(f32::sin));
        let x: Vec<f32> = (0..2 * positions * heads * d)
            .map(|i| (i % 5) as f32 - 2.0)
            .collect();
        let y = super::apply(&x, &cos, &sin, [positions, heads, d], false);
        for r in 0..2 * positions * heads {
            let p = (r / heads) % positions;
            for j in 0..d / 2 {
                let (a, b) = (x[r * d + j], x[r * d + j + 2]);
                let t = angle(p, j);
                let want = [a * t.cos() - b * t.sin(), b * t.cos() + a * t.sin()];
                assert!((y[r * d + j] - want[0]).abs() < 1e-5);
                assert!((y[r * d + j + 2] - want[1]).abs() < 1e-5);
            }
        }
        let back = super::apply(&y, &cos, &sin, [positions, heads, d], true);
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-5));
    }
}
