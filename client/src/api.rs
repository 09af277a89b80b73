//! The vm's HTTP API as the owner's client uses it (`guardian fetch`, `guardian play`): one
//! client that carries the base URL and the owner's API token, and one mapping of the vm's
//! error answers (`{"error": code, "message": text}`) to [`ApiError`].

use std::time::Duration;

use protocols::messages::clips::Ticket;

/// Why a call to the vm's API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The vm answered with an error status.
    #[error("the vm answered {status} for {url}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The answer's machine-readable `error` code, if any (`edge_offline`, ...).
        code: Option<String>,
        /// The answer's `message`, or "no detail".
        message: String,
    },
    /// The vm could not be reached (or the connection broke).
    #[error("cannot reach the vm at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The vm answered success with a body that does not parse.
    #[error("unreadable {what} from {url}: {reason}")]
    Unreadable {
        /// What was expected ("ticket", ...).
        what: &'static str,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ApiError {
    /// The error for an error answer: `status` with the JSON `body` the vm sent (`Null` when
    /// it sent none or something else).
    pub fn from_answer(url: &str, status: u16, body: &serde_json::Value) -> ApiError {
        ApiError::Status {
            url: url.to_owned(),
            status,
            code: body["error"].as_str().map(str::to_owned),
            message: body["message"].as_str().unwrap_or("no detail").to_owned(),
        }
    }
}

/// Timeouts of one kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the vm.
    pub connect: Duration,
    /// Each read (downloads), when set.
    pub read: Option<Duration>,
    /// The whole call (short requests), when set.
    pub total: Option<Duration>,
}

impl Timeouts {
    /// Downloads: 10 s to connect, 60 s per read, no bound on the whole.
    pub const DOWNLOAD: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Some(Duration::from_secs(60)),
        total: None,
    };
    /// Short requests: 10 s to connect, 30 s for the whole call.
    pub const REQUEST: Timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: None,
        total: Some(Duration::from_secs(30)),
    };
}

/// The vm's API at one base URL, called with the owner's API token.
pub struct VmApi {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl VmApi {
    /// The API at `base` (such as `http://127.0.0.1:8080`, a trailing `/` ignored).
    pub fn new(base: &str, token: &str, timeouts: Timeouts) -> Self {
        let mut b = ureq::AgentBuilder::new().timeout_connect(timeouts.connect);
        if let Some(read) = timeouts.read {
            b = b.timeout_read(read);
        }
        if let Some(total) = timeouts.total {
            b = b.timeout(total);
        }
        VmApi {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            agent: b.build(),
        }
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`; the answer on success.
    pub fn get(&self, path: &str) -> Result<ureq::Response, ApiError> {
        let url = self.url(path);
        let answer = self.authorized(self.agent.get(&url)).call();
        Self::answer(url, answer)
    }

    /// `POST path` with a JSON body; the answer on success.
    pub fn post_json(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<ureq::Response, ApiError> {
        let url = self.url(path);
        let answer = self.authorized(self.agent.post(&url)).send_json(body);
        Self::answer(url, answer)
    }

    /// `PUT path` with a JSON body; the answer on success.
    pub fn put_json(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<ureq::Response, ApiError> {
        let url = self.url(path);
        let answer = self.authorized(self.agent.put(&url)).send_json(body);
        Self::answer(url, answer)
    }

    /// `DELETE path`; the answer on success.
    pub fn delete(&self, path: &str) -> Result<ureq::Response, ApiError> {
        let url = self.url(path);
        let answer = self.authorized(self.agent.delete(&url)).call();
        Self::answer(url, answer)
    }

    /// `POST /api/v1/events/{event_id}/play`: a playback token for the event, admitting
    /// `client` (the peer id that will stream) to the vm's relay until it expires.
    pub fn play_ticket(&self, event_id: &str, client: Option<&str>) -> Result<Ticket, ApiError> {
        let path = format!("/api/v1/events/{event_id}/play");
        let body = serde_json::json!({ "client_peer_id": client });
        self.post_json(&path, body)?
            .into_json()
            .map_err(|e| ApiError::Unreadable {
                what: "ticket",
                url: self.url(&path),
                reason: e.to_string(),
            })
    }

    fn authorized(&self, request: ureq::Request) -> ureq::Request {
        request.set("Authorization", &format!("Bearer {}", self.token))
    }

    fn answer(
        url: String,
        answer: Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response, ApiError> {
        match answer {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(status, r)) => {
                let body: serde_json::Value = r.into_json().unwrap_or_default();
                Err(ApiError::from_answer(&url, status, &body))
            }
            Err(e) => Err(ApiError::Unreachable {
                url,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_error_answer_keeps_its_code_and_message() {
        let e = ApiError::from_answer(
            "http://vm/api/v1/events/e1/play",
            503,
            &json!({"error": "edge_offline", "message": "the edge is offline"}),
        );
        assert_eq!(
            e,
            ApiError::Status {
                url: "http://vm/api/v1/events/e1/play".into(),
                status: 503,
                code: Some("edge_offline".into()),
                message: "the edge is offline".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "the vm answered 503 for http://vm/api/v1/events/e1/play: the edge is offline"
        );
    }

    #[test]
    fn an_answer_without_json_has_no_detail() {
        let e = ApiError::from_answer("http://vm/x", 502, &serde_json::Value::Null);
        assert_eq!(
            e,
            ApiError::Status {
                url: "http://vm/x".into(),
                status: 502,
                code: None,
                message: "no detail".into(),
            }
        );
        // A code that is not a string is no code.
        let e = ApiError::from_answer("http://vm/x", 400, &json!({"error": 7, "message": "bad"}));
        assert!(matches!(e, ApiError::Status { code: None, ref message, .. } if message == "bad"));
    }

    #[test]
    fn urls_join_the_base_without_a_double_slash() {
        let api = VmApi::new("http://127.0.0.1:8080/", "t", Timeouts::REQUEST);
        assert_eq!(
            api.url("/api/v1/devices"),
            "http://127.0.0.1:8080/api/v1/devices"
        );
        let api = VmApi::new("http://127.0.0.1:8080", "t", Timeouts::DOWNLOAD);
        assert_eq!(api.url("/api/v1/x"), "http://127.0.0.1:8080/api/v1/x");
    }

    #[test]
    fn an_unreachable_vm_is_named_by_its_url() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = VmApi::new(&format!("http://127.0.0.1:{port}"), "t", Timeouts::REQUEST);
        match api.get("/api/v1/devices") {
            Err(ApiError::Unreachable { url, .. }) => {
                assert_eq!(url, format!("http://127.0.0.1:{port}/api/v1/devices"))
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("something answered on a free port"),
        }
    }
}
