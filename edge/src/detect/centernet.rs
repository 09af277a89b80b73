//! CenterNet's output decoding. The model's graph already picks the heat-map peaks (a 3×3
//! max-pool, the top 100) and reads their boxes, so its one output is a list of rows
//! `(x0, y0, x1, y1, score, class)`: corners in input pixels (they may reach past the input),
//! the peak's sigmoid score, and a 0-based class index that `model.json`'s `class_to_coco`
//! maps to COCO-80 ([`super::labels::COCO`]). Decoding keeps rows that pass the score
//! threshold, scales the corners to fractions of the input, clamps them, and runs per-class NMS
//! for the rare second peak on one object. Pure code: the OpenVINO runner hands the raw tensor in.

use super::boxes::{BBox, Detection, nms};

/// Values per output row: x0, y0, x1, y1, score, class.
pub const ROW: usize = 6;

/// Decoding parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    /// Model input width, pixels (the corners' scale).
    pub input_w: u32,
    /// Model input height, pixels.
    pub input_h: u32,
    /// Rows scoring below this are dropped.
    pub min_score: f32,
    /// NMS IoU threshold (per class).
    pub iou: f32,
}

/// Errors in the tensor's shape.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The output is not a whole number of rows.
    #[error("CenterNet detections have {got} values, not a multiple of {ROW}")]
    Shape {
        /// Size seen.
        got: usize,
    },
}

/// Decodes the `detections` rows into detections in normalised input coordinates, after NMS.
/// A row whose class `class_to_coco` does not map, or whose clamped box is empty, is skipped.
pub fn decode(
    rows: &[f32],
    class_to_coco: &[usize],
    p: &DecodeParams,
) -> Result<Vec<Detection>, DecodeError> {
    if !rows.len().is_multiple_of(ROW) {
        return Err(DecodeError::Shape { got: rows.len() });
    }
    let (w, h) = (p.input_w as f32, p.input_h as f32);
    let dets = rows
        .chunks_exact(ROW)
        .filter_map(|r| {
            let score = r[4];
            if score.is_nan() || score < p.min_score || !r[5].is_finite() || r[5] < -0.5 {
                return None;
            }
            let class = *class_to_coco.get(r[5].round() as usize)?;
            let bbox = BBox {
                x0: r[0] / w,
                y0: r[1] / h,
                x1: r[2] / w,
                y1: r[3] / h,
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

    const P: DecodeParams = DecodeParams {
        input_w: 512,
        input_h: 256,
        min_score: 0.3,
        iou: 0.5,
    };

    fn identity() -> Vec<usize> {
        (0..80).collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn rows_above_the_threshold_become_fractions_of_the_input() {
        let rows = [
            128.0, 64.0, 256.0, 192.0, 0.6, 0.0, // person, kept
            10.0, 10.0, 20.0, 20.0, 0.29, 2.0, // below the threshold
            0.0, 0.0, 512.0, 256.0, 0.3, 41.0, // exactly at it: kept (cup)
        ];
        let d = decode(&rows, &identity(), &P).unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!((d[0].class, d[0].score), (0, 0.6));
        let b = d[0].bbox;
        assert!(
            close(b.x0, 0.25) && close(b.y0, 0.25) && close(b.x1, 0.5) && close(b.y1, 0.75),
            "{b:?}"
        );
        assert_eq!(d[1].class, 41);
        assert_eq!(
            d[1].bbox,
            BBox {
                x0: 0.0,
                y0: 0.0,
                x1: 1.0,
                y1: 1.0
            }
        );
    }

    #[test]
    fn corners_past_the_input_are_clamped_and_empty_boxes_dropped() {
        let rows = [
            -8.0, -4.0, 600.0, 300.0, 0.9, 0.0, // past every side
            520.0, 10.0, 530.0, 20.0, 0.8,
            0.0, // wholly right of the input: empty once clamped
        ];
        let d = decode(&rows, &identity(), &P).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].bbox,
            BBox {
                x0: 0.0,
                y0: 0.0,
                x1: 1.0,
                y1: 1.0
            }
        );
    }

    #[test]
    fn classes_go_through_the_mapping() {
        // A model whose class 0 is COCO's "car" (2) and class 1 is "person" (0); class 2 and
        // NaN or negative classes are not mapped.
        let map = [2, 0];
        let rows = [
            0.0,
            0.0,
            100.0,
            100.0,
            0.7,
            1.0, //
            200.0,
            0.0,
            300.0,
            100.0,
            0.6,
            0.0, //
            0.0,
            100.0,
            100.0,
            200.0,
            0.9,
            2.0, //
            0.0,
            100.0,
            100.0,
            200.0,
            0.9,
            f32::NAN, //
            0.0,
            100.0,
            100.0,
            200.0,
            0.9,
            -1.0, //
            0.0,
            100.0,
            100.0,
            200.0,
            f32::NAN,
            0.0, //
        ];
        let d = decode(&rows, &map, &P).unwrap();
        let classes: Vec<usize> = d.iter().map(|d| d.class).collect();
        assert_eq!(classes, vec![0, 2], "{d:?}");
    }

    #[test]
    fn a_second_peak_on_one_object_is_suppressed_per_class() {
        let rows = [
            100.0, 50.0, 300.0, 250.0, 0.5, 0.0, //
            104.0, 52.0, 302.0, 250.0, 0.7, 0.0, // the same person, better: kept
            100.0, 50.0, 300.0, 250.0, 0.4, 16.0, // a dog in the same place: kept
            400.0, 0.0, 500.0, 100.0, 0.35, 0.0, // another person: kept
        ];
        let d = decode(&rows, &identity(), &P).unwrap();
        let got: Vec<(usize, f32)> = d.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.7), (16, 0.4), (0, 0.35)]);
    }

    #[test]
    fn a_partial_row_is_a_typed_error() {
        assert_eq!(
            decode(&[0.0; 7], &identity(), &P).unwrap_err(),
            DecodeError::Shape { got: 7 }
        );
        assert_eq!(decode(&[], &identity(), &P).unwrap(), vec![]);
    }
}
