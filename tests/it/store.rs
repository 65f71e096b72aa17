//! The storage suite, run on SQLite always and on PostgreSQL when
//! `SCOREKEEPER_TEST_POSTGRES_URL` is set (CI always sets it).

use scorekeeper::secret::Secret;
use scorekeeper::store::{InputRow, SqlAggregate, Store};

use crate::helpers::TestDb;

async fn open(db: &TestDb) -> Store {
    scorekeeper::tls::install_crypto_provider();
    Store::connect(&Secret::new(db.url.clone()))
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", db.backend))
}

#[tokio::test]
async fn page_and_cursor_commit_together_or_not_at_all() {
    for db in TestDb::all().await {
        let store = open(&db).await;
        assert!(store.is_ready().await, "{}: migrated", db.backend);
        let stream = store
            .stream_state("stripe", "charges")
            .await
            .expect("state");
        assert_eq!(stream.cursor, None);

        // A transaction dropped before commit leaves neither records nor cursor.
        let mut tx = store.begin().await.expect("begin");
        tx.upsert_records(stream.id, &[("ch_1", r#"{"id":"ch_1"}"#)])
            .await
            .expect("upsert");
        tx.save_cursor(stream.id, Some("after-1"))
            .await
            .expect("cursor");
        drop(tx);
        assert_eq!(
            store.record_count(stream.id).await.expect("count"),
            0,
            "{}",
            db.backend
        );
        assert_eq!(
            store
                .stream_state("stripe", "charges")
                .await
                .expect("state")
                .cursor,
            None,
            "{}",
            db.backend
        );

        let mut tx = store.begin().await.expect("begin");
        let ids = tx
            .upsert_records(
                stream.id,
                &[
                    ("ch_1", r#"{"id":"ch_1","v":1}"#),
                    ("ch_2", r#"{"id":"ch_2"}"#),
                ],
            )
            .await
            .expect("upsert");
        tx.save_cursor(stream.id, Some("after-2"))
            .await
            .expect("cursor");
        tx.commit().await.expect("commit");
        assert_eq!(ids.len(), 2);
        assert_eq!(store.record_count(stream.id).await.expect("count"), 2);
        assert_eq!(
            store
                .stream_state("stripe", "charges")
                .await
                .expect("state")
                .cursor
                .as_deref(),
            Some("after-2")
        );

        // Upsert by key replaces, keeping the id; JSON text is kept byte for byte.
        let mut tx = store.begin().await.expect("begin");
        let again = tx
            .upsert_records(stream.id, &[("ch_1", r#"{"id":"ch_1",  "v":2}"#)])
            .await
            .expect("upsert");
        tx.commit().await.expect("commit");
        let first_id = ids.iter().find(|(_, key)| key == "ch_1").expect("ch_1").0;
        assert_eq!(again, [(first_id, "ch_1".to_string())], "{}", db.backend);
        let mut tx = store.begin().await.expect("begin");
        let existing = tx
            .existing_records(stream.id, &["ch_1", "ch_404"])
            .await
            .expect("existing");
        drop(tx);
        assert_eq!(existing.len(), 1);
        assert_eq!(existing[0].data, r#"{"id":"ch_1",  "v":2}"#);
        store.close().await;
    }
}

#[tokio::test]
async fn inputs_aggregate_the_same_on_both_backends() {
    for db in TestDb::all().await {
        let store = open(&db).await;
        let (measure_id, changed) = store
            .register_measure("revenue", "v1")
            .await
            .expect("register");
        assert!(changed, "a new measure counts as changed");
        assert_eq!(
            store
                .register_measure("revenue", "v1")
                .await
                .expect("again"),
            (measure_id, false)
        );
        assert!(
            store
                .register_measure("revenue", "v2")
                .await
                .expect("changed")
                .1
        );

        let row = |record_id, num| InputRow {
            measure_id,
            period_start: 1000,
            record_id,
            event_time: record_id * 10,
            num: Some(num),
            txt: None,
        };
        let mut tx = store.begin().await.expect("begin");
        tx.upsert_inputs(&[row(1, 2.5), row(2, 4.0), row(3, 1.5)])
            .await
            .expect("inputs");
        tx.mark_dirty(&[(measure_id, 1000), (measure_id, 1000), (measure_id, 2000)])
            .await
            .expect("dirty");
        tx.commit().await.expect("commit");

        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.dirty_periods().await.expect("dirty"),
            [(measure_id, 1000), (measure_id, 2000)]
        );
        for (aggregate, expected) in [
            (SqlAggregate::Count, Some(3.0)),
            (SqlAggregate::Sum, Some(8.0)),
            (SqlAggregate::Avg, Some(8.0 / 3.0)),
            (SqlAggregate::Min, Some(1.5)),
            (SqlAggregate::Max, Some(4.0)),
        ] {
            let got = tx
                .aggregate_inputs(measure_id, 1000, aggregate)
                .await
                .expect("aggregate");
            assert!(
                matches!((got, expected), (Some(g), Some(e)) if (g - e).abs() < 1e-9),
                "{}: {aggregate:?} {got:?}",
                db.backend
            );
        }
        assert_eq!(
            tx.aggregate_inputs(measure_id, 2000, SqlAggregate::Sum)
                .await
                .expect("empty"),
            None
        );
        assert_eq!(
            tx.aggregate_inputs(measure_id, 2000, SqlAggregate::Count)
                .await
                .expect("empty"),
            Some(0.0)
        );
        tx.delete_inputs(&[(measure_id, 1000, 2)])
            .await
            .expect("delete");
        assert_eq!(
            tx.period_inputs(measure_id, 1000)
                .await
                .expect("inputs")
                .len(),
            2
        );
        tx.write_values(
            &[(measure_id, 1000, Some(4.0)), (measure_id, 2000, None)],
            5,
        )
        .await
        .expect("values");
        tx.clear_dirty(&[(measure_id, 1000), (measure_id, 2000)])
            .await
            .expect("clear");
        tx.commit().await.expect("commit");

        assert_eq!(
            store.values(measure_id, 0, 3000).await.expect("values"),
            [(1000, Some(4.0)), (2000, None)],
            "{}",
            db.backend
        );
        assert_eq!(
            store.first_value_period(measure_id).await.expect("first"),
            Some(1000)
        );
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.dirty_periods().await.expect("dirty").is_empty());
        assert_eq!(
            tx.value_at(measure_id, 2000).await.expect("value"),
            Some(None)
        );
        assert_eq!(tx.value_at(measure_id, 3000).await.expect("value"), None);
        drop(tx);
        store.close().await;
    }
}

#[tokio::test]
async fn sync_runs_are_recorded_and_interrupted_ones_closed() {
    for db in TestDb::all().await {
        let store = open(&db).await;
        let finished = store
            .start_run("stripe", "manual", 100)
            .await
            .expect("start");
        store
            .finish_run(finished, 110, "success", 5, 1, None)
            .await
            .expect("finish");
        let interrupted = store
            .start_run("stripe", "schedule", 200)
            .await
            .expect("start");
        assert_eq!(
            store.close_abandoned_runs(300).await.expect("close"),
            1,
            "{}",
            db.backend
        );
        let runs = store.latest_runs().await.expect("runs");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, interrupted);
        assert_eq!(runs[0].result.as_deref(), Some("failed"));
        assert!(
            runs[0]
                .error
                .as_deref()
                .is_some_and(|error| error.starts_with("interrupted"))
        );
        store.close().await;
    }
}
