//! Where each film pixel comes from in the phantom: maps from output pixel centres to phantom
//! points, evaluated a row at a time for `Canvas::warp`.

/// Output pixel centre -> phantom point, a row at a time (what `Canvas::warp` resamples by).
pub trait PointMap {
    /// `out[x]`: the point of pixel centre `(x + 0.5, y + 0.5)`.
    fn row(&self, y: usize, out: &mut [(f32, f32)]);
}

/// The affine map `sx = m[0] x + m[1] y + m[2]`, `sy = m[3] x + m[4] y + m[5]`.
pub struct Affine(pub [f32; 6]);

impl PointMap for Affine {
    fn row(&self, y: usize, out: &mut [(f32, f32)]) {
        let (m, y) = (self.0, y as f32 + 0.5);
        for (x, o) in out.iter_mut().enumerate() {
            let x = x as f32 + 0.5;
            *o = (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]);
        }
    }
}

/// A map on a `size` x `size` film evaluated on a grid every `step` pixels and interpolated
/// bilinearly between: for smooth maps, the same points at a fraction of the cost.
pub struct Gridded {
    n: usize,
    step: f32,
    grid: Vec<(f32, f32)>,
    /// `cell` of each pixel centre along a row.
    cells: Vec<(usize, f32)>,
}

fn mix(p: (f32, f32), q: (f32, f32), t: f32) -> (f32, f32) {
    (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t)
}

impl Gridded {
    pub fn new(size: usize, step: usize, map: impl Fn(f32, f32) -> (f32, f32)) -> Self {
        let n = size / step + 2;
        let mut grid = Vec::with_capacity(n * n);
        for j in 0..n {
            for i in 0..n {
                grid.push(map((i * step) as f32, (j * step) as f32));
            }
        }
        let mut g = Self {
            n,
            step: step as f32,
            grid,
            cells: Vec::new(),
        };
        g.cells = (0..size).map(|x| g.cell(x as f32 + 0.5)).collect();
        g
    }

    /// Grid cell and offset in it of film coordinate `v`.
    fn cell(&self, v: f32) -> (usize, f32) {
        let g = (v / self.step).clamp(0.0, (self.n - 1) as f32 - 1e-3);
        (g as usize, g - (g as usize) as f32)
    }
}

impl PointMap for Gridded {
    /// Between the grid's rows first (once per row), then along the row.
    fn row(&self, y: usize, out: &mut [(f32, f32)]) {
        let (j, ay) = self.cell(y as f32 + 0.5);
        let (top, bottom) = (
            &self.grid[j * self.n..(j + 1) * self.n],
            &self.grid[(j + 1) * self.n..(j + 2) * self.n],
        );
        let col: Vec<(f32, f32)> = top
            .iter()
            .zip(bottom)
            .map(|(&t, &b)| mix(t, b, ay))
            .collect();
        for (o, &(i, ax)) in out.iter_mut().zip(&self.cells) {
            *o = mix(col[i], col[i + 1], ax);
        }
    }
}
