//! COCO's 80 class names in the order of NanoDet's score columns, and their mapping to the
//! product's event categories.

use protocols::messages::Category;

/// COCO 2017 labels, model order.
pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The category of a class index (`Other(name)` beyond the six named ones).
pub fn category(class: usize) -> Category {
    match COCO.get(class).copied().unwrap_or("unknown") {
        "person" => Category::Person,
        "bicycle" => Category::Bicycle,
        "car" => Category::Car,
        "motorcycle" => Category::Motorcycle,
        "bus" => Category::Bus,
        "truck" => Category::Truck,
        other => Category::Other(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_six_categories_map() {
        use super::*;
        assert_eq!(category(0), Category::Person);
        assert_eq!(category(7), Category::Truck);
        assert_eq!(category(16), Category::Other("dog".into()));
    }
}
