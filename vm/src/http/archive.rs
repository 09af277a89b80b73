//! `/api/v1/archive`: the archive index, a manifest, a sealed object (streamed from S3,
//! with a single `Range`).

use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::{ApiError, internal};
use crate::db;
use crate::state::VmState;
use protocols::http::query::Listing;

#[derive(Serialize)]
struct ArchiveBody {
    objects: Vec<db::ArchiveRow>,
    next_since: Option<u64>,
}

pub(super) async fn list_archive(
    state: Arc<VmState>,
    p: crate::access::Principal,
    q: Listing,
) -> Result<warp::reply::Response, Rejection> {
    let Listing {
        camera,
        since,
        limit,
    } = q;
    let objects = state
        .db
        .call(move |c| db::archived_objects(c, camera.as_deref(), since, limit))
        .await
        .map_err(internal)?;
    let next_since = (objects.len() == limit as usize)
        .then(|| objects.last().map(|o| o.archived_at_ms))
        .flatten();
    let mut objects = objects;
    objects.retain(|o| p.may_see(&o.camera_id));
    Ok(warp::reply::json(&ArchiveBody {
        objects,
        next_since,
    })
    .into_response())
}

async fn archived(
    state: &VmState,
    p: &crate::access::Principal,
    cid: String,
) -> Result<db::ArchiveRow, Rejection> {
    if cid.parse::<protocols::ContentId>().is_err() {
        return Err(warp::reject::custom(ApiError::BadRequest(format!(
            "{cid:?} is not the CID of a sealed object"
        ))));
    }
    let c = cid.clone();
    state
        .db
        .call(move |conn| db::archived_object(conn, &c))
        .await
        .map_err(internal)?
        .filter(|row| p.may_see(&row.camera_id))
        .ok_or_else(|| {
            warp::reject::custom(ApiError::NotFound(format!("no archived object {cid}")))
        })
}

pub(super) async fn get_manifest(
    cid: String,
    state: Arc<VmState>,
    p: crate::access::Principal,
) -> Result<warp::reply::Response, Rejection> {
    let row = archived(&state, &p, cid).await?;
    let event = row.event_id.clone();
    let json = state
        .db
        .call(move |c| db::archived_manifest(c, &event))
        .await
        .map_err(internal)?
        .ok_or_else(|| warp::reject::custom(ApiError::NotFound("the manifest is gone".into())))?;
    Ok(warp::reply::with_header(json, "content-type", "application/json").into_response())
}

pub(super) async fn get_object(
    cid: String,
    state: Arc<VmState>,
    p: crate::access::Principal,
    range: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    let row = archived(&state, &p, cid).await?;
    // The range is checked against the size the index holds before S3 is asked: a bad one
    // is a 400 or a 416 here, never an S3 error.
    let satisfied = range
        .as_deref()
        .map(|r| protocols::http::range::parse(r).and_then(|r| r.resolve(row.size)))
        .transpose()
        .map_err(super::clip::range_rejection)?;
    let s3_range = satisfied.map(|s| format!("bytes={}-{}", s.first, s.last));
    let out = state
        .storage
        .get(&row.bucket, &row.key, s3_range.as_deref())
        .await
        .map_err(|e| warp::reject::custom(ApiError::Unavailable(e.to_string())))?;
    let length = out.content_length();
    let content_range = out.content_range().map(str::to_owned);
    let mut body = out.body;
    // A bounded channel between S3 and the client: memory stays a few chunks whatever the size.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = warp::reply::stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        "application/octet-stream".parse().expect("valid"),
    );
    headers.insert("accept-ranges", "bytes".parse().expect("valid"));
    if let Some(len) = length {
        headers.insert("content-length", len.to_string().parse().expect("valid"));
    }
    if let Some(s) = satisfied {
        // The range we asked for, not S3's echo of it (the same, unless S3 misbehaves).
        if content_range.as_deref() != Some(s.content_range().as_str()) {
            tracing::warn!(asked = %s.content_range(), answered = ?content_range, "S3 answered another range");
        }
        headers.insert("content-range", s.content_range().parse().expect("valid"));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}
