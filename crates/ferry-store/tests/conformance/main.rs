//! The store conformance suite: every test runs on SQLite and on PostgreSQL (when
//! `FERRY_TEST_POSTGRES_URL` is set), against a fresh database each.

mod bulk;
mod queue;
mod replication;
mod rows;
mod small_messages;
mod sqlite_wal;
mod support;
mod versions;

/// Declares each test once per backend.
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = ferry_store::testing::TestDatabase::sqlite();
                    crate::$module::$name(crate::support::open(&db.url).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = ferry_store::testing::TestDatabase::postgres(stringify!($name)).await else { return };
                    crate::$module::$name(crate::support::open(&db.url).await).await;
                }
            )*
        }
    };
}

conformance!(
    rows::crud_round_trip,
    rows::every_type_round_trips,
    rows::keys_are_unique_per_company,
    rows::lookups_are_checked_on_write,
    rows::filter_order_and_keyset_paging,
    rows::schema_evolves_by_adding_columns,
    rows::apps_and_signing_keys,
    versions::versions_increase_across_entities,
    versions::concurrent_writers_get_distinct_ordered_versions,
    versions::changes_since_returns_exactly_later_changes_and_deletes,
    versions::changes_since_pages_by_limit,
    versions::a_reader_following_sixteen_concurrent_writers_misses_nothing,
    versions::concurrent_writes_fail_and_cancel_alone,
    replication::profiles_status_and_failures,
    replication::leases_go_to_one_holder_until_they_expire,
    replication::writes_wake_subscribers,
    queue::lanes_run_one_message_at_a_time_in_enqueue_order,
    queue::leases_expire_and_fence_the_old_holder,
    queue::retries_keep_their_place_and_poison_ends,
    queue::duplicate_enqueues_answer_the_original,
    queue::concurrent_duplicate_enqueues_create_one_message,
    queue::enqueues_racing_a_claimer_keep_lane_order,
    queue::import_batches_upsert_by_key_and_count,
    queue::errors_are_stored_fenced_and_paged,
    bulk::large_import_batches_round_trip_every_type,
    bulk::a_key_inserted_after_the_read_is_merged_not_refused,
    bulk::a_batch_expected_new_is_merged_when_a_key_exists,
    small_messages::a_last_batch_goes_in_with_the_end_or_not_at_all,
    small_messages::claims_take_many_small_messages_and_few_large_ones,
);
