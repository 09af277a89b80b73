//! MoveNet MultiPose's output decoding. The model (people only) does its own decoding and
//! de-duplication: its one output is `max_detections` rows (six) of `row_values` (56) values,
//! one row per person slot: `keypoints` (17) keypoints × (y, x, score), then from
//! `box_offset` (51) the box `ymin, xmin, ymax, xmax` and the person's score, all fractions
//! 0..1 of the input. Unused slots have a score near 0. Decoding keeps the rows that pass the
//! score threshold, turns the box round to [`BBox`]'s x-then-y order, clamps it, gives it
//! COCO-80's class `class_to_coco[0]` (person, [`super::labels::COCO`]) and runs NMS for the
//! rare duplicate. Keypoints are not used. Pure code: the OpenVINO runner hands the raw tensor
//! in.

use super::boxes::{BBox, Detection, nms};

/// Decoding parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    /// Person slots (rows).
    pub max_detections: usize,
    /// Values per row.
    pub row_values: usize,
    /// Where in a row the box (`ymin, xmin, ymax, xmax`) starts; the score follows it.
    pub box_offset: usize,
    /// The COCO-80 class a person is given.
    pub class: usize,
    /// Rows scoring below this are dropped.
    pub min_score: f32,
    /// NMS IoU threshold.
    pub iou: f32,
}

/// Errors in the tensor's shape.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The output's size does not match `max_detections` × `row_values`.
    #[error("MoveNet output has {got} values, expected {expected}")]
    Shape {
        /// Size seen.
        got: usize,
        /// Size expected.
        expected: usize,
    },
}

/// Decodes the rows into person detections in normalised input coordinates, after NMS. A row
/// whose clamped box is empty (or not a number) is skipped.
pub fn decode(rows: &[f32], p: &DecodeParams) -> Result<Vec<Detection>, DecodeError> {
    let expected = p.max_detections * p.row_values;
    if rows.len() != expected || p.box_offset + 5 > p.row_values {
        return Err(DecodeError::Shape {
            got: rows.len(),
            expected,
        });
    }
    let dets = rows
        .chunks_exact(p.row_values)
        .filter_map(|row| {
            let b = &row[p.box_offset..p.box_offset + 5];
            let score = b[4];
            // NaN is below every threshold as well.
            if score.partial_cmp(&p.min_score).is_none_or(|o| o.is_lt()) {
                return None;
            }
            let bbox = BBox {
                x0: b[1],
                y0: b[0],
                x1: b[3],
                y1: b[2],
            }
            .clamp();
            (bbox.area() > 0.0).then_some(Detection {
                class: p.class,
                score,
                bbox,
            })
        })
        .collect();
    Ok(nms(dets, p.iou))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three slots of 11 values: 2 "keypoints" × 3, then the box and score at 6.
    const P: DecodeParams = DecodeParams {
        max_detections: 3,
        row_values: 11,
        box_offset: 6,
        class: 0,
        min_score: 0.25,
        iou: 0.5,
    };

    fn rows() -> Vec<f32> {
        // Keypoints are noise the decoder must ignore; boxes and scores start empty.
        (0..P.max_detections * P.row_values)
            .map(|i| {
                if i % P.row_values < P.box_offset {
                    (i % 7) as f32 / 7.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Fills slot `s` with the box (ymin, xmin, ymax, xmax) and score.
    fn person(r: &mut [f32], s: usize, yx: [f32; 4], score: f32) {
        let at = s * P.row_values + P.box_offset;
        r[at..at + 4].copy_from_slice(&yx);
        r[at + 4] = score;
    }

    fn close(b: BBox, want: [f32; 4]) -> bool {
        [b.x0, b.y0, b.x1, b.y1]
            .iter()
            .zip(want)
            .all(|(a, w)| (a - w).abs() < 1e-6)
    }

    #[test]
    fn a_row_becomes_a_person_with_its_box_turned_to_x_then_y() {
        let mut r = rows();
        person(&mut r, 1, [0.1, 0.2, 0.9, 0.6], 0.5);
        let d = decode(&r, &P).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].class, d[0].score), (0, 0.5));
        assert!(close(d[0].bbox, [0.2, 0.1, 0.6, 0.9]), "{d:?}");
        let car = DecodeParams { class: 2, ..P };
        assert_eq!(
            decode(&r, &car).unwrap()[0].class,
            2,
            "the class is the mapping's"
        );
    }

    #[test]
    fn the_threshold_is_inclusive_and_empty_slots_give_nothing() {
        let mut r = rows();
        assert!(decode(&r, &P).unwrap().is_empty(), "all slots empty");
        person(&mut r, 0, [0.1, 0.1, 0.5, 0.5], 0.25);
        person(&mut r, 2, [0.5, 0.5, 0.9, 0.9], 0.2499);
        let d = decode(&r, &P).unwrap();
        let scores: Vec<f32> = d.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.25]);
        // A slot left at zero, box and all, is never a person, whatever the threshold.
        let everything = DecodeParams {
            min_score: 0.0,
            ..P
        };
        assert_eq!(decode(&r, &everything).unwrap().len(), 2);
        person(&mut r, 1, [0.2, 0.2, 0.4, 0.4], f32::NAN);
        assert_eq!(decode(&r, &everything).unwrap().len(), 2, "NaN is no score");
    }

    #[test]
    fn boxes_past_the_input_are_clamped_and_empty_ones_dropped() {
        let mut r = rows();
        person(&mut r, 0, [-0.1, -0.2, 1.3, 0.5], 0.9);
        // Inverted (ymin > ymax): empty.
        person(&mut r, 1, [0.8, 0.1, 0.2, 0.4], 0.8);
        // Wholly right of the input once clamped: empty.
        person(&mut r, 2, [0.2, 1.1, 0.4, 1.4], 0.7);
        let d = decode(&r, &P).unwrap();
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(close(d[0].bbox, [0.0, 0.0, 0.5, 1.0]), "{d:?}");
    }

    #[test]
    fn a_duplicate_person_is_suppressed_and_people_come_best_first() {
        let mut r = rows();
        person(&mut r, 0, [0.1, 0.1, 0.9, 0.5], 0.4);
        person(&mut r, 1, [0.1, 0.12, 0.9, 0.52], 0.6); // the same person, better: kept
        person(&mut r, 2, [0.2, 0.6, 0.8, 0.9], 0.3); // another: kept
        let d = decode(&r, &P).unwrap();
        let scores: Vec<f32> = d.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.6, 0.3], "{d:?}");
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        let r = rows();
        assert_eq!(
            decode(&r[1..], &P).unwrap_err(),
            DecodeError::Shape {
                got: 32,
                expected: 33
            }
        );
        let short_rows = DecodeParams { box_offset: 7, ..P };
        assert!(decode(&r, &short_rows).is_err(), "the box past the row");
    }
}
