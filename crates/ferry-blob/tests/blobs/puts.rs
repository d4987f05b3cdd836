//! Streamed puts: hashed and counted on the way, small bodies kept for the caller, too large or
//! failing or cancelled bodies leaving nothing behind — every test on both backends with the
//! harness of `blobs.rs`.

use super::*;
use ferry_blob::Stored;

on_both_backends!(
    streamed_round_trip_hashes_and_counts,
    small_bodies_are_kept_and_large_ones_stored,
    too_large_fails_early_and_leaves_nothing,
    failing_body_leaves_nothing,
    cancelled_put_leaves_nothing,
);

async fn streamed_round_trip_hashes_and_counts(f: Fixture) {
    let len = 20 * MIB;
    let key = "messages/2026/11/22/0195a3c4-7f1e-7b2a-9c3d-1e2f3a4b5c6d";
    let spec = BodySpec { probe: Some(f.probe()), ..BodySpec::default() };
    let info = f.store.put_stream(key, body(len, spec), 64 * MIB).await.unwrap();
    assert_eq!(info.key, key);
    assert_eq!(info.size, len);
    assert_eq!(info.sha256, expected_sha256(len));

    assert_eq!(f.store.size(key).await.unwrap(), Some(len));
    assert_generated(&read_all(&f.store, key).await, len);
    f.assert_no_leftovers().await;

    // A small body (one PUT on S3), including the empty one.
    let info = f.store.put_stream("small/one", small_body(b"hello, blob store"), 1024).await.unwrap();
    assert_eq!((info.size, info.sha256.len()), (17, 64));
    assert_eq!(read_all(&f.store, "small/one").await, b"hello, blob store");
    let info = f.store.put_stream("small/empty", small_body(b""), 0).await.unwrap();
    assert_eq!(info.size, 0);
    assert_eq!(info.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(f.store.size("small/empty").await.unwrap(), Some(0));
}

async fn small_bodies_are_kept_and_large_ones_stored(f: Fixture) {
    // A body within the size kept is answered, hashed, and not stored.
    match f.store.put_stream_unless_small("small/kept", small_body(b"hello, blob store"), 1024, 64).await.unwrap() {
        Stored::Kept { info, bytes } => {
            assert_eq!(bytes, b"hello, blob store");
            let stored = f.store.put_stream("small/put", small_body(b"hello, blob store"), 1024).await.unwrap();
            assert_eq!((info.size, &info.sha256), (17, &stored.sha256));
        }
        other => panic!("expected the body back, got {other:?}"),
    }
    assert_eq!(f.store.size("small/kept").await.unwrap(), None);
    // A larger one is stored whole (its first chunks included), within the size limit.
    let len = 3 * MIB;
    match f.store.put_stream_unless_small("large/stored", body(len, BodySpec::default()), 4 * MIB, 64 * 1024).await {
        Ok(Stored::Put(info)) => assert_eq!((info.size, info.sha256), (len, expected_sha256(len))),
        other => panic!("expected the body stored, got {other:?}"),
    }
    assert_generated(&read_all(&f.store, "large/stored").await, len);
    let too_large = f.store.put_stream_unless_small("large/no", body(len, BodySpec::default()), MIB, 64 * 1024).await;
    assert!(matches!(too_large, Err(BlobError::TooLarge { .. })), "{too_large:?}");
    f.assert_no_leftovers().await;
}

async fn too_large_fails_early_and_leaves_nothing(f: Fixture) {
    // Past the part size, so S3 has a multipart upload to abort.
    let limit = 10 * MIB;
    let spec = BodySpec::default();
    let result = f.store.put_stream("big/one", body(12 * MIB, spec.clone()), limit).await;
    assert!(matches!(result, Err(BlobError::TooLarge { limit: l }) if l == limit), "{result:?}");
    // Stopped at the chunk that crossed the limit, not at the end of the body.
    assert_eq!(spec.produced.load(Ordering::SeqCst), limit + CHUNK as u64);
    assert_eq!(f.store.size("big/one").await.unwrap(), None);
    f.assert_no_leftovers().await;

    // Exactly at the limit is fine; one byte over is not.
    let ok = f.store.put_stream("big/exact", small_body(b"0123456789"), 10).await.unwrap();
    assert_eq!(ok.size, 10);
    let over = f.store.put_stream("big/over", small_body(b"0123456789"), 9).await;
    assert!(matches!(over, Err(BlobError::TooLarge { limit: 9 })), "{over:?}");
    assert_eq!(f.store.size("big/over").await.unwrap(), None);
    f.assert_no_leftovers().await;
}

async fn failing_body_leaves_nothing(f: Fixture) {
    for (len, fail_at) in [(12 * MIB, 9 * MIB), (MIB, 100 * 1024)] {
        let spec = BodySpec { fail_at: Some(fail_at), ..BodySpec::default() };
        let result = f.store.put_stream("broken/upload", body(len, spec), u64::MAX).await;
        match result {
            Err(BlobError::Body(message)) => assert!(message.contains("client went away"), "{message}"),
            other => panic!("expected a body error, got {other:?}"),
        }
        assert_eq!(f.store.size("broken/upload").await.unwrap(), None);
        f.assert_no_leftovers().await;
    }
}

/// A put whose future is dropped (the HTTP handler is cancelled when its client disconnects).
async fn cancelled_put_leaves_nothing(f: Fixture) {
    let spec = BodySpec { stall_at: Some(9 * MIB), ..BodySpec::default() };
    let produced = spec.produced.clone();
    let put = f.store.put_stream("cancelled/upload", body(12 * MIB, spec), u64::MAX);
    let stalled = async {
        while produced.load(Ordering::SeqCst) < 9 * MIB {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the put take in what it has (on S3: open the multipart upload, send part 1).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let in_progress = f.in_progress().await;
        assert_eq!(in_progress.len(), 1, "the put is under way: {in_progress:?}");
    };
    tokio::select! {
        result = put => panic!("the put ended: {result:?}"),
        () = stalled => {}
    }
    // The put future is dropped here. S3 aborts the upload in the background: give it time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leftovers = f.in_progress().await;
        if leftovers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "a cancelled put left {leftovers:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.store.size("cancelled/upload").await.unwrap(), None);
}
