//! The storage layer against a real S3 server: the embedded s3s-fs by default, or the
//! server named by `GUARDIAN_S3_ENDPOINT` (with `GUARDIAN_S3_ACCESS_KEY` and
//! `GUARDIAN_S3_SECRET_KEY`), as `make test` does for Ceph's radosgw.

mod support;

use guardian_vm::storage::{S3Config, Storage};
use protocols::ContentId;
use support::pseudo_random;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_with_checksums_single_and_multipart() {
    let dir = tempfile::tempdir().unwrap();
    let config = S3Config {
        part_size: 5 * 1024 * 1024,
        ..S3Config::default()
    }
    .with_env();
    let storage = Storage::start(&config, dir.path()).await.unwrap();
    let bucket = format!("camera-test-{}", std::process::id());
    storage.ensure_bucket(&bucket).await.unwrap();
    storage.ensure_bucket(&bucket).await.unwrap(); // idempotent

    for (key, len) in [
        ("events/a/clip.mp4.age", 1000usize),
        ("events/b/clip.mp4.age", 12 << 20),
    ] {
        let bytes = pseudo_random(len, len as u32);
        let cid = storage
            .put_stream(&bucket, key, len as u64, &mut bytes.as_slice())
            .await
            .unwrap();
        assert_eq!(cid, ContentId::of_bytes(&bytes), "{key}");
        assert_eq!(
            storage.object_size(&bucket, key).await.unwrap(),
            Some(len as u64)
        );
        let got = storage.get(&bucket, key, None).await.unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), bytes.as_slice(), "{key}");
        let ranged = storage
            .get(&bucket, key, Some("bytes=100-199"))
            .await
            .unwrap();
        let part = ranged.body.collect().await.unwrap().into_bytes();
        assert_eq!(part.as_ref(), &bytes[100..200]);
    }
    // A stream that ends early is an error and leaves no object.
    let short = pseudo_random(100, 9);
    let err = storage
        .put_stream(
            &bucket,
            "events/c/clip.mp4.age",
            1000,
            &mut short.as_slice(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("broke after"), "{err}");
    assert_eq!(
        storage
            .object_size(&bucket, "events/c/clip.mp4.age")
            .await
            .unwrap(),
        None
    );

    let mut listed = storage.list(&bucket).await.unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("events/a/clip.mp4.age".to_owned(), 1000),
            ("events/b/clip.mp4.age".to_owned(), 12 << 20)
        ]
    );
    storage
        .delete(&bucket, "events/a/clip.mp4.age")
        .await
        .unwrap();
    assert_eq!(
        storage
            .object_size(&bucket, "events/a/clip.mp4.age")
            .await
            .unwrap(),
        None
    );
    assert!(storage.buckets().await.unwrap().contains(&bucket));
}
