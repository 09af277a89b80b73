//! The second look, pure: where the stronger model looks at an event's object, and what its
//! answer means. The camera ([`crate::video::camera`]) runs the model on the frame of the
//! event's best detection; the verdict travels with the event to the vm, whose rules wait for
//! it (`require_verification`). The vm never does this itself: it would have to see a
//! plaintext crop.

use protocols::messages::Category;
use protocols::messages::events::Verdict;

use super::boxes::{BBox, Detection};
use super::labels;

/// The smallest region the second look takes, as a fraction of the frame's width and height:
/// a small object is seen with its surroundings, at a resolution the model likes.
pub const MIN_REGION: f32 = 0.3;
/// A box of the stronger model counts for the object when it overlaps it this much (IoU), or
/// when its centre lies inside the object's box.
pub const MIN_IOU: f32 = 0.2;

/// Where the second look looks: the object's box grown by half its size on every side (at
/// least [`MIN_REGION`] of the frame each way), within the frame.
pub fn region_around(object: BBox) -> BBox {
    let whole = BBox {
        x0: 0.0,
        y0: 0.0,
        x1: 1.0,
        y1: 1.0,
    };
    if [object.x0, object.y0, object.x1, object.y1]
        .iter()
        .any(|v| !v.is_finite())
    {
        return whole;
    }
    let (cx, cy) = object.centre();
    let w = ((object.x1 - object.x0) * 2.0).clamp(MIN_REGION, 1.0);
    let h = ((object.y1 - object.y0) * 2.0).clamp(MIN_REGION, 1.0);
    // Shifted, not cut, at the frame's edges.
    let x0 = (cx - w / 2.0).clamp(0.0, 1.0 - w);
    let y0 = (cy - h / 2.0).clamp(0.0, 1.0 - h);
    BBox {
        x0,
        y0,
        x1: x0 + w,
        y1: y0 + h,
    }
}

/// Whether `found` is the same kind of object as the event's `category`: the same category,
/// or both vehicles (a car the first model saw may be a truck to the second).
pub fn same_kind(category: &Category, found: &Category) -> bool {
    category == found || (is_vehicle(category) && is_vehicle(found))
}

fn is_vehicle(c: &Category) -> bool {
    matches!(
        c,
        Category::Car | Category::Truck | Category::Bus | Category::Motorcycle | Category::Bicycle
    )
}

/// The verdict on the event's object (`category` at `object`, fractions of the frame) from
/// what the stronger model `found` (its boxes in the frame's fractions): confirmed when it
/// sees the same kind of object there at `min_score` at least, rejected otherwise; with the
/// best such score, thousandths.
pub fn verdict(
    category: &Category,
    object: BBox,
    found: &[Detection],
    min_score: f32,
) -> (Verdict, u16) {
    let best = found
        .iter()
        .filter(|d| same_kind(category, &labels::category(d.class)))
        .filter(|d| {
            let (cx, cy) = d.bbox.centre();
            d.bbox.iou(&object) >= MIN_IOU
                || (object.x0..=object.x1).contains(&cx) && (object.y0..=object.y1).contains(&cy)
        })
        .map(|d| d.score)
        .fold(0.0f32, f32::max);
    let milli = (best.clamp(0.0, 1.0) * 1000.0).round() as u16;
    if best >= min_score && best > 0.0 {
        (Verdict::Confirmed, milli)
    } else {
        (Verdict::Rejected, milli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        BBox { x0, y0, x1, y1 }
    }

    fn det(class: usize, score: f32, bbox: BBox) -> Detection {
        Detection { class, score, bbox }
    }

    #[test]
    fn the_region_is_twice_the_object_at_least_a_third_and_inside_the_frame() {
        let r = region_around(b(0.4, 0.2, 0.5, 0.6));
        assert!((r.x1 - r.x0 - 0.3).abs() < 1e-6, "{r:?}");
        assert!((r.y1 - r.y0 - 0.8).abs() < 1e-6 && (r.y0 - 0.0).abs() < 1e-6);
        // At the right edge: shifted left, the full size kept.
        let r = region_around(b(0.9, 0.4, 1.0, 0.5));
        assert!(
            (r.x1 - 1.0).abs() < 1e-6 && (r.x0 - 0.7).abs() < 1e-6,
            "{r:?}"
        );
        // A tall object near the top: the whole height.
        let r = region_around(b(0.1, 0.0, 0.3, 0.9));
        assert_eq!((r.y0, r.y1), (0.0, 1.0));
        // A box that is not one: the whole frame.
        assert_eq!(
            region_around(b(f32::NAN, 0.0, 0.3, 0.9)),
            b(0.0, 0.0, 1.0, 1.0)
        );
    }

    #[test]
    fn the_same_kind_at_the_object_confirms_and_nothing_there_rejects() {
        let person = b(0.4, 0.2, 0.5, 0.8);
        assert_eq!(
            verdict(
                &Category::Person,
                person,
                &[det(0, 0.62, b(0.41, 0.22, 0.52, 0.79))],
                0.3
            ),
            (Verdict::Confirmed, 620)
        );
        // Found too weakly: rejected, with the score it had.
        assert_eq!(
            verdict(
                &Category::Person,
                person,
                &[det(0, 0.12, b(0.41, 0.22, 0.52, 0.79))],
                0.3
            ),
            (Verdict::Rejected, 120)
        );
        // A person elsewhere in the region, or a dog at the object: not this object.
        assert_eq!(
            verdict(
                &Category::Person,
                person,
                &[
                    det(0, 0.9, b(0.7, 0.2, 0.8, 0.8)),
                    det(16, 0.9, b(0.4, 0.2, 0.5, 0.8))
                ],
                0.3
            ),
            (Verdict::Rejected, 0)
        );
        assert_eq!(
            verdict(&Category::Person, person, &[], 0.3).0,
            Verdict::Rejected
        );
    }

    #[test]
    fn a_vehicle_is_a_vehicle_whichever_it_is_called() {
        let car = b(0.2, 0.5, 0.6, 0.8);
        assert_eq!(
            verdict(&Category::Car, car, &[det(7, 0.5, car)], 0.3),
            (Verdict::Confirmed, 500),
            "a truck to the second model"
        );
        assert_eq!(
            verdict(&Category::Car, car, &[det(0, 0.9, car)], 0.3).0,
            Verdict::Rejected,
            "a person is not a car"
        );
    }

    #[test]
    fn a_small_box_inside_the_object_counts() {
        // A face-sized box of the second model inside a person's box: its centre is inside.
        let person = b(0.3, 0.1, 0.6, 0.9);
        assert_eq!(
            verdict(
                &Category::Person,
                person,
                &[det(0, 0.4, b(0.42, 0.15, 0.48, 0.25))],
                0.3
            )
            .0,
            Verdict::Confirmed
        );
    }
}
