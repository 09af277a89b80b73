//! NanoDet's output decoding (GFL heads): per stride, class scores `[N, C]` (already 0..1)
//! and box regression `[N, 4 × (reg_max + 1)]`, a distribution over distances for each side.
//! The distance is the expectation of the softmax over the bins, times the stride, from the
//! cell's centre. Pure code: the OpenVINO runner hands the raw tensors in.

use super::boxes::{BBox, Detection, nms};

/// One output level.
pub struct Level<'a> {
    /// Stride in input pixels (8, 16, 32).
    pub stride: u32,
    /// Scores, row-major `[cells, classes]`.
    pub scores: &'a [f32],
    /// Regression, row-major `[cells, 4 × bins]`, sides in order left, top, right, bottom.
    pub boxes: &'a [f32],
}

/// Decoding parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    /// Model input width and height, pixels.
    pub input_w: u32,
    /// Input height.
    pub input_h: u32,
    /// Number of classes.
    pub classes: usize,
    /// Bins per side (`reg_max + 1`: 11 for NanoDet-m 416).
    pub bins: usize,
    /// Scores below this are dropped before NMS.
    pub min_score: f32,
    /// NMS IoU threshold.
    pub iou: f32,
}

/// Errors in the tensors' shapes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// A level's tensor sizes do not match its stride and the input size.
    #[error("output level of stride {stride}: {what} has {got} values, expected {expected}")]
    Shape {
        /// The level.
        stride: u32,
        /// Which tensor.
        what: &'static str,
        /// Size seen.
        got: usize,
        /// Size expected.
        expected: usize,
    },
}

/// Decodes every level into detections in normalised input coordinates, after NMS.
pub fn decode(levels: &[Level<'_>], p: &DecodeParams) -> Result<Vec<Detection>, DecodeError> {
    let mut dets = Vec::new();
    for l in levels {
        let cols = p.input_w.div_ceil(l.stride) as usize;
        let rows = p.input_h.div_ceil(l.stride) as usize;
        let cells = cols * rows;
        if l.scores.len() != cells * p.classes {
            return Err(DecodeError::Shape {
                stride: l.stride,
                what: "scores",
                got: l.scores.len(),
                expected: cells * p.classes,
            });
        }
        if l.boxes.len() != cells * 4 * p.bins {
            return Err(DecodeError::Shape {
                stride: l.stride,
                what: "boxes",
                got: l.boxes.len(),
                expected: cells * 4 * p.bins,
            });
        }
        for cell in 0..cells {
            let row = &l.scores[cell * p.classes..(cell + 1) * p.classes];
            let (class, &score) = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("classes > 0");
            if score < p.min_score {
                continue;
            }
            let s = l.stride as f32;
            let cx = ((cell % cols) as f32 + 0.5) * s;
            let cy = ((cell / cols) as f32 + 0.5) * s;
            let reg = &l.boxes[cell * 4 * p.bins..(cell + 1) * 4 * p.bins];
            let d: [f32; 4] = std::array::from_fn(|side| {
                expectation(&reg[side * p.bins..(side + 1) * p.bins]) * s
            });
            let (w, h) = (p.input_w as f32, p.input_h as f32);
            dets.push(Detection {
                class,
                score,
                bbox: BBox {
                    x0: (cx - d[0]) / w,
                    y0: (cy - d[1]) / h,
                    x1: (cx + d[2]) / w,
                    y1: (cy + d[3]) / h,
                }
                .clamp(),
            });
        }
    }
    Ok(nms(dets, p.iou))
}

/// The expectation of the softmax over `bins` logits: Σ i·softmax(x)ᵢ.
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (i, &x) in logits.iter().enumerate() {
        let e = (x - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_of_a_peaked_distribution_is_its_peak() {
        let mut l = vec![-100.0f32; 11];
        l[3] = 100.0;
        assert!((expectation(&l) - 3.0).abs() < 1e-4);
        let flat = vec![0.0f32; 11];
        assert!(
            (expectation(&flat) - 5.0).abs() < 1e-4,
            "uniform over 0..=10"
        );
    }

    /// One hot cell at stride 32 on a 64×64 input: the box is worked out by hand.
    #[test]
    fn decodes_one_cell_by_hand() {
        let p = DecodeParams {
            input_w: 64,
            input_h: 64,
            classes: 3,
            bins: 11,
            min_score: 0.35,
            iou: 0.5,
        };
        // Stride 32 → 2×2 cells. Cell 3 (col 1, row 1): centre (48, 48).
        let mut scores = vec![0.0f32; 4 * 3];
        scores[3 * 3 + 2] = 0.8;
        scores[3] = 0.2; // below the threshold
        let mut boxes = vec![-100.0f32; 4 * 4 * 11];
        // Distances in bins: left 1, top 0.5 (equal mass on bins 0 and 1), right 0, bottom 0.
        let base = 3 * 44;
        boxes[base + 1] = 100.0; // left: bin 1 → 32 px
        boxes[base + 11] = 100.0; // top: bin 0 and 1 equal → 0.5 → 16 px
        boxes[base + 11 + 1] = 100.0;
        boxes[base + 22] = 100.0; // right: bin 0 → 0
        boxes[base + 33] = 100.0; // bottom: bin 0 → 0
        let level = Level {
            stride: 32,
            scores: &scores,
            boxes: &boxes,
        };
        let d = decode(&[level], &p).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, 2);
        let b = d[0].bbox;
        assert!((b.x0 - 16.0 / 64.0).abs() < 1e-4, "{b:?}");
        assert!((b.y0 - 32.0 / 64.0).abs() < 1e-4, "{b:?}");
        assert!((b.x1 - 48.0 / 64.0).abs() < 1e-4, "{b:?}");
        assert!((b.y1 - 48.0 / 64.0).abs() < 1e-4, "{b:?}");
    }

    #[test]
    fn wrong_shapes_are_typed_errors() {
        let p = DecodeParams {
            input_w: 64,
            input_h: 64,
            classes: 3,
            bins: 11,
            min_score: 0.35,
            iou: 0.5,
        };
        let scores = vec![0.0f32; 5];
        let boxes = vec![0.0f32; 4 * 44];
        let e = decode(
            &[Level {
                stride: 32,
                scores: &scores,
                boxes: &boxes,
            }],
            &p,
        )
        .unwrap_err();
        assert_eq!(
            e,
            DecodeError::Shape {
                stride: 32,
                what: "scores",
                got: 5,
                expected: 12
            }
        );
    }
}
