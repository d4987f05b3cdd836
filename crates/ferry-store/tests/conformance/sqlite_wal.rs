//! SQLite only: what is committed reaches the database file while ferry runs — the WAL is
//! checkpointed off the writer's path, not left to grow until the writer's own threshold
//! (64 MiB) or a restart — and a closed store is one file.

use crate::support::{ALL_TYPES, catalog_with, entity, open, row, s};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_database_file_without_a_restart() {
    let db = ferry_store::testing::TestDatabase::sqlite();
    let file = std::path::PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let opened = open(&db.url).await;
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let before = std::fs::metadata(&file).unwrap().len();
    // About 4 MB of rows in 400 commits, far below the writer's own threshold.
    let memo = "m".repeat(10_000);
    for i in 0..400 {
        let r = row(&all, Some("usmf"), &[("Code", s(&format!("C{i}"))), ("Memo", s(&memo))]);
        opened.store.insert(&all, vec![r]).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let size = std::fs::metadata(&file).unwrap().len();
        if size >= before + 3_000_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the database file grew from {before} to only {size} bytes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(opened.store.row_versions(&all).await.unwrap().len(), 400);
    // Closed, the store leaves one file: the last connection checkpointed and removed the WAL.
    opened.store.close().await;
    let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
    assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0), "{} is left after close", wal.display());
}
