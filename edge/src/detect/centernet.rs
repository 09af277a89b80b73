//! CenterNet's output decoding. The IR ends at two heads on a `grid_w`×`grid_h` grid of
//! cells, `stride` input pixels apart (128×128, 4 for the 512×512 model): `peaks`
//! `[grid_h, grid_w, classes]`, a class's sigmoid score where it is not below any of its 3×3
//! neighbours (the max-pool that picks peaks, CenterNet's stand-in for NMS, stays in the
//! graph), else 0; and `sizes` `[grid_h, grid_w, 4]`, the distances left, top, right, bottom
//! from the cell's corner `(stride·x, stride·y)` in input pixels. Decoding keeps the peaks that
//! pass the score threshold, the best `max_detections` of them (what the original graph's TopK
//! did, which OpenVINO's CPU plugin takes 0.95 s for over 1.3 M values), maps the class with
//! `model.json`'s `class_to_coco` to COCO-80 ([`super::labels::COCO`]), scales and clamps the
//! box, and runs per-class NMS for the rare second peak on one object. Pure code: the OpenVINO
//! runner hands the raw tensors in.

use super::boxes::{BBox, Detection, nms};

/// Decoding parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    /// Model input width, pixels.
    pub input_w: u32,
    /// Model input height, pixels.
    pub input_h: u32,
    /// Cells across.
    pub grid_w: usize,
    /// Cells down.
    pub grid_h: usize,
    /// Classes per cell.
    pub classes: usize,
    /// Input pixels per cell.
    pub stride: u32,
    /// At most this many peaks (the best) are decoded.
    pub max_detections: usize,
    /// Peaks scoring below this are dropped.
    pub min_score: f32,
    /// NMS IoU threshold (per class).
    pub iou: f32,
}

/// Errors in the tensors' shapes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// A head's size does not match the grid.
    #[error("CenterNet {what} has {got} values, expected {expected}")]
    Shape {
        /// Which head.
        what: &'static str,
        /// Size seen.
        got: usize,
        /// Size expected.
        expected: usize,
    },
}

/// Decodes the heads into detections in normalised input coordinates, after NMS. A peak whose
/// class `class_to_coco` does not map, or whose clamped box is empty, is skipped.
pub fn decode(
    peaks: &[f32],
    sizes: &[f32],
    class_to_coco: &[usize],
    p: &DecodeParams,
) -> Result<Vec<Detection>, DecodeError> {
    let cells = p.grid_w * p.grid_h;
    for (what, got, expected) in [
        ("peaks", peaks.len(), cells * p.classes),
        ("sizes", sizes.len(), cells * 4),
    ] {
        if got != expected {
            return Err(DecodeError::Shape {
                what,
                got,
                expected,
            });
        }
    }
    // Zero is "not a peak" whatever the threshold.
    let mut found: Vec<(f32, usize)> = peaks
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v > 0.0 && v >= p.min_score)
        .map(|(i, &v)| (v, i))
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(p.max_detections);
    let (w, h, s) = (p.input_w as f32, p.input_h as f32, p.stride as f32);
    let dets = found
        .into_iter()
        .filter_map(|(score, i)| {
            let (cell, c) = (i / p.classes, i % p.classes);
            let class = *class_to_coco.get(c)?;
            let cx = (cell % p.grid_w) as f32 * s;
            let cy = (cell / p.grid_w) as f32 * s;
            let d = &sizes[cell * 4..cell * 4 + 4];
            let bbox = BBox {
                x0: (cx - d[0]) / w,
                y0: (cy - d[1]) / h,
                x1: (cx + d[2]) / w,
                y1: (cy + d[3]) / h,
            }
            .clamp();
            (bbox.area() > 0.0).then_some(Detection { class, score, bbox })
        })
        .collect();
    Ok(nms(dets, p.iou))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×2 grid of 8-pixel cells (a 32×16 input), 3 classes.
    const P: DecodeParams = DecodeParams {
        input_w: 32,
        input_h: 16,
        grid_w: 4,
        grid_h: 2,
        classes: 3,
        stride: 8,
        max_detections: 100,
        min_score: 0.3,
        iou: 0.5,
    };

    fn heads() -> (Vec<f32>, Vec<f32>) {
        (vec![0.0; 4 * 2 * 3], vec![0.0; 4 * 2 * 4])
    }

    /// Puts a peak of `class` at cell (x, y) with distances `d`.
    fn peak(
        h: &mut (Vec<f32>, Vec<f32>),
        x: usize,
        y: usize,
        class: usize,
        score: f32,
        d: [f32; 4],
    ) {
        let cell = y * P.grid_w + x;
        h.0[cell * P.classes + class] = score;
        h.1[cell * 4..cell * 4 + 4].copy_from_slice(&d);
    }

    fn identity() -> Vec<usize> {
        (0..80).collect()
    }

    fn close(b: BBox, want: [f32; 4]) -> bool {
        [b.x0, b.y0, b.x1, b.y1]
            .iter()
            .zip(want)
            .all(|(a, w)| (a - w).abs() < 1e-6)
    }

    #[test]
    fn a_peak_becomes_a_box_around_its_cell_corner() {
        let mut h = heads();
        // Cell (2, 1): corner (16, 8); 4 px left, 8 up, 8 right, 4 down → (12, 0)-(24, 12).
        peak(&mut h, 2, 1, 1, 0.6, [4.0, 8.0, 8.0, 4.0]);
        peak(&mut h, 0, 0, 2, 0.29, [1.0, 1.0, 1.0, 1.0]); // below the threshold
        let d = decode(&h.0, &h.1, &identity(), &P).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].class, d[0].score), (1, 0.6));
        assert!(
            close(d[0].bbox, [12.0 / 32.0, 0.0, 24.0 / 32.0, 12.0 / 16.0]),
            "{d:?}"
        );
    }

    #[test]
    fn the_threshold_is_inclusive_but_zero_is_never_a_peak() {
        let mut h = heads();
        peak(&mut h, 1, 0, 0, 0.3, [2.0, 2.0, 2.0, 2.0]);
        let d = decode(&h.0, &h.1, &identity(), &P).unwrap();
        assert_eq!(d.len(), 1);
        let everything = DecodeParams {
            min_score: 0.0,
            ..P
        };
        assert_eq!(
            decode(&h.0, &h.1, &identity(), &everything).unwrap().len(),
            1
        );
    }

    #[test]
    fn boxes_past_the_input_are_clamped_and_empty_ones_dropped() {
        let mut h = heads();
        peak(&mut h, 0, 0, 0, 0.9, [8.0, 8.0, 100.0, 100.0]);
        // Wholly left of the input once clamped: empty.
        peak(&mut h, 0, 1, 1, 0.8, [20.0, 0.0, -10.0, 2.0]);
        let d = decode(&h.0, &h.1, &identity(), &P).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(close(d[0].bbox, [0.0, 0.0, 1.0, 1.0]), "{d:?}");
    }

    #[test]
    fn classes_go_through_the_mapping() {
        // A model whose class 0 is COCO's "car" (2) and class 1 is "person" (0); class 2 is
        // not mapped.
        let map = [2, 0];
        let mut h = heads();
        peak(&mut h, 0, 0, 1, 0.7, [1.0, 1.0, 4.0, 4.0]);
        peak(&mut h, 2, 0, 0, 0.6, [1.0, 1.0, 4.0, 4.0]);
        peak(&mut h, 3, 1, 2, 0.9, [1.0, 1.0, 4.0, 4.0]);
        let d = decode(&h.0, &h.1, &map, &P).unwrap();
        let classes: Vec<usize> = d.iter().map(|d| d.class).collect();
        assert_eq!(classes, vec![0, 2], "{d:?}");
    }

    #[test]
    fn only_the_best_peaks_are_kept_and_a_second_peak_on_one_object_is_suppressed() {
        let mut h = heads();
        // Both give (0, 0)-(16, 16): from corner (8, 0) and from corner (8, 8).
        let above = [8.0, 0.0, 8.0, 16.0];
        peak(&mut h, 1, 0, 0, 0.5, above);
        peak(&mut h, 1, 1, 0, 0.7, [8.0, 8.0, 8.0, 8.0]); // the same person, better: kept
        peak(&mut h, 1, 0, 2, 0.4, above); // another class in the same place: kept
        peak(&mut h, 3, 0, 0, 0.35, [1.0, 1.0, 1.0, 1.0]); // another person: kept
        let d = decode(&h.0, &h.1, &identity(), &P).unwrap();
        let got: Vec<(usize, f32)> = d.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.7), (2, 0.4), (0, 0.35)]);
        let two = DecodeParams {
            max_detections: 2,
            ..P
        };
        let d = decode(&h.0, &h.1, &identity(), &two).unwrap();
        let got: Vec<f32> = d.iter().map(|d| d.score).collect();
        assert_eq!(got, vec![0.7], "the best two are one person twice: {d:?}");
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        let h = heads();
        assert_eq!(
            decode(&h.0[1..], &h.1, &identity(), &P).unwrap_err(),
            DecodeError::Shape {
                what: "peaks",
                got: 23,
                expected: 24
            }
        );
        assert_eq!(
            decode(&h.0, &h.1[..4], &identity(), &P).unwrap_err(),
            DecodeError::Shape {
                what: "sizes",
                got: 4,
                expected: 32
            }
        );
    }
}
