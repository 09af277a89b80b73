//! S3 storage for sealed objects, through aws-sdk-s3, whatever the server: the embedded
//! s3s-fs server (the default when no endpoint is configured), MinIO in compose, Ceph's
//! radosgw, or AWS.
//!
//! # Embedded server
//!
//! With no endpoint, [`Storage::start`] runs an s3s-fs server in this process on
//! `127.0.0.1:<any port>` with data under `<data>/s3` and fresh random credentials, and talks to
//! it over HTTP with aws-sdk-s3: the same code path as any other server.
//!
//! # Uploads
//!
//! [`Storage::put_stream`] reads exactly `size` bytes from a stream and stores them with a
//! SHA-256 checksum the server verifies: one `PutObject` up to `part_size`, a multipart upload
//! above it (each part with its own SHA-256; the upload created with the SHA-256 algorithm so
//! the server checks the parts). Memory: one part buffer per upload, whatever the object size.
//! The whole object's SHA-256 is computed on the way, so the caller can check the CID before
//! indexing; an upload that fails or does not match is aborted or deleted.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use futures::{AsyncRead, AsyncReadExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use protocols::ContentId;

/// S3 settings (`[s3]` in `vm.toml`; `GUARDIAN_S3_*` environment variables override).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The endpoint URL; empty runs the embedded server.
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// Access key id (ignored by the embedded server).
    pub access_key: String,
    /// Secret access key (ignored by the embedded server).
    pub secret_key: String,
    /// Path-style addressing (`http://host/bucket/key`); needed by MinIO, s3s and radosgw on
    /// plain hosts.
    pub path_style: bool,
    /// Objects larger than this go up in multipart uploads of this part size (at least 5 MiB,
    /// S3's minimum part).
    pub part_size: u64,
    /// Where the embedded server listens (loopback; port 0 = any). Set a port and keys to
    /// inspect the buckets with another S3 client.
    pub embedded_listen: String,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            path_style: true,
            part_size: 16 * 1024 * 1024,
            embedded_listen: "127.0.0.1:0".into(),
        }
    }
}

impl S3Config {
    /// Applies `GUARDIAN_S3_ENDPOINT`, `_REGION`, `_ACCESS_KEY`, `_SECRET_KEY`, `_PATH_STYLE`.
    pub fn with_env(mut self) -> Self {
        let var = |n: &str| std::env::var(format!("GUARDIAN_S3_{n}")).ok();
        if let Some(v) = var("ENDPOINT") {
            self.endpoint = v;
        }
        if let Some(v) = var("REGION") {
            self.region = v;
        }
        if let Some(v) = var("ACCESS_KEY") {
            self.access_key = v;
        }
        if let Some(v) = var("SECRET_KEY") {
            self.secret_key = v;
        }
        if let Some(v) = var("PATH_STYLE") {
            self.path_style = matches!(v.as_str(), "1" | "true" | "yes");
        }
        self
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The S3 server failed or could not be reached.
    #[error("S3 {operation} failed: {message}")]
    S3 {
        /// What was attempted.
        operation: &'static str,
        /// What the SDK said.
        message: String,
    },
    /// Reading the incoming object failed (the peer went away).
    #[error("the object stream broke after {received} of {size} bytes: {source}")]
    Incoming {
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        size: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The embedded server could not start.
    #[error("the embedded S3 server could not start: {0}")]
    Embedded(String),
}

fn s3_err(operation: &'static str, e: impl std::fmt::Display) -> StorageError {
    StorageError::S3 {
        operation,
        message: e.to_string(),
    }
}

fn sdk_err<E: std::error::Error + 'static>(
    operation: &'static str,
) -> impl Fn(aws_sdk_s3::error::SdkError<E>) -> StorageError {
    move |e| StorageError::S3 {
        operation,
        message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    }
}

/// The S3 client, and the embedded server when there is one.
pub struct Storage {
    client: Client,
    part_size: u64,
    endpoint: String,
    embedded: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(server) = self.embedded.take() {
            server.abort();
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Storage {
    /// Connects to the configured server, or starts the embedded one under `data/s3`.
    pub async fn start(config: &S3Config, data: &Path) -> Result<Self, StorageError> {
        let (endpoint, access, secret, embedded) = if config.endpoint.is_empty() {
            let (endpoint, access, secret, task) = start_embedded(
                &data.join("s3"),
                &config.embedded_listen,
                &config.access_key,
                &config.secret_key,
            )
            .await?;
            (endpoint, access, secret, Some(task))
        } else {
            (
                config.endpoint.clone(),
                config.access_key.clone(),
                config.secret_key.clone(),
                None,
            )
        };
        let sdk = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(access, secret, None, None, "guardian-vm"))
            .force_path_style(config.path_style)
            // Streamed uploads fail on radosgw and Garage otherwise; we send our own SHA-256.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(Storage {
            client: Client::from_conf(sdk),
            part_size: config.part_size.max(5 * 1024 * 1024),
            endpoint,
            embedded,
        })
    }

    /// The endpoint in use (the embedded server's address when embedded).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The SDK client, for listings and tests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates `bucket` if it does not exist.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        if self
            .client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) {
                    Ok(())
                } else {
                    Err(sdk_err("CreateBucket")(e))
                }
            }
        }
    }

    /// Size of an object, if it exists.
    pub async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk_err("HeadObject")(e)),
        }
    }

    /// Stores small bytes (a manifest) with a SHA-256 checksum.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StorageError> {
        let sum = b64(&Sha256::digest(&bytes));
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_length(bytes.len() as i64)
            .checksum_sha256(sum)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_err("PutObject"))?;
        Ok(())
    }

    /// Reads exactly `size` bytes from `incoming` into `bucket/key`; returns the CID of what
    /// was stored.
    pub async fn put_stream<R: AsyncRead + Unpin>(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        incoming: &mut R,
    ) -> Result<ContentId, StorageError> {
        let mut whole = Sha256::new();
        let mut received = 0u64;
        if size <= self.part_size {
            let body = read_part(incoming, size, &mut whole, 0, size).await?;
            // One part: the object's digest is the checksum, computed once.
            let digest: [u8; 32] = whole.finalize().into();
            let sum = b64(&digest);
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_length(size as i64)
                .checksum_sha256(sum)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(sdk_err("PutObject"))?;
            return Ok(ContentId::from_sha256(digest));
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(sdk_err("CreateMultipartUpload"))?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| s3_err("CreateMultipartUpload", "no upload id"))?
            .to_owned();
        let result: Result<Vec<CompletedPart>, StorageError> = async {
            let mut parts = Vec::new();
            let mut number = 1;
            while received < size {
                let want = (size - received).min(self.part_size);
                let body = read_part(incoming, want, &mut whole, received, size).await?;
                received += want;
                let sum = b64(&Sha256::digest(&body));
                let out = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_length(want as i64)
                    .checksum_sha256(&sum)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(sdk_err("UploadPart"))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .checksum_sha256(out.checksum_sha256().map(str::to_owned).unwrap_or(sum))
                        .build(),
                );
                number += 1;
            }
            Ok(parts)
        }
        .await;
        let parts = match result {
            Ok(p) => p,
            Err(e) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        self.client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err("CompleteMultipartUpload"))?;
        Ok(ContentId::from_sha256(whole.finalize().into()))
    }

    /// Deletes an object (missing objects are not an error).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_err("DeleteObject"))?;
        Ok(())
    }

    /// Every bucket name.
    pub async fn buckets(&self) -> Result<Vec<String>, StorageError> {
        let out = self
            .client
            .list_buckets()
            .send()
            .await
            .map_err(sdk_err("ListBuckets"))?;
        Ok(out
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect())
    }

    /// Every object of a bucket: (key, size).
    pub async fn list(&self, bucket: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(sdk_err("ListObjectsV2"))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push((k.to_owned(), o.size().unwrap_or(0).max(0) as u64));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Opens an object for reading, optionally a byte range (`bytes=a-b` syntax).
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StorageError> {
        self.client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range.map(str::to_owned))
            .send()
            .await
            .map_err(sdk_err("GetObject"))
    }
}

/// Reads the next `want` bytes of an object of `size`, `received` so far, into a buffer.
async fn read_part<R: AsyncRead + Unpin>(
    incoming: &mut R,
    want: u64,
    whole: &mut Sha256,
    received: u64,
    size: u64,
) -> Result<Vec<u8>, StorageError> {
    let mut buf = vec![0u8; want as usize];
    incoming
        .read_exact(&mut buf)
        .await
        .map_err(|source| StorageError::Incoming {
            received,
            size,
            source,
        })?;
    whole.update(&buf);
    Ok(buf)
}

/// Starts s3s-fs on `listen` with the given credentials (random ones if empty); returns
/// (endpoint, access, secret, task).
async fn start_embedded(
    root: &Path,
    listen: &str,
    access: &str,
    secret: &str,
) -> Result<(String, String, String, tokio::task::JoinHandle<()>), StorageError> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;
    use rand::RngCore;

    std::fs::create_dir_all(root).map_err(|e| StorageError::Embedded(e.to_string()))?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| StorageError::Embedded(format!("{e:?}")))?;
    let mut key = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let (access, secret) = if access.is_empty() || secret.is_empty() {
        (
            format!("GDN{}", data_encoding::BASE32_NOPAD.encode(&key[..10])),
            data_encoding::BASE32_NOPAD.encode(&key),
        )
    } else {
        (access.to_owned(), secret.to_owned())
    };
    let service = {
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(
            access.clone(),
            secret.clone(),
        ));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| StorageError::Embedded(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StorageError::Embedded(e.to_string()))?;
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    tracing::info!(endpoint = %format!("http://{addr}"), root = %root.display(), "embedded S3 server started");
    Ok((format!("http://{addr}"), access, secret, task))
}
