//! Properties and ETags, ranged and conditional reads, and blobs assembled from staged blocks
//! (commit, bad block lists, the stale-block sweep), every test on both backends with the
//! harness of `blobs.rs`.

use super::*;
use chrono::Utc;
use ferry_blob::{BlobRead, ByteRange};

on_both_backends!(
    properties_and_etags_follow_the_blob,
    ranged_reads_return_the_span,
    reads_honour_if_match,
    blocks_commit_in_list_order_and_are_removed,
    bad_block_lists_change_nothing,
    stale_blocks_are_swept,
);

/// Reads `range` of `key` whole; answers the read's properties and span with the bytes.
async fn read_range(
    store: &BlobStore,
    key: &str,
    range: Option<ByteRange>,
    if_match: Option<&str>,
) -> Result<(BlobRead, Vec<u8>), BlobError> {
    let mut read = store.read(key, range, if_match).await?;
    let mut data = Vec::new();
    while let Some(chunk) = read.stream.next().await {
        data.extend_from_slice(&chunk?);
    }
    Ok((read, data))
}

fn generated(range: std::ops::Range<u64>) -> Vec<u8> {
    range.map(byte_at).collect()
}

async fn properties_and_etags_follow_the_blob(f: Fixture) {
    assert_eq!(f.store.properties("props/missing").await.unwrap(), None);
    f.store.put_stream("props/a", small_body(b"package bytes"), 1024).await.unwrap();
    let first = f.store.properties("props/a").await.unwrap().expect("a blob");
    assert_eq!(first.size, 13);
    assert!(first.etag.starts_with('"') && first.etag.ends_with('"') && first.etag.len() > 2, "{}", first.etag);
    let age = Utc::now() - first.last_modified;
    assert!(age.num_minutes().abs() < 10, "last modified {}", first.last_modified);
    assert_eq!(f.store.properties("props/a").await.unwrap().as_ref(), Some(&first), "stable while unchanged");
    let (read, _) = read_range(&f.store, "props/a", None, None).await.unwrap();
    assert_eq!(read.properties, first, "a read reports the same properties");

    f.store.put_stream("props/a", small_body(b"other bytes"), 1024).await.unwrap();
    let second = f.store.properties("props/a").await.unwrap().expect("a blob");
    assert_eq!(second.size, 11);
    assert_ne!(second.etag, first.etag, "new bytes, new ETag");
    // A "directory" of other blobs has no properties.
    assert_eq!(f.store.properties("props").await.unwrap(), None);
}

async fn ranged_reads_return_the_span(f: Fixture) {
    let len = 3 * MIB + 5;
    f.store.put_stream("ranges/a", body(len, BodySpec::default()), u64::MAX).await.unwrap();
    let bounded = |first, last| ByteRange::Bounded { first, last };
    for (range, span) in [
        (bounded(0, 99), 0..100),
        (bounded(MIB, 2 * MIB - 1), MIB..2 * MIB),
        (ByteRange::From(3 * MIB), 3 * MIB..len),
        (ByteRange::Suffix(10), len - 10..len),
        (bounded(len - 2, len + 100), len - 2..len),
    ] {
        let (read, data) = read_range(&f.store, "ranges/a", Some(range), None).await.unwrap();
        assert_eq!(read.span, span, "{range:?}");
        assert_eq!(read.properties.size, len);
        assert!(data == generated(span.clone()), "{range:?}: the bytes of {span:?}");
    }
    let (read, data) = read_range(&f.store, "ranges/a", None, None).await.unwrap();
    assert_eq!((read.span, data.len() as u64), (0..len, len));

    let past_end = read_range(&f.store, "ranges/a", Some(bounded(len, len + 5)), None).await.map(|_| ());
    assert!(matches!(past_end, Err(BlobError::InvalidRange { size }) if size == len), "{past_end:?}");

    // An empty blob has no range to read, but reads whole.
    f.store.put_stream("ranges/empty", small_body(b""), 10).await.unwrap();
    let empty = read_range(&f.store, "ranges/empty", Some(bounded(0, 99)), None).await.map(|_| ());
    assert!(matches!(empty, Err(BlobError::InvalidRange { size: 0 })), "{empty:?}");
    let (read, data) = read_range(&f.store, "ranges/empty", None, None).await.unwrap();
    assert_eq!((read.span, data.len()), (0..0, 0));

    let missing = read_range(&f.store, "ranges/missing", Some(bounded(0, 1)), None).await.map(|_| ());
    assert!(matches!(missing, Err(BlobError::NotFound(_))), "{missing:?}");
    let invalid = f.store.read("ranges/../a", None, None).await.map(|_| ());
    assert!(matches!(invalid, Err(BlobError::InvalidKey(_))), "{invalid:?}");
}

async fn reads_honour_if_match(f: Fixture) {
    f.store.put_stream("conditional/a", body(MIB, BodySpec::default()), u64::MAX).await.unwrap();
    let etag = f.store.properties("conditional/a").await.unwrap().unwrap().etag;
    let range = Some(ByteRange::Bounded { first: 10, last: 19 });
    for condition in [etag.as_str(), "*", etag.trim_matches('"'), &format!("\"other\", {etag}")] {
        let (_, data) = read_range(&f.store, "conditional/a", range, Some(condition)).await.unwrap();
        assert!(data == generated(10..20), "{condition}");
    }
    let mismatch = read_range(&f.store, "conditional/a", range, Some("\"0xNOPE\"")).await.map(|_| ());
    assert!(matches!(mismatch, Err(BlobError::ConditionNotMet)), "{mismatch:?}");

    // Once the blob changes, its old ETag no longer matches.
    f.store.put_stream("conditional/a", small_body(b"replaced"), 100).await.unwrap();
    let stale = read_range(&f.store, "conditional/a", None, Some(&etag)).await.map(|_| ());
    assert!(matches!(stale, Err(BlobError::ConditionNotMet)), "{stale:?}");
}

async fn blocks_commit_in_list_order_and_are_removed(f: Fixture) {
    let key = "dmf/blocks/package.zip";
    // Past S3's part size, so the commit streams a multipart upload.
    let big = 9 * MIB;
    f.store.put_block(key, b"b0", small_body(b"first-"), 1024).await.unwrap();
    let info = f.store.put_block(key, b"b1", body(big, BodySpec::default()), u64::MAX).await.unwrap();
    assert_eq!(info.size, big);
    f.store.put_block(key, b"b2", small_body(b"-last"), 1024).await.unwrap();
    f.store.put_block(key, b"never-committed", small_body(b"dropped"), 1024).await.unwrap();
    // Staging an id again replaces its block.
    f.store.put_block(key, b"b0", small_body(b"FIRST-"), 1024).await.unwrap();
    assert_eq!(f.store.properties(key).await.unwrap(), None, "staged blocks are not the blob");

    let ids: Vec<Vec<u8>> = [&b"b0"[..], b"b1", b"b2", b"b0"].iter().map(|id| id.to_vec()).collect();
    let info = f.store.commit_blocks(key, &ids, u64::MAX).await.unwrap();
    assert_eq!(info.size, 6 + big + 5 + 6);
    let data = read_all(&f.store, key).await;
    assert_eq!(data.len() as u64, info.size);
    assert_eq!(&data[..6], b"FIRST-");
    assert!(data[6..6 + big as usize] == generated(0..big)[..], "the big block in place");
    assert_eq!(&data[6 + big as usize..], b"-lastFIRST-");
    f.assert_no_leftovers().await;

    // Every block of the blob went with the commit, the uncommitted one too.
    assert_eq!(f.store.remove_stale_blocks(Utc::now() + chrono::Duration::days(1)).await.unwrap(), 0);
    let again = f.store.commit_blocks(key, &[b"b0".to_vec()], u64::MAX).await.map(|_| ());
    assert!(matches!(again, Err(BlobError::InvalidBlockList(_))), "{again:?}");
    assert_eq!(f.store.size(key).await.unwrap(), Some(info.size), "a failed commit keeps the blob");

    // An empty list makes an empty blob.
    let info = f.store.commit_blocks(key, &[], u64::MAX).await.unwrap();
    assert_eq!((info.size, f.store.size(key).await.unwrap()), (0, Some(0)));
}

async fn bad_block_lists_change_nothing(f: Fixture) {
    let key = "dmf/bad/list";
    f.store.put_block(key, b"a", small_body(b"0123456789"), 100).await.unwrap();
    f.store.put_block(key, b"b", small_body(b"abcdefghij"), 100).await.unwrap();

    let unknown = f.store.commit_blocks(key, &[b"a".to_vec(), b"zz".to_vec()], 100).await.map(|_| ());
    match unknown {
        Err(BlobError::InvalidBlockList(message)) => assert!(message.contains("7a7a"), "names the block: {message}"),
        other => panic!("expected an invalid block list, got {other:?}"),
    }
    let too_large = f.store.commit_blocks(key, &[b"a".to_vec(), b"b".to_vec()], 15).await.map(|_| ());
    assert!(matches!(too_large, Err(BlobError::TooLarge { limit: 15 })), "{too_large:?}");
    assert_eq!(f.store.properties(key).await.unwrap(), None, "nothing was written");

    for id in [&[][..], &[7u8; 65][..]] {
        let bad_id = f.store.put_block(key, id, small_body(b"x"), 10).await.map(|_| ());
        assert!(matches!(bad_id, Err(BlobError::InvalidBlockList(_))), "{} bytes: {bad_id:?}", id.len());
    }
    for bad_key in ["staged-blocks/x/y", "../x", "a//b"] {
        let result = f.store.put_block(bad_key, b"a", small_body(b"x"), 10).await.map(|_| ());
        assert!(matches!(result, Err(BlobError::InvalidKey(_))), "{bad_key}: {result:?}");
        let result = f.store.commit_blocks(bad_key, &[], 10).await.map(|_| ());
        assert!(matches!(result, Err(BlobError::InvalidKey(_))), "{bad_key}: {result:?}");
    }
    let too_big = f.store.put_block(key, b"c", small_body(b"0123456789"), 9).await.map(|_| ());
    assert!(matches!(too_big, Err(BlobError::TooLarge { limit: 9 })), "{too_big:?}");
    f.assert_no_leftovers().await;

    // The staged blocks are still there after the failed commits.
    let info = f.store.commit_blocks(key, &[b"b".to_vec(), b"a".to_vec()], 100).await.unwrap();
    assert_eq!(info.size, 20);
    assert_eq!(read_all(&f.store, key).await, b"abcdefghij0123456789");
}

async fn stale_blocks_are_swept(f: Fixture) {
    for (key, id) in [("dmf/stale/one", &b"a"[..]), ("dmf/stale/one", b"b"), ("dmf/stale/two", b"a")] {
        f.store.put_block(key, id, small_body(b"block"), 100).await.unwrap();
    }
    f.store.put_stream("dmf/stale/blob", small_body(b"a blob"), 100).await.unwrap();
    let hour = chrono::Duration::hours(1);
    assert_eq!(f.store.remove_stale_blocks(Utc::now() - hour).await.unwrap(), 0, "recent blocks stay");
    assert_eq!(f.store.remove_stale_blocks(Utc::now() + hour).await.unwrap(), 3);
    let gone = f.store.commit_blocks("dmf/stale/one", &[b"a".to_vec()], 100).await.map(|_| ());
    assert!(matches!(gone, Err(BlobError::InvalidBlockList(_))), "{gone:?}");
    assert_eq!(f.store.size("dmf/stale/blob").await.unwrap(), Some(6), "blobs are not blocks");
    if f.is_local() {
        assert_eq!(dir_entries(&f.local_root().join("staged-blocks")), Vec::<String>::new(), "empty folders go too");
    }
}
