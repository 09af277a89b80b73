//! Boxes in normalised frame coordinates (0..1 of width and height), IoU, and per-class
//! non-maximum suppression.

/// An axis-aligned box, `x0 <= x1`, `y0 <= y1`, in fractions of the frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    /// Left.
    pub x0: f32,
    /// Top.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Bottom.
    pub y1: f32,
}

impl BBox {
    /// Area.
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Intersection over union, 0 when either box is empty.
    pub fn iou(&self, o: &BBox) -> f32 {
        let ix = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let iy = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The centre.
    pub fn centre(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// The smallest box holding both.
    pub fn union(&self, o: &BBox) -> BBox {
        BBox {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    /// Grown by `by` (fractions of the frame) on every side, within the frame.
    pub fn grown(&self, by: f32) -> BBox {
        BBox {
            x0: self.x0 - by,
            y0: self.y0 - by,
            x1: self.x1 + by,
            y1: self.y1 + by,
        }
        .clamp()
    }

    /// The bottom centre: where an object stands, the point zones test.
    pub fn foot(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, self.y1)
    }

    /// Clamped to the frame.
    pub fn clamp(self) -> BBox {
        BBox {
            x0: self.x0.clamp(0.0, 1.0),
            y0: self.y0.clamp(0.0, 1.0),
            x1: self.x1.clamp(0.0, 1.0),
            y1: self.y1.clamp(0.0, 1.0),
        }
    }

    /// Mapped from a crop's coordinates to the frame's: the crop is `region` of the frame.
    pub fn from_region(self, region: &BBox) -> BBox {
        let w = region.x1 - region.x0;
        let h = region.y1 - region.y0;
        BBox {
            x0: region.x0 + self.x0 * w,
            y0: region.y0 + self.y0 * h,
            x1: region.x0 + self.x1 * w,
            y1: region.y0 + self.y1 * h,
        }
    }
}

/// One detection: a class of the model's label list, its score and box.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// Index into the model's labels.
    pub class: usize,
    /// Score, 0..1.
    pub score: f32,
    /// Where, in the frame.
    pub bbox: BBox,
}

/// Per-class non-maximum suppression: keeps the best box of each overlapping group (IoU
/// above `iou`) of the same class, best scores first.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len().min(64));
    for d in dets {
        if kept
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) <= iou)
        {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        BBox { x0, y0, x1, y1 }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(b(0.0, 0.0, 0.5, 0.5).iou(&b(0.0, 0.0, 0.5, 0.5)), 1.0);
        assert_eq!(b(0.0, 0.0, 0.2, 0.2).iou(&b(0.5, 0.5, 0.7, 0.7)), 0.0);
        // Half overlap: inter 0.5*1, union 1.5.
        let v = b(0.0, 0.0, 1.0, 1.0).iou(&b(0.5, 0.0, 1.5, 1.0));
        assert!((v - 1.0 / 3.0).abs() < 1e-6, "{v}");
        assert_eq!(b(0.3, 0.3, 0.3, 0.3).iou(&b(0.3, 0.3, 0.3, 0.3)), 0.0);
    }

    #[test]
    fn nms_keeps_the_best_of_each_group_and_each_class() {
        let d = |class, score, bbox| Detection { class, score, bbox };
        let out = nms(
            vec![
                d(0, 0.6, b(0.0, 0.0, 0.5, 0.5)),
                d(0, 0.9, b(0.01, 0.0, 0.51, 0.5)),
                d(2, 0.5, b(0.0, 0.0, 0.5, 0.5)), // other class, same place: kept
                d(0, 0.4, b(0.6, 0.6, 0.9, 0.9)), // elsewhere: kept
            ],
            0.5,
        );
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.5, 0.4]);
    }

    #[test]
    fn region_mapping() {
        let r = b(0.5, 0.0, 1.0, 0.5);
        assert_eq!(b(0.0, 0.0, 1.0, 1.0).from_region(&r), r);
        assert_eq!(
            b(0.5, 0.5, 1.0, 1.0).from_region(&r),
            b(0.75, 0.25, 1.0, 0.5)
        );
    }
}
