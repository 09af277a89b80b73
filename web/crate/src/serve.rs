//! The warp routes that serve the app: `GET /` (the page, never cached) and
//! `GET /assets/...` (cached for a day: a new release changes the page that names them, and
//! the page is not cached). Anything else is not theirs (a plain rejection, so routes after
//! them still answer).

use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection};

/// `GET /` and `GET /assets/...`.
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let page = warp::get().and(warp::path::end()).map(|| reply("/"));
    let assets = warp::get()
        .and(warp::path("assets"))
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            let path = format!("/assets/{}", tail.as_str());
            match crate::asset(&path) {
                Some(_) => Ok(reply(&path)),
                None => Err(warp::reject::not_found()),
            }
        });
    page.or(assets).unify()
}

fn reply(path: &str) -> warp::reply::Response {
    let Some(a) = crate::asset(path) else {
        let mut r = warp::reply::Response::new(Vec::<u8>::new().into());
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = warp::reply::Response::new(match a.body {
        std::borrow::Cow::Borrowed(b) => b.into(),
        std::borrow::Cow::Owned(v) => v.into(),
    });
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(a.content_type));
    for (k, v) in crate::HEADERS {
        h.insert(k, HeaderValue::from_static(v));
    }
    h.insert(
        "cache-control",
        HeaderValue::from_static(if a.immutable {
            "public, max-age=86400"
        } else {
            "no-store"
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.sha256)) {
        h.insert("etag", v);
    }
    r
}
