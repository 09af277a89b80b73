//! S3 storage for sealed objects, through aws-sdk-s3, whatever the server: the embedded
//! s3s-fs server (the default when no endpoint is configured), MinIO in compose, Ceph's
//! radosgw, or AWS.
//!
//! # Embedded server
//!
//! With no endpoint, [`Storage::start`] runs an s3s-fs server in this process on
//! `127.0.0.1:<any port>` with data under `<data>/s3` and random credentials made once and
//! kept in `<data>/s3-embedded.keys` (0600; stable, so an upload a crash left open can be
//! aborted after the restart: s3s-fs binds an upload to the key that made it), and talks to
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
//!
//! Each multipart upload id goes into the [`UploadJournal`] right after S3 made it and out
//! once it completed or was aborted; ids this process is still writing are in
//! [`Storage::is_active`]. What a crash left journaled is aborted at the next start
//! (`archive::uploads`).

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
#[derive(Clone, Serialize, Deserialize)]
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
    /// A file holding the access key id (as container secrets are mounted); it wins over
    /// `access_key`. Trailing whitespace is dropped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_key_file: String,
    /// A file holding the secret access key; it wins over `secret_key`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_key_file: String,
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
            access_key_file: String::new(),
            secret_key_file: String::new(),
            path_style: true,
            part_size: 16 * 1024 * 1024,
            embedded_listen: "127.0.0.1:0".into(),
        }
    }
}

/// The keys never reach a log: `Debug` shows whether they are set, not what they are.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &str| if s.is_empty() { "" } else { "<set>" };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &set(&self.access_key))
            .field("secret_key", &set(&self.secret_key))
            .field("access_key_file", &self.access_key_file)
            .field("secret_key_file", &self.secret_key_file)
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("embedded_listen", &self.embedded_listen)
            .finish()
    }
}

/// Reads a secret from `path`, without its trailing whitespace (a newline from `echo`).
fn read_secret(path: &str) -> Result<String, StorageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StorageError::Embedded(format!("cannot read the secret file {path}: {e}")))?;
    Ok(text.trim_end().to_owned())
}

impl S3Config {
    /// Applies the environment (`GUARDIAN_S3_ENDPOINT`, `_REGION`, `_ACCESS_KEY`,
    /// `_SECRET_KEY`, `_ACCESS_KEY_FILE`, `_SECRET_KEY_FILE`, `_PATH_STYLE`), then reads the
    /// key files: a `*_FILE` (from `vm.toml` or the environment) wins over the inline value.
    pub fn resolved(self) -> Result<Self, StorageError> {
        let mut c = self.with_env();
        if !c.access_key_file.is_empty() {
            c.access_key = read_secret(&c.access_key_file)?;
        }
        if !c.secret_key_file.is_empty() {
            c.secret_key = read_secret(&c.secret_key_file)?;
        }
        Ok(c)
    }

    /// Applies `GUARDIAN_S3_ENDPOINT`, `_REGION`, `_ACCESS_KEY`, `_SECRET_KEY`,
    /// `_ACCESS_KEY_FILE`, `_SECRET_KEY_FILE`, `_PATH_STYLE`.
    pub fn with_env(mut self) -> Self {
        let var = |n: &str| std::env::var(format!("GUARDIAN_S3_{n}")).ok();
        if let Some(v) = var("ACCESS_KEY_FILE") {
            self.access_key_file = v;
        }
        if let Some(v) = var("SECRET_KEY_FILE") {
            self.secret_key_file = v;
        }
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

/// Where multipart upload ids are written while they are open (the vm's database).
pub trait UploadJournal: Send + Sync {
    /// S3 made `upload_id` for `bucket/key`: journal it before any part is sent.
    fn started<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
    /// The upload completed or was aborted.
    fn ended<'a>(&'a self, upload_id: &'a str) -> futures::future::BoxFuture<'a, ()>;
}

/// The S3 client, and the embedded server when there is one.
pub struct Storage {
    client: Client,
    part_size: u64,
    endpoint: String,
    embedded: Option<tokio::task::JoinHandle<()>>,
    embedded_root: Option<std::path::PathBuf>,
    journal: std::sync::OnceLock<std::sync::Arc<dyn UploadJournal>>,
    active: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Stray parts the embedded server holds: uploads nothing is writing and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StrayParts {
    /// Uploads with parts on disk.
    pub uploads: u64,
    /// Their parts' bytes.
    pub bytes: u64,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(server) = self.embedded.take() {
            server.abort();
        }
    }
}

/// Marks an upload id active in a [`Storage`] while it lives.
struct Active<'a>(
    &'a std::sync::Mutex<std::collections::HashSet<String>>,
    String,
);

impl<'a> Active<'a> {
    fn new(set: &'a std::sync::Mutex<std::collections::HashSet<String>>, id: &str) -> Self {
        set.lock().expect("active lock").insert(id.to_owned());
        Active(set, id.to_owned())
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("active lock").remove(&self.1);
    }
}

/// The embedded server's keys, made once (random) and kept in `path` (0600).
fn embedded_keys(path: &Path) -> Result<(String, String), StorageError> {
    use rand::RngCore;
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some((a, s)) = text.trim().split_once('\n')
    {
        return Ok((a.trim().to_owned(), s.trim().to_owned()));
    }
    let mut key = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let access = format!("GDN{}", data_encoding::BASE32_NOPAD.encode(&key[..10]));
    let secret = data_encoding::BASE32_NOPAD.encode(&key);
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    let mut file = f
        .open(path)
        .map_err(|e| StorageError::Embedded(format!("cannot write {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, format!("{access}\n{secret}\n").as_bytes())
        .map_err(|e| StorageError::Embedded(format!("cannot write {}: {e}", path.display())))?;
    Ok((access, secret))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Storage {
    /// Connects to the configured server, or starts the embedded one under `data/s3`.
    pub async fn start(config: &S3Config, data: &Path) -> Result<Self, StorageError> {
        let embedded_root = config.endpoint.is_empty().then(|| data.join("s3"));
        let (endpoint, access, secret, embedded) = if config.endpoint.is_empty() {
            let (access, secret) = if config.access_key.is_empty() || config.secret_key.is_empty() {
                embedded_keys(&data.join("s3-embedded.keys"))?
            } else {
                (config.access_key.clone(), config.secret_key.clone())
            };
            let (endpoint, access, secret, task) =
                start_embedded(&data.join("s3"), &config.embedded_listen, &access, &secret).await?;
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
            embedded_root,
            journal: std::sync::OnceLock::new(),
            active: Default::default(),
        })
    }

    /// Journals multipart uploads in `journal` from now on (set once).
    pub fn set_journal(&self, journal: std::sync::Arc<dyn UploadJournal>) {
        let _ = self.journal.set(journal);
    }

    /// Whether this process is writing `upload_id` now.
    pub fn is_active(&self, upload_id: &str) -> bool {
        self.active.lock().expect("active lock").contains(upload_id)
    }

    /// Aborts a multipart upload; one S3 no longer knows is aborted already.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_err("AbortMultipartUpload")(e);
                if e.to_string().contains("NoSuchUpload") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The multipart uploads S3 lists as open in `bucket` (key, upload id); `None` when the
    /// server cannot list them (s3s-fs).
    pub async fn open_uploads(&self, bucket: &str) -> Option<Vec<(String, String)>> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .ok()?;
        Some(
            out.uploads()
                .iter()
                .filter_map(|u| Some((u.key()?.to_owned(), u.upload_id()?.to_owned())))
                .collect(),
        )
    }

    /// Parts on the embedded server's disk of uploads this process is not writing (a crash
    /// before the journal, or an abort that failed). Zero for another server.
    pub fn embedded_stray_parts(&self) -> StrayParts {
        let Some(root) = &self.embedded_root else {
            return StrayParts::default();
        };
        let Ok(dir) = std::fs::read_dir(root) else {
            return StrayParts::default();
        };
        let mut ids = std::collections::HashSet::new();
        let mut bytes = 0;
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(".upload_id-") else {
                continue;
            };
            let Some((id, _)) = rest.split_once(".part-") else {
                continue;
            };
            if self.is_active(id) {
                continue;
            }
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            ids.insert(id.to_owned());
        }
        StrayParts {
            uploads: ids.len() as u64,
            bytes,
        }
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
        let result = {
            // Active while this future runs, even if it is dropped midway (a shutdown): the
            // cleanup of this process leaves it alone, the next start's aborts it.
            let _active = Active::new(&self.active, &upload_id);
            self.put_parts(bucket, key, &upload_id, size, incoming, &mut whole)
                .await
        };
        if result.is_ok()
            && let Some(j) = self.journal.get()
        {
            j.ended(&upload_id).await;
        }
        result
    }

    /// Aborts a failed upload now and takes it out of the journal; if the abort fails, the
    /// journal row stays for the next cleanup.
    async fn abort_and_forget(&self, bucket: &str, key: &str, upload_id: &str) {
        if self.abort_upload(bucket, key, upload_id).await.is_ok()
            && let Some(j) = self.journal.get()
        {
            j.ended(upload_id).await;
        }
    }

    /// The journaled part of a multipart upload: journal, parts, complete (or abort).
    async fn put_parts<R: AsyncRead + Unpin>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        size: u64,
        incoming: &mut R,
        whole: &mut Sha256,
    ) -> Result<ContentId, StorageError> {
        let mut received = 0u64;
        if let Some(j) = self.journal.get()
            && let Err(e) = j.started(bucket, key, upload_id).await
        {
            // Not journaled, so a crash would leave it for good: do not go on.
            let _ = self.abort_upload(bucket, key, upload_id).await;
            return Err(s3_err(
                "CreateMultipartUpload",
                format!("cannot journal the upload: {e}"),
            ));
        }
        let result: Result<Vec<CompletedPart>, StorageError> = async {
            let mut parts = Vec::new();
            let mut number = 1;
            while received < size {
                let want = (size - received).min(self.part_size);
                let body = read_part(incoming, want, whole, received, size).await?;
                received += want;
                let sum = b64(&Sha256::digest(&body));
                let out = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
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
                self.abort_and_forget(bucket, key, upload_id).await;
                return Err(e);
            }
        };
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err("CompleteMultipartUpload"));
        if let Err(e) = completed {
            self.abort_and_forget(bucket, key, upload_id).await;
            return Err(e);
        }
        Ok(ContentId::from_sha256(whole.clone().finalize().into()))
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

    /// The CID of an object, read through once (memory: one chunk).
    pub async fn cid_of(&self, bucket: &str, key: &str) -> Result<ContentId, StorageError> {
        let mut out = self.get(bucket, key, None).await?;
        let mut h = Sha256::new();
        while let Some(chunk) = out.body.next().await {
            h.update(chunk.map_err(|e| s3_err("GetObject", e))?);
        }
        Ok(ContentId::from_sha256(h.finalize().into()))
    }

    /// A small object's bytes; `None` when it is missing or larger than `max`.
    pub async fn get_small(
        &self,
        bucket: &str,
        key: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match self.object_size(bucket, key).await? {
            Some(n) if n <= max => {}
            _ => return Ok(None),
        }
        let out = self.get(bucket, key, None).await?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| s3_err("GetObject", e))?
            .into_bytes();
        Ok((bytes.len() as u64 <= max).then(|| bytes.to_vec()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_win_over_inline_keys_and_keys_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t-from-file\n").unwrap();
        let c = S3Config {
            access_key: "AKIAINLINE".into(),
            secret_key: "inline-secret".into(),
            secret_key_file: secret.display().to_string(),
            ..Default::default()
        };
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("inline-secret") && !debug.contains("AKIAINLINE"),
            "{debug}"
        );
        let r = c.resolved().unwrap();
        assert_eq!(r.secret_key, "s3cr3t-from-file");
        assert_eq!(r.access_key, "AKIAINLINE");
        let missing = S3Config {
            access_key_file: dir.path().join("nope").display().to_string(),
            ..Default::default()
        };
        assert!(missing.resolved().is_err());
    }
}
