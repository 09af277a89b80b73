//! Cheap motion detection on a coarse grayscale grid, to gate the detector: it runs only
//! when, and where, something moves.
//!
//! Each frame is reduced to a grid of cells (each the mean luma of 16 pixels sampled inside
//! it, so about 37 000 reads for a 64-column grid whatever the frame size). A cell moves when
//! it differs from a slowly adapting background by more than a threshold; the background
//! follows each cell with an exponential average, so lighting drift and a car that parked an
//! hour ago fade into it. The answer is the box around the moving cells (grown by one cell),
//! or nothing when fewer than `min_cells` moved.

use super::boxes::BBox;

/// Tuning; the defaults suit 5 fps detection on a 640×360 frame.
#[derive(Debug, Clone, Copy)]
pub struct MotionParams {
    /// Grid columns (rows follow the aspect ratio).
    pub cols: usize,
    /// Luma difference (0-255) that counts as change.
    pub threshold: f32,
    /// Moving cells needed to report motion.
    pub min_cells: usize,
    /// Background adaptation per frame, 0-1.
    pub alpha: f32,
}

impl Default for MotionParams {
    fn default() -> Self {
        MotionParams {
            cols: 64,
            threshold: 18.0,
            min_cells: 3,
            alpha: 0.05,
        }
    }
}

/// The motion detector of one camera.
#[derive(Debug)]
pub struct Motion {
    p: MotionParams,
    cols: usize,
    rows: usize,
    background: Vec<f32>,
    frame: Vec<f32>,
    width: usize,
    height: usize,
}

/// What moved.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionResult {
    /// Fraction of cells that moved.
    pub moving_fraction: f32,
    /// The box around them (grown by one cell); `None` for no motion.
    pub region: Option<BBox>,
}

impl Motion {
    /// A detector for `width`×`height` frames.
    pub fn new(width: usize, height: usize, p: MotionParams) -> Self {
        let cols = p.cols.clamp(4, width.max(4));
        let rows = ((cols * height) / width.max(1)).max(3);
        Motion {
            p,
            cols,
            rows,
            background: Vec::new(),
            frame: vec![0.0; cols * rows],
            width,
            height,
        }
    }

    /// Feeds one packed RGB frame (`stride` bytes per row).
    pub fn update(&mut self, rgb: &[u8], stride: usize) -> MotionResult {
        let (cw, ch) = (self.width / self.cols, self.height / self.rows);
        for r in 0..self.rows {
            for c in 0..self.cols {
                let mut sum = 0u32;
                for sy in 0..4 {
                    let y = r * ch + (sy * 2 + 1) * ch / 8;
                    for sx in 0..4 {
                        let x = c * cw + (sx * 2 + 1) * cw / 8;
                        let i = y * stride + x * 3;
                        if let Some(px) = rgb.get(i..i + 3) {
                            // Integer BT.601 luma.
                            sum +=
                                (77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8;
                        }
                    }
                }
                self.frame[r * self.cols + c] = sum as f32 / 16.0;
            }
        }
        if self.background.is_empty() {
            self.background = self.frame.clone();
            return MotionResult {
                moving_fraction: 0.0,
                region: None,
            };
        }
        let (mut n, mut c0, mut r0, mut c1, mut r1) = (0, usize::MAX, usize::MAX, 0, 0);
        for r in 0..self.rows {
            for c in 0..self.cols {
                let i = r * self.cols + c;
                let (f, b) = (self.frame[i], &mut self.background[i]);
                if (f - *b).abs() > self.p.threshold {
                    n += 1;
                    c0 = c0.min(c);
                    r0 = r0.min(r);
                    c1 = c1.max(c);
                    r1 = r1.max(r);
                }
                *b += (f - *b) * self.p.alpha;
            }
        }
        let moving_fraction = n as f32 / (self.cols * self.rows) as f32;
        if n < self.p.min_cells {
            return MotionResult {
                moving_fraction,
                region: None,
            };
        }
        let (cols, rows) = (self.cols as f32, self.rows as f32);
        MotionResult {
            moving_fraction,
            region: Some(
                BBox {
                    x0: (c0 as f32 - 1.0) / cols,
                    y0: (r0 as f32 - 1.0) / rows,
                    x1: (c1 as f32 + 2.0) / cols,
                    y1: (r1 as f32 + 2.0) / rows,
                }
                .clamp(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, square: Option<(usize, usize, usize)>) -> Vec<u8> {
        let mut f = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) * 3;
                // A textured, static background.
                let v = ((x / 7 + y / 5) % 3 * 40 + 60) as u8;
                f[i..i + 3].copy_from_slice(&[v, v, v]);
                if let Some((sx, sy, s)) = square
                    && x >= sx
                    && x < sx + s
                    && y >= sy
                    && y < sy + s
                {
                    f[i..i + 3].copy_from_slice(&[250, 240, 230]);
                }
            }
        }
        f
    }

    #[test]
    fn a_static_scene_has_no_motion() {
        let mut m = Motion::new(640, 360, MotionParams::default());
        for _ in 0..10 {
            let r = m.update(&frame(640, 360, None), 640 * 3);
            assert_eq!(r.region, None);
        }
    }

    #[test]
    fn a_moving_square_is_found_where_it_is() {
        let mut m = Motion::new(640, 360, MotionParams::default());
        m.update(&frame(640, 360, None), 640 * 3);
        let r = m.update(&frame(640, 360, Some((400, 100, 80))), 640 * 3);
        let b = r.region.expect("motion");
        // The square spans x 400-480 (0.625-0.75), y 100-180 (0.28-0.5): inside the region,
        // and the region is not much larger.
        assert!(
            b.x0 <= 0.625 && b.x1 >= 0.75 && b.y0 <= 0.28 && b.y1 >= 0.5,
            "{b:?}"
        );
        assert!(b.x1 - b.x0 < 0.25 && b.y1 - b.y0 < 0.4, "{b:?}");
    }

    #[test]
    fn something_that_stays_fades_into_the_background() {
        let mut m = Motion::new(640, 360, MotionParams::default());
        m.update(&frame(640, 360, None), 640 * 3);
        let parked = frame(640, 360, Some((100, 100, 120)));
        let mut last = None;
        for _ in 0..200 {
            last = m.update(&parked, 640 * 3).region;
        }
        assert_eq!(last, None, "a parked object stops counting as motion");
    }
}
