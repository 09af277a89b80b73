//! The detector: a model in OpenVINO (NanoDet, the light default; CenterNet, the stronger
//! one; or MoveNet MultiPose, people only; `model.json`'s `kind` says which decoder its outputs
//! need), run by a small pool of inference threads that every camera shares through one
//! bounded queue.
//!
//! The model's IR already holds its normalisation (u8 RGB NHWC in, 416×416 for NanoDet,
//! 512×512 for CenterNet, 256×256 for MoveNet). For each input
//! size a camera sends (its detection frame, or a square crop of it around motion) a worker
//! adds a resize step with OpenVINO's pre-processing and compiles that variant once, so no
//! per-pixel work happens in Rust. Each worker owns one inference request; `infer_requests`
//! workers run at once, each with its share of the cores.
//!
//! The OpenVINO library is loaded at run time (`openvino` with `runtime-linking`): a missing
//! library or model is a typed error at start, and the cameras run on without detection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openvino::{
    Core, DeviceType, ElementType, Layout, ResizeAlgorithm, RwPropertyKey, Shape, Tensor,
    prepostprocess,
};
use serde::Deserialize;

use super::boxes::{BBox, Detection};
use super::{centernet, movenet, nanodet};

/// Errors of the detector.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// The OpenVINO library could not be loaded.
    #[error(
        "cannot load the OpenVINO library ({0}); run `make setup` or set detector.openvino_lib"
    )]
    Library(String),
    /// The model files are missing or unreadable.
    #[error("model {path}: {reason}")]
    Model {
        /// The `.xml`.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// OpenVINO failed.
    #[error("OpenVINO: {0}")]
    OpenVino(String),
    /// The queue is full: the detector is behind.
    #[error("detector busy")]
    Busy,
    /// No answer in time.
    #[error("detector timed out")]
    Timeout,
    /// The detector stopped.
    #[error("detector stopped")]
    Stopped,
    /// The outputs did not have the expected shapes.
    #[error(transparent)]
    Decode(#[from] nanodet::DecodeError),
    /// CenterNet's output did not have the expected shape.
    #[error(transparent)]
    CenterNetDecode(#[from] centernet::DecodeError),
    /// MoveNet's output did not have the expected shape.
    #[error(transparent)]
    MoveNetDecode(#[from] movenet::DecodeError),
}

fn ov(e: impl std::fmt::Display) -> DetectorError {
    DetectorError::OpenVino(e.to_string())
}

/// Which decoder a model's outputs need: `model.json`'s `"kind"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// NanoDet's GFL heads per stride ([`nanodet`]); the default when `kind` is absent.
    #[default]
    Nanodet,
    /// CenterNet's heat-map peaks and sizes ([`centernet`]).
    Centernet,
    /// MoveNet MultiPose's person rows ([`movenet`]).
    Movenet,
}

/// `model.json` beside the IR (written by `scripts/models/convert_nanodet.py`,
/// `convert_centernet.py` or `convert_movenet.py`): what the outputs are. Unknown fields are
/// ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelInfo {
    /// The decoder.
    #[serde(default)]
    pub kind: ModelKind,
    /// Input width.
    #[serde(rename = "width")]
    pub input_width: u32,
    /// Input height.
    #[serde(rename = "height")]
    pub input_height: u32,
    /// Classes.
    pub classes: usize,
    /// NanoDet: bins per box side.
    #[serde(default)]
    pub bins: usize,
    /// NanoDet: output levels.
    #[serde(default)]
    pub levels: Vec<LevelInfo>,
    /// CenterNet: the `[1, grid_h, grid_w, classes]` peaks output.
    #[serde(default)]
    pub peaks: Option<OutputRef>,
    /// CenterNet: the `[1, grid_h, grid_w, 4]` box sizes output.
    #[serde(default)]
    pub sizes: Option<OutputRef>,
    /// CenterNet: input pixels per cell.
    #[serde(default)]
    pub stride: u32,
    /// CenterNet: at most this many peaks are decoded; MoveNet: the person slots (rows).
    #[serde(default)]
    pub max_detections: usize,
    /// CenterNet and MoveNet: the model's class `i` is COCO-80 class `class_to_coco[i]`
    /// ([`super::labels::COCO`]); MoveNet's one class is person.
    #[serde(default)]
    pub class_to_coco: Vec<usize>,
    /// MoveNet: the `[1, max_detections, row_values]` output.
    #[serde(default)]
    pub output: Option<OutputRef>,
    /// MoveNet: values per person row (17 keypoints × 3, then the box and score: 56).
    #[serde(default)]
    pub row_values: usize,
    /// MoveNet: where in a row the box (`ymin, xmin, ymax, xmax`) starts; the score follows.
    #[serde(default)]
    pub box_offset: usize,
}

impl ModelInfo {
    /// Parses `model.json` and checks that it has what its kind's decoder needs.
    pub fn parse(json: &[u8]) -> Result<ModelInfo, String> {
        let info: ModelInfo = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if info.input_width == 0 || info.input_height == 0 {
            return Err("width and height must be positive".into());
        }
        match info.kind {
            ModelKind::Nanodet => {
                if info.bins == 0 || info.levels.is_empty() || info.classes == 0 {
                    return Err("a nanodet model needs classes, bins and levels".into());
                }
            }
            ModelKind::Centernet => {
                if info.peaks.is_none() || info.sizes.is_none() {
                    return Err("a centernet model needs its peaks and sizes outputs".into());
                }
                if info.stride == 0
                    || info.classes == 0
                    || info.max_detections == 0
                    || !info.input_width.is_multiple_of(info.stride)
                    || !info.input_height.is_multiple_of(info.stride)
                {
                    return Err(
                        "a centernet model needs classes, max_detections and a stride dividing its size"
                            .into(),
                    );
                }
                if info.class_to_coco.is_empty() {
                    return Err("a centernet model needs class_to_coco".into());
                }
            }
            ModelKind::Movenet => {
                if info.output.is_none() {
                    return Err("a movenet model needs its output".into());
                }
                if info.max_detections == 0
                    || info.row_values == 0
                    || info.box_offset + 5 > info.row_values
                {
                    return Err(
                        "a movenet model needs max_detections, and row_values holding the box and score after box_offset"
                            .into(),
                    );
                }
                if info.class_to_coco.len() != 1 {
                    return Err("a movenet model needs class_to_coco with its one class".into());
                }
            }
        }
        if let Some(c) = info
            .class_to_coco
            .iter()
            .find(|&&c| c >= super::labels::COCO.len())
        {
            return Err(format!("class_to_coco maps to {c}, past COCO's 80 classes"));
        }
        Ok(info)
    }
}

/// One output level.
#[derive(Debug, Clone, Deserialize)]
pub struct LevelInfo {
    /// Stride.
    pub stride: u32,
    /// The scores output.
    pub scores: OutputRef,
    /// The box output.
    pub boxes: OutputRef,
}

/// An output tensor.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputRef {
    /// Its name.
    pub name: String,
}

/// Where the model and library are, and how to run them.
#[derive(Debug, Clone)]
pub struct DetectorSettings {
    /// The IR's `.xml`.
    pub model: PathBuf,
    /// The OpenVINO C library or its folder; `None` for the system's search.
    pub library: Option<PathBuf>,
    /// OpenVINO device.
    pub device: String,
    /// Parallel inference requests.
    pub infer_requests: usize,
    /// Score threshold before NMS.
    pub min_score: f32,
    /// NMS IoU.
    pub nms_iou: f32,
}

struct Job {
    rgb: Vec<u8>,
    width: u32,
    height: u32,
    reply: SyncSender<Result<Vec<Detection>, DetectorError>>,
}

/// Counters for telemetry and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct DetectorStats {
    /// Inferences run.
    pub inferences: u64,
    /// Total time in inference (OpenVINO call only), ns.
    pub infer_ns: u64,
}

/// The shared detector.
pub struct Detector {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    /// The model's description.
    pub info: ModelInfo,
    stats: Arc<Mutex<DetectorStats>>,
}

static LOADED: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads the OpenVINO C library once per process (the first caller's path wins).
fn load_library(lib: Option<&Path>) -> Result<(), DetectorError> {
    LOADED
        .get_or_init(|| match lib {
            Some(p) => openvino_sys::library::load_from(p),
            None => openvino_sys::library::load(),
        })
        .clone()
        .map_err(DetectorError::Library)
}

impl Detector {
    /// Loads the library and model and starts the workers; fails fast (model missing or
    /// broken, library missing) by compiling the model's native size once before returning.
    pub fn start(s: &DetectorSettings) -> Result<Detector, DetectorError> {
        load_library(s.library.as_deref())?;
        let info_path = s.model.with_file_name("model.json");
        let info = std::fs::read(&info_path)
            .map_err(|e| e.to_string())
            .and_then(|b| ModelInfo::parse(&b))
            .map_err(|reason| DetectorError::Model {
                path: info_path.clone(),
                reason,
            })?;
        let workers_n = s.infer_requests.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / workers_n).max(1);
        let (tx, rx) = sync_channel::<Job>(workers_n * 4);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Mutex::new(DetectorStats::default()));
        let mut workers = Vec::new();
        for i in 0..workers_n {
            let mut w = Worker::new(s, &info, threads)?;
            if i == 0 {
                // Fails here, not later, on a broken model.
                w.variant(info.input_width, info.input_height)?;
            }
            let (rx, stats) = (rx.clone(), stats.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("detector-{i}"))
                    .spawn(move || w.serve(&rx, &stats))
                    .map_err(ov)?,
            );
        }
        Ok(Detector {
            jobs: Some(tx),
            workers,
            info,
            stats,
        })
    }

    /// Detects objects in a packed RGB image (`width`×`height`×3 bytes). Boxes are fractions
    /// of this image. Waits at most `timeout`; `Busy` when the queue is full.
    pub fn detect(
        &self,
        rgb: Vec<u8>,
        width: u32,
        height: u32,
        timeout: Duration,
    ) -> Result<Vec<Detection>, DetectorError> {
        let (reply, answer) = sync_channel(1);
        let tx = self.jobs.as_ref().ok_or(DetectorError::Stopped)?;
        match tx.try_send(Job {
            rgb,
            width,
            height,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(DetectorError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(DetectorError::Stopped),
        }
        answer.recv_timeout(timeout).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => DetectorError::Timeout,
            std::sync::mpsc::RecvTimeoutError::Disconnected => DetectorError::Stopped,
        })?
    }

    /// Detects in a region of a frame: the square crop around `region` when it fits (the
    /// model then sees the moving part at a higher resolution and undistorted), else the
    /// whole frame padded to a square (letterboxed: a frame squeezed to the model's square
    /// input makes people thin and scores low). Boxes are fractions of the frame.
    pub fn detect_region(
        &self,
        frame: &[u8],
        width: u32,
        height: u32,
        region: Option<BBox>,
        timeout: Duration,
    ) -> Result<Vec<Detection>, DetectorError> {
        let look = look_for(region, width, height);
        let (rgb, side) = look.pixels(frame, width, height);
        Ok(self
            .detect(rgb, side, side, timeout)?
            .into_iter()
            .filter_map(|d| {
                let bbox = d.bbox.from_region(&look.frac(width, height));
                // Nothing is found in the padding, but clip what reaches into it.
                let bbox = BBox {
                    x0: bbox.x0.clamp(0.0, 1.0),
                    y0: bbox.y0.clamp(0.0, 1.0),
                    x1: bbox.x1.clamp(0.0, 1.0),
                    y1: bbox.y1.clamp(0.0, 1.0),
                };
                (bbox.area() > 0.0).then_some(Detection { bbox, ..d })
            })
            .collect())
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectorStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the detector is given of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Look {
    /// A `side`×`side` crop at (`x`, `y`).
    Crop {
        /// Left, pixels.
        x: u32,
        /// Top, pixels.
        y: u32,
        /// Side, pixels (the frame's shorter side).
        side: u32,
    },
    /// The whole frame, padded at the right or bottom to a `side`×`side` square.
    Whole {
        /// The frame's longer side.
        side: u32,
    },
}

/// Where to look for `region` (fractions of a `width`×`height` frame; `None` for the whole
/// frame): the square crop that holds it, else the whole frame. Crops start on multiples of
/// 8 pixels, so nearby regions give the same input.
pub fn look_for(region: Option<BBox>, width: u32, height: u32) -> Look {
    let side = width.min(height);
    match region.and_then(|r| square_crop(&r, width, height, side)) {
        Some((x, y)) => Look::Crop { x, y, side },
        None => Look::Whole {
            side: width.max(height),
        },
    }
}

impl Look {
    /// The packed RGB square the detector gets, and its side.
    pub fn pixels(&self, frame: &[u8], width: u32, height: u32) -> (Vec<u8>, u32) {
        let stride = width as usize * 3;
        match *self {
            Look::Whole { side } if (width, height) == (side, side) => (frame.to_vec(), side),
            Look::Whole { side } => {
                let mut rgb = vec![0u8; side as usize * side as usize * 3];
                let row = side as usize * 3;
                for y in 0..height as usize {
                    rgb[y * row..y * row + stride]
                        .copy_from_slice(&frame[y * stride..(y + 1) * stride]);
                }
                (rgb, side)
            }
            Look::Crop { x, y, side } => {
                let mut rgb = Vec::with_capacity(side as usize * side as usize * 3);
                for row in y..y + side {
                    let start = row as usize * stride + x as usize * 3;
                    rgb.extend_from_slice(&frame[start..start + side as usize * 3]);
                }
                (rgb, side)
            }
        }
    }

    /// The square's place in the frame, in fractions of the frame (beyond 1 for padding).
    pub fn frac(&self, width: u32, height: u32) -> BBox {
        let (w, h) = (width as f32, height as f32);
        match *self {
            Look::Crop { x, y, side } => BBox {
                x0: x as f32 / w,
                y0: y as f32 / h,
                x1: (x + side) as f32 / w,
                y1: (y + side) as f32 / h,
            },
            Look::Whole { side } => BBox {
                x0: 0.0,
                y0: 0.0,
                x1: side as f32 / w,
                y1: side as f32 / h,
            },
        }
    }
}

/// The top-left corner of a `side`×`side` crop of a `width`×`height` frame that holds
/// `region`, on multiples of 8 pixels, or `None` when the region does not fit in one (or the
/// frame is square).
pub fn square_crop(region: &BBox, width: u32, height: u32, side: u32) -> Option<(u32, u32)> {
    if width == height {
        return None;
    }
    let (x0, x1) = (region.x0 * width as f32, region.x1 * width as f32);
    let (y0, y1) = (region.y0 * height as f32, region.y1 * height as f32);
    if x1 - x0 > side as f32 || y1 - y0 > side as f32 {
        return None;
    }
    let place = |lo: f32, hi: f32, extent: u32| -> u32 {
        let max = extent - side;
        let centred = ((lo + hi) / 2.0 - side as f32 / 2.0).clamp(0.0, max as f32);
        // Rounded to 8 px, still holding the region.
        let mut p = ((centred / 8.0).round() as u32 * 8).min(max);
        if (p as f32) > lo {
            p = (lo.max(0.0) as u32 / 8 * 8).min(max);
        }
        if ((p + side) as f32) < hi {
            p = (hi.ceil() as u32).saturating_sub(side).min(max);
        }
        p
    };
    Some((place(x0, x1, width), place(y0, y1, height)))
}

struct Variant {
    request: openvino::InferRequest,
    _compiled: openvino::CompiledModel,
}

/// How a worker turns a finished request's outputs into detections.
enum Decoder {
    NanoDet {
        params: nanodet::DecodeParams,
        levels: Vec<LevelInfo>,
    },
    CenterNet {
        params: centernet::DecodeParams,
        peaks: String,
        sizes: String,
        class_to_coco: Vec<usize>,
    },
    MoveNet {
        params: movenet::DecodeParams,
        output: String,
    },
}

impl Decoder {
    fn new(s: &DetectorSettings, info: &ModelInfo) -> Decoder {
        match info.kind {
            ModelKind::Nanodet => Decoder::NanoDet {
                params: nanodet::DecodeParams {
                    input_w: info.input_width,
                    input_h: info.input_height,
                    classes: info.classes,
                    bins: info.bins,
                    min_score: s.min_score,
                    iou: s.nms_iou,
                },
                levels: info.levels.clone(),
            },
            ModelKind::Centernet => Decoder::CenterNet {
                params: centernet::DecodeParams {
                    input_w: info.input_width,
                    input_h: info.input_height,
                    grid_w: (info.input_width / info.stride.max(1)) as usize,
                    grid_h: (info.input_height / info.stride.max(1)) as usize,
                    classes: info.classes,
                    stride: info.stride,
                    max_detections: info.max_detections,
                    min_score: s.min_score,
                    iou: s.nms_iou,
                },
                // ModelInfo::parse made sure they are there.
                peaks: info
                    .peaks
                    .as_ref()
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                sizes: info
                    .sizes
                    .as_ref()
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                class_to_coco: info.class_to_coco.clone(),
            },
            ModelKind::Movenet => Decoder::MoveNet {
                params: movenet::DecodeParams {
                    max_detections: info.max_detections,
                    row_values: info.row_values,
                    box_offset: info.box_offset,
                    // ModelInfo::parse made sure there is exactly one.
                    class: info.class_to_coco.first().copied().unwrap_or(0),
                    min_score: s.min_score,
                    iou: s.nms_iou,
                },
                output: info
                    .output
                    .as_ref()
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
            },
        }
    }

    fn decode(&self, request: &openvino::InferRequest) -> Result<Vec<Detection>, DetectorError> {
        match self {
            Decoder::NanoDet { params, levels } => {
                let mut outs = Vec::with_capacity(levels.len());
                for l in levels {
                    outs.push((
                        l.stride,
                        request.get_tensor(&l.scores.name).map_err(ov)?,
                        request.get_tensor(&l.boxes.name).map_err(ov)?,
                    ));
                }
                let mut raw = Vec::with_capacity(outs.len());
                for (stride, scores, boxes) in &outs {
                    raw.push(nanodet::Level {
                        stride: *stride,
                        scores: scores.get_data::<f32>().map_err(ov)?,
                        boxes: boxes.get_data::<f32>().map_err(ov)?,
                    });
                }
                Ok(nanodet::decode(&raw, params)?)
            }
            Decoder::CenterNet {
                params,
                peaks,
                sizes,
                class_to_coco,
            } => {
                let peaks = request.get_tensor(peaks).map_err(ov)?;
                let sizes = request.get_tensor(sizes).map_err(ov)?;
                Ok(centernet::decode(
                    peaks.get_data::<f32>().map_err(ov)?,
                    sizes.get_data::<f32>().map_err(ov)?,
                    class_to_coco,
                    params,
                )?)
            }
            Decoder::MoveNet { params, output } => {
                let rows = request.get_tensor(output).map_err(ov)?;
                Ok(movenet::decode(
                    rows.get_data::<f32>().map_err(ov)?,
                    params,
                )?)
            }
        }
    }
}

struct Worker {
    core: Core,
    /// The model's IR (`.xml`, `.bin`): each variant reads its own copy, since OpenVINO's
    /// pre-processing changes the model it is built on.
    files: (String, String),
    device: DeviceType<'static>,
    info: ModelInfo,
    decoder: Decoder,
    variants: HashMap<(u32, u32), Variant>,
}

impl Worker {
    fn new(s: &DetectorSettings, info: &ModelInfo, threads: usize) -> Result<Self, DetectorError> {
        let mut core = Core::new().map_err(|e| DetectorError::Library(e.to_string()))?;
        let xml = &s.model;
        let bin = xml.with_extension("bin");
        for f in [xml, &bin] {
            if !f.is_file() {
                return Err(DetectorError::Model {
                    path: xml.clone(),
                    reason: format!("{} does not exist (run `make setup`)", f.display()),
                });
            }
        }
        let files = (
            xml.to_string_lossy().into_owned(),
            bin.to_string_lossy().into_owned(),
        );
        // Read once here, so a broken model is an error at start.
        core.read_model_from_file(&files.0, &files.1)
            .map_err(|e| DetectorError::Model {
                path: xml.clone(),
                reason: e.to_string(),
            })?;
        let device: DeviceType<'static> = s.device.parse::<DeviceType>().map_err(ov)?.to_owned();
        if device == DeviceType::CPU {
            let t = threads.to_string();
            core.set_properties(
                &device,
                [
                    (RwPropertyKey::HintPerformanceMode, "LATENCY"),
                    (RwPropertyKey::NumStreams, "1"),
                    (RwPropertyKey::InferenceNumThreads, t.as_str()),
                ],
            )
            .map_err(ov)?;
        }
        Ok(Worker {
            core,
            files,
            device,
            info: info.clone(),
            decoder: Decoder::new(s, info),
            variants: HashMap::new(),
        })
    }

    /// The compiled model for `width`×`height` input.
    fn variant(&mut self, width: u32, height: u32) -> Result<&mut Variant, DetectorError> {
        if !self.variants.contains_key(&(width, height)) {
            // A fresh copy: a resize step built on a model changes it, and a second variant
            // built on the same one would resize twice (through the first variant's size).
            let model = self
                .core
                .read_model_from_file(&self.files.0, &self.files.1)
                .map_err(ov)?;
            let ppp = prepostprocess::Pipeline::new(&model).map_err(ov)?;
            let input = ppp.get_input_info_by_index(0).map_err(ov)?;
            let mut tensor_info = input.get_tensor_info().map_err(ov)?;
            let shape = Shape::new(&[1, height as i64, width as i64, 3]).map_err(ov)?;
            tensor_info
                .set_from(&Tensor::new(ElementType::U8, &shape).map_err(ov)?)
                .map_err(ov)?;
            tensor_info
                .set_layout(Layout::new("NHWC").map_err(ov)?)
                .map_err(ov)?;
            if (width, height) != (self.info.input_width, self.info.input_height) {
                input
                    .get_steps()
                    .map_err(ov)?
                    .resize(ResizeAlgorithm::Linear)
                    .map_err(ov)?;
            }
            input
                .get_model_info()
                .map_err(ov)?
                .set_layout(Layout::new("NHWC").map_err(ov)?)
                .map_err(ov)?;
            let model = ppp.build_new_model().map_err(ov)?;
            let mut compiled = self
                .core
                .compile_model(&model, self.device.to_owned())
                .map_err(ov)?;
            let request = compiled.create_infer_request().map_err(ov)?;
            self.variants.insert(
                (width, height),
                Variant {
                    request,
                    _compiled: compiled,
                },
            );
        }
        Ok(self.variants.get_mut(&(width, height)).expect("inserted"))
    }

    fn run(&mut self, job: &Job) -> Result<(Vec<Detection>, u64), DetectorError> {
        let expected = job.width as usize * job.height as usize * 3;
        if job.rgb.len() != expected {
            return Err(ov(format!(
                "frame has {} bytes, expected {expected}",
                job.rgb.len()
            )));
        }
        let shape = Shape::new(&[1, job.height as i64, job.width as i64, 3]).map_err(ov)?;
        let mut tensor = Tensor::new(ElementType::U8, &shape).map_err(ov)?;
        tensor
            .get_raw_data_mut()
            .map_err(ov)?
            .copy_from_slice(&job.rgb);
        self.variant(job.width, job.height)?;
        let v = self
            .variants
            .get_mut(&(job.width, job.height))
            .expect("compiled above");
        v.request.set_input_tensor(&tensor).map_err(ov)?;
        let t0 = Instant::now();
        v.request.infer().map_err(ov)?;
        let took = t0.elapsed().as_nanos() as u64;
        Ok((self.decoder.decode(&v.request)?, took))
    }

    fn serve(&mut self, rx: &Mutex<Receiver<Job>>, stats: &Mutex<DetectorStats>) {
        loop {
            let job = match rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            let answer = self.run(&job).map(|(dets, took)| {
                if let Ok(mut s) = stats.lock() {
                    s.inferences += 1;
                    s.infer_ns += took;
                }
                dets
            });
            let _ = job.reply.try_send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_crops_hold_the_region() {
        let r = BBox {
            x0: 0.8,
            y0: 0.2,
            x1: 0.9,
            y1: 0.6,
        };
        // 640×360: side 360; region x 512-576 → centred at 544, clamped to 640-360 = 280.
        assert_eq!(square_crop(&r, 640, 360, 360), Some((280, 0)));
        // Centred at 320 → 140, rounded to 8 px: 144; the region (288-352) still inside.
        let mid = BBox {
            x0: 0.45,
            y0: 0.2,
            x1: 0.55,
            y1: 0.6,
        };
        assert_eq!(square_crop(&mid, 640, 360, 360), Some((144, 0)));
        for i in 0..=60 {
            let x0 = i as f32 / 100.0;
            let r = BBox {
                x0,
                y0: 0.1,
                x1: x0 + 0.4,
                y1: 0.9,
            };
            let (x, _) = square_crop(&r, 640, 360, 360).unwrap();
            assert_eq!(x % 8, 0);
            assert!(
                x as f32 <= r.x0 * 640.0 + 0.01 && (x + 360) as f32 >= r.x1 * 640.0 - 0.01,
                "{r:?} at {x}"
            );
        }
        let wide = BBox {
            x0: 0.1,
            y0: 0.0,
            x1: 0.9,
            y1: 0.5,
        };
        assert_eq!(square_crop(&wide, 640, 360, 360), None);
        assert_eq!(square_crop(&r, 416, 416, 416), None);
    }

    #[test]
    fn model_json_without_a_kind_is_nanodet() {
        let json = br#"{"width": 416, "height": 416, "classes": 80, "bins": 11, "extra": 1,
            "levels": [{"stride": 8, "scores": {"name": "s8"}, "boxes": {"name": "b8"}}]}"#;
        let info = ModelInfo::parse(json).unwrap();
        assert_eq!(info.kind, ModelKind::Nanodet);
        assert_eq!(
            (info.input_width, info.bins, info.levels.len()),
            (416, 11, 1)
        );
        let tagged = String::from_utf8_lossy(json).replacen('{', r#"{"kind": "nanodet", "#, 1);
        assert_eq!(
            ModelInfo::parse(tagged.as_bytes()).unwrap().kind,
            ModelKind::Nanodet
        );
    }

    #[test]
    fn a_centernet_model_json_parses_with_its_output_and_mapping() {
        let json = br#"{"kind": "centernet", "width": 512, "height": 512, "classes": 80,
            "stride": 4, "max_detections": 100,
            "peaks": {"name": "tower_0/mul_1:0", "shape": [1, 128, 128, 80]},
            "sizes": {"name": "tower_0/wh:0"}, "class_to_coco": [0, 1, 2]}"#;
        let info = ModelInfo::parse(json).unwrap();
        assert_eq!(info.kind, ModelKind::Centernet);
        assert_eq!(info.peaks.unwrap().name, "tower_0/mul_1:0");
        assert_eq!(info.sizes.unwrap().name, "tower_0/wh:0");
        assert_eq!((info.stride, info.max_detections), (4, 100));
        assert_eq!(info.class_to_coco, vec![0, 1, 2]);
    }

    #[test]
    fn a_movenet_model_json_parses_with_its_output_and_person_class() {
        let json = br#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
            "max_detections": 6, "row_values": 56, "box_offset": 51, "keypoints": 17,
            "output": {"name": "Identity:0", "shape": [1, 6, 56]}, "class_to_coco": [0]}"#;
        let info = ModelInfo::parse(json).unwrap();
        assert_eq!(info.kind, ModelKind::Movenet);
        assert_eq!(info.output.unwrap().name, "Identity:0");
        assert_eq!(
            (info.max_detections, info.row_values, info.box_offset),
            (6, 56, 51)
        );
        assert_eq!(info.class_to_coco, vec![0]);
    }

    #[test]
    fn a_model_json_missing_what_its_decoder_needs_is_refused() {
        for (json, why) in [
            (r#"{"width": 416, "height": 416, "classes": 80}"#, "levels"),
            (
                r#"{"kind": "centernet", "width": 512, "height": 512, "classes": 80, "stride": 4,
                    "max_detections": 100, "sizes": {"name": "s"}, "class_to_coco": [0]}"#,
                "peaks",
            ),
            (
                r#"{"kind": "centernet", "width": 512, "height": 512, "classes": 80, "stride": 4,
                    "max_detections": 100, "peaks": {"name": "p"}, "sizes": {"name": "s"}}"#,
                "class_to_coco",
            ),
            (
                r#"{"kind": "centernet", "width": 512, "height": 512, "classes": 80, "stride": 5,
                    "max_detections": 100, "peaks": {"name": "p"}, "sizes": {"name": "s"},
                    "class_to_coco": [0]}"#,
                "stride",
            ),
            (
                r#"{"kind": "centernet", "width": 512, "height": 512, "classes": 80, "stride": 4,
                    "max_detections": 100, "peaks": {"name": "p"}, "sizes": {"name": "s"},
                    "class_to_coco": [0, 80]}"#,
                "past COCO",
            ),
            (
                r#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
                    "max_detections": 6, "row_values": 56, "box_offset": 51, "class_to_coco": [0]}"#,
                "output",
            ),
            (
                r#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
                    "row_values": 56, "box_offset": 51, "output": {"name": "o"},
                    "class_to_coco": [0]}"#,
                "max_detections",
            ),
            (
                r#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
                    "max_detections": 6, "row_values": 56, "box_offset": 52,
                    "output": {"name": "o"}, "class_to_coco": [0]}"#,
                "box_offset",
            ),
            (
                r#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
                    "max_detections": 6, "row_values": 56, "box_offset": 51,
                    "output": {"name": "o"}}"#,
                "one class",
            ),
            (
                r#"{"kind": "movenet", "width": 256, "height": 256, "classes": 1,
                    "max_detections": 6, "row_values": 56, "box_offset": 51,
                    "output": {"name": "o"}, "class_to_coco": [80]}"#,
                "past COCO",
            ),
            (
                r#"{"kind": "yolo", "width": 512, "height": 512, "classes": 80}"#,
                "unknown variant",
            ),
        ] {
            let e = ModelInfo::parse(json.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
    }

    #[test]
    fn whole_frames_are_letterboxed_and_boxes_map_back() {
        let (w, h) = (8u32, 4u32);
        let frame: Vec<u8> = (0..w * h * 3).map(|i| i as u8).collect();
        let look = look_for(None, w, h);
        assert_eq!(look, Look::Whole { side: 8 });
        let (rgb, side) = look.pixels(&frame, w, h);
        assert_eq!(side, 8);
        assert_eq!(&rgb[..(w * h * 3) as usize], &frame[..], "the frame on top");
        assert!(
            rgb[(w * h * 3) as usize..].iter().all(|&b| b == 0),
            "padding below"
        );
        // A box in the top half of the square is the whole height of the frame.
        let b = BBox {
            x0: 0.25,
            y0: 0.0,
            x1: 0.5,
            y1: 0.5,
        }
        .from_region(&look.frac(w, h));
        assert_eq!((b.x0, b.y0, b.x1, b.y1), (0.25, 0.0, 0.5, 1.0));
        // A square frame is given as it is; a region that fits is a crop.
        assert_eq!(
            look_for(None, 4, 4).pixels(&frame[..48], 4, 4).0,
            frame[..48].to_vec()
        );
        let r = BBox {
            x0: 0.0,
            y0: 0.0,
            x1: 0.25,
            y1: 0.5,
        };
        assert_eq!(
            look_for(Some(r), 640, 360),
            Look::Crop {
                x: 0,
                y: 0,
                side: 360
            }
        );
    }
}
