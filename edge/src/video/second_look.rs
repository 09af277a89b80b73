//! The second look at an event's object, on the edge: the stronger model
//! (`detector.verify_model`) on the frame of the event's best detection, around its box, as
//! soon as the event opens. The verdict goes to the vm in the event's next revision and in its
//! closed record; alarm rules wait for it. What it means is [`crate::detect::verify`] (pure);
//! this is the running of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocols::messages::Category;
use protocols::messages::events::{Verdict, Verification};

use super::analysis::{Best, Detect};
use crate::detect::labels;
use crate::detect::verify;

/// The longest wait for the stronger model's answer.
pub const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The stronger model, as the cameras use it.
pub struct Verifier {
    /// Its name in verdicts (`centernet`).
    pub model: String,
    /// It confirms at this score at least.
    pub min_score: f32,
    /// The model, or why it did not load (verdicts then say `unavailable`).
    pub detect: Result<Arc<dyn Detect>, String>,
}

impl Verifier {
    /// The verdict before the look.
    pub fn pending(&self) -> Verification {
        self.said(Verdict::Pending, 0)
    }

    fn said(&self, verdict: Verdict, score_milli: u16) -> Verification {
        Verification {
            model: self.model.clone(),
            verdict,
            score_milli,
        }
    }

    /// Looks at `best` (a frame `width`×`height`): confirmed, rejected, or unavailable when
    /// the model is missing or fails.
    pub fn look(&self, best: &Best, width: u32, height: u32) -> Verification {
        let detect = match &self.detect {
            Ok(d) => d,
            Err(_) => return self.said(Verdict::Unavailable, 0),
        };
        let category: Category = labels::category(best.class);
        let region = verify::region_around(best.bbox);
        match detect.detect_frame(&best.rgb, width, height, Some(region)) {
            Ok(found) => {
                let (verdict, milli) =
                    verify::verdict(&category, best.bbox, &found, self.min_score);
                self.said(verdict, milli)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the second look failed");
                self.said(Verdict::Unavailable, 0)
            }
        }
    }
}

/// One event's second look as it stands: pending until the look is done. Shared by the
/// thread that looks and the event's closed record.
#[derive(Debug, Clone)]
pub struct Look(Arc<Mutex<Verification>>);

impl Look {
    /// Pending, by `verifier`.
    pub fn pending(verifier: &Verifier) -> Look {
        Look(Arc::new(Mutex::new(verifier.pending())))
    }

    /// The verdict now.
    pub fn current(&self) -> Verification {
        self.0
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Records the verdict.
    pub fn set(&self, v: Verification) {
        match self.0.lock() {
            Ok(mut g) => *g = v,
            Err(e) => *e.into_inner() = v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::boxes::{BBox, Detection};
    use crate::detect::runtime::DetectorError;

    /// Answers with `found` and records the region it was asked about.
    struct Scripted {
        found: Result<Vec<Detection>, ()>,
        asked: Mutex<Option<BBox>>,
    }

    impl Detect for Scripted {
        fn detect_frame(
            &self,
            _rgb: &[u8],
            _w: u32,
            _h: u32,
            region: Option<BBox>,
        ) -> Result<Vec<Detection>, DetectorError> {
            *self.asked.lock().unwrap() = region;
            self.found.clone().map_err(|_| DetectorError::Timeout)
        }
    }

    fn best() -> Best {
        Best {
            score: 0.6,
            class: 0,
            bbox: BBox {
                x0: 0.4,
                y0: 0.2,
                x1: 0.5,
                y1: 0.8,
            },
            rgb: vec![0; 64 * 36 * 3],
        }
    }

    fn verifier(found: Result<Vec<Detection>, ()>) -> (Verifier, Arc<Scripted>) {
        let s = Arc::new(Scripted {
            found,
            asked: Mutex::new(None),
        });
        let v = Verifier {
            model: "centernet".into(),
            min_score: 0.3,
            detect: Ok(s.clone() as Arc<dyn Detect>),
        };
        (v, s)
    }

    #[test]
    fn the_model_looks_around_the_object_and_its_answer_is_the_verdict() {
        let (v, s) = verifier(Ok(vec![Detection {
            class: 0,
            score: 0.71,
            bbox: best().bbox,
        }]));
        let look = Look::pending(&v);
        assert_eq!(look.current().verdict, Verdict::Pending);
        let said = v.look(&best(), 64, 36);
        assert_eq!((said.verdict, said.score_milli), (Verdict::Confirmed, 710));
        assert_eq!(
            *s.asked.lock().unwrap(),
            Some(verify::region_around(best().bbox))
        );
        look.set(said.clone());
        assert_eq!(look.clone().current(), said);
        let (v, _) = verifier(Ok(vec![]));
        assert_eq!(v.look(&best(), 64, 36).verdict, Verdict::Rejected);
    }

    #[test]
    fn a_model_that_fails_or_never_loaded_is_unavailable() {
        let (v, _) = verifier(Err(()));
        assert_eq!(v.look(&best(), 64, 36).verdict, Verdict::Unavailable);
        let v = Verifier {
            model: "centernet".into(),
            min_score: 0.3,
            detect: Err("no model".into()),
        };
        assert_eq!(v.look(&best(), 64, 36).verdict, Verdict::Unavailable);
    }
}
