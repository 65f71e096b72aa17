//! The only page loop: request → records → store page and cursor in one transaction.
//!
//! For each stream of a source the engine asks the preset for the first request (from
//! the saved cursor), sends it through the shared client, and stores the records with
//! the cursor that follows them. Pages are gathered into batches of about
//! [`BATCH_RECORDS`] records, one transaction each, and the next batch is fetched while
//! the previous one is written, so neither the network nor the disk waits for the other.
//! A batch's cursor is the cursor of its last page: the saved cursor never moves ahead
//! of committed records. Memory stays flat: at most two batches are held at once.
//!
//! Cancellation: the engine stops between pages. A request in flight gets a short grace
//! to finish and its page is committed; a batch being written is always committed.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::http::{Auth, HttpClient};
use super::presets::{self, Preset, SyncWindow};
use super::{FetchedRecord, PageRequest, SourceError};
use crate::config::SourceConfig;
use crate::measures;
use crate::recompute::{self, input_row, Catalog};
use crate::records::Record;
use crate::store::Store;

/// Records per write transaction (several pages of 100). Larger batches write faster
/// (fewer commits, each a WAL sync) but hold more memory and redo more after a crash.
pub const BATCH_RECORDS: usize = 1_000;

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The source's cron schedule.
    Schedule,
    /// `scorekeeper sync`.
    Manual,
    /// `POST /api/v1/sources/{name}/sync`.
    Api,
}

impl Trigger {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Api => "api",
        }
    }
}

/// The result of syncing one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamReport {
    /// Stream name.
    pub stream: String,
    /// Pages fetched.
    pub pages: u64,
    /// Records received.
    pub records: u64,
    /// Records new or changed (unchanged ones are not rewritten).
    pub changed: u64,
    /// Records a measure could not evaluate (left out of that measure).
    pub record_problems: u64,
    /// Error, if the stream failed.
    pub error: Option<String>,
}

/// The result of syncing one source.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// Source name.
    pub source: String,
    /// Sync run id.
    pub run_id: i64,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// True when stopped by shutdown.
    pub cancelled: bool,
}

impl SourceReport {
    /// True when every stream succeeded.
    pub fn is_success(&self) -> bool {
        !self.cancelled && self.streams.iter().all(|stream| stream.error.is_none())
    }
}

/// Fetched pages waiting to be written.
struct Batch {
    records: Vec<FetchedRecord>,
    cursor: String,
    pages: u64,
}

/// Syncs sources into the store.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    http: HttpClient,
    catalog: std::sync::Arc<Catalog>,
}

impl Engine {
    /// An engine over the store, the shared client and the bound measures.
    pub fn new(store: Store, http: HttpClient, catalog: std::sync::Arc<Catalog>) -> Self {
        Self { store, http, catalog }
    }

    /// The bound measures.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Syncs every stream of `source`, then recomputes the periods it touched.
    /// A failing stream does not stop the others; the report says which failed.
    pub async fn sync_source(&self, source: &SourceConfig, trigger: Trigger, cancel: &CancellationToken) -> Result<SourceReport, SourceError> {
        let now = chrono::Utc::now().timestamp();
        let run_id = self.store.start_run(&source.name, trigger.as_str(), now).await?;
        let span = tracing::info_span!("sync", source = %source.name, sync_id = run_id);
        let report = self.sync_streams(source, run_id, cancel).instrument(span.clone()).await;
        let written = recompute::recompute_dirty(&self.store, &self.catalog, chrono::Utc::now().timestamp())
            .instrument(span.clone())
            .await;
        let (result, error) = match (&written, report.cancelled, report.is_success()) {
            (Err(error), _, _) => ("failed", Some(format!("recompute failed: {error}"))),
            (Ok(_), true, _) => ("cancelled", None),
            (Ok(_), false, true) => ("success", None),
            (Ok(_), false, false) => {
                let failed: Vec<String> = report
                    .streams
                    .iter()
                    .filter_map(|stream| stream.error.as_ref().map(|error| format!("{}: {error}", stream.stream)))
                    .collect();
                ("failed", Some(failed.join("; ")))
            }
        };
        let records: u64 = report.streams.iter().map(|stream| stream.records).sum();
        let pages: u64 = report.streams.iter().map(|stream| stream.pages).sum();
        self.store
            .finish_run(run_id, chrono::Utc::now().timestamp(), result, records as i64, pages as i64, error.as_deref())
            .await?;
        written?;
        Ok(report)
    }

    async fn sync_streams(&self, source: &SourceConfig, run_id: i64, cancel: &CancellationToken) -> SourceReport {
        let preset = presets::preset(source.kind);
        let mut report = SourceReport { source: source.name.clone(), run_id, streams: Vec::new(), cancelled: false };
        for stream in &source.streams {
            if cancel.is_cancelled() {
                report.cancelled = true;
                break;
            }
            let started = Instant::now();
            let mut stream_report = StreamReport { stream: stream.clone(), ..StreamReport::default() };
            let span = tracing::info_span!("stream", stream = %stream);
            let error = async {
                let result = self.sync_stream(source, preset, stream, &mut stream_report, cancel).await;
                let error = match result {
                    Ok(()) => None,
                    Err(SourceError::Cancelled) => {
                        report.cancelled = true;
                        None
                    }
                    Err(error) => Some(error.to_string()),
                };
                if let Ok(state) = self.store.stream_state(&source.name, stream).await
                    && let Err(store_error) = self.store.finish_stream_sync(state.id, chrono::Utc::now().timestamp(), error.as_deref()).await
                {
                    tracing::error!(error = %store_error, "Cannot record the end of the stream's sync");
                }
                let duration_ms = started.elapsed().as_millis() as u64;
                match &error {
                    None => tracing::info!(
                        records = stream_report.records,
                        changed = stream_report.changed,
                        pages = stream_report.pages,
                        record_problems = stream_report.record_problems,
                        duration_ms,
                        cancelled = report.cancelled,
                        "Stream synced"
                    ),
                    Some(error) => tracing::error!(records = stream_report.records, pages = stream_report.pages, duration_ms, error = %error, "Stream sync failed"),
                }
                error
            }
            .instrument(span)
            .await;
            stream_report.error = error;
            report.streams.push(stream_report);
            if report.cancelled {
                break;
            }
        }
        report
    }

    async fn sync_stream(
        &self,
        source: &SourceConfig,
        preset: &dyn Preset,
        stream: &str,
        report: &mut StreamReport,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let auth = preset.auth(source)?;
        let state = self.store.stream_state(&source.name, stream).await?;
        let window = SyncWindow::of(source, self.catalog.timezone());
        let mut next = Some(preset.first_request(source, stream, state.cursor.as_deref(), &window)?);
        let mut pending: Option<Batch> = None;
        loop {
            // Write the previous batch while fetching the next one.
            let write = async {
                match pending.take() {
                    Some(batch) => self.store_batch(source, stream, state.id, batch, report).await,
                    None => Ok(()),
                }
            };
            let fetch = self.fetch_batch(source, preset, &auth, stream, &mut next, cancel);
            let (written, (fetched, fetch_error)) = tokio::join!(write, fetch);
            written?;
            if let Some(error) = fetch_error {
                // Commit the good pages fetched before the failure, then report it.
                if let Some(batch) = fetched {
                    self.store_batch(source, stream, state.id, batch, report).await?;
                }
                return Err(error);
            }
            match fetched {
                Some(batch) => pending = Some(batch),
                None => return Ok(()),
            }
        }
    }

    /// Fetches pages until about [`BATCH_RECORDS`] records, the last page, or an error.
    async fn fetch_batch(
        &self,
        source: &SourceConfig,
        preset: &dyn Preset,
        auth: &Auth,
        stream: &str,
        next: &mut Option<PageRequest>,
        cancel: &CancellationToken,
    ) -> (Option<Batch>, Option<SourceError>) {
        let mut batch: Option<Batch> = None;
        while let Some(request) = next.take() {
            if cancel.is_cancelled() {
                return (batch, Some(SourceError::Cancelled));
            }
            let parse = |body: &[u8]| preset.parse_page(source, stream, &request, body);
            let page = match self.http.get(&request.url, auth, cancel, parse).await {
                Ok(page) => page,
                Err(error) => return (batch, Some(error)),
            };
            if page.next.as_ref().is_some_and(|following| following.url == request.url) {
                return (batch, Some(SourceError::RepeatedCursor { url: super::redact_url(&request.url) }));
            }
            let pending = batch.get_or_insert_with(|| Batch { records: Vec::new(), cursor: String::new(), pages: 0 });
            pending.records.extend(page.records);
            pending.cursor = page.cursor;
            pending.pages += 1;
            *next = page.next;
            if pending.records.len() >= BATCH_RECORDS {
                break;
            }
        }
        (batch, None)
    }

    /// Stores one batch: records that are new or changed, their measure inputs (the old
    /// version's removed), the periods they touched, and the cursor, in one transaction.
    async fn store_batch(&self, source: &SourceConfig, stream: &str, stream_id: i64, batch: Batch, report: &mut StreamReport) -> Result<(), SourceError> {
        let tz = self.catalog.timezone();
        let bound = self.catalog.reading(&source.name, stream);
        report.pages += batch.pages;
        report.records += batch.records.len() as u64;

        // The same object twice in one batch (an API listing it on two pages): keep the last.
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(batch.records.len());
        for (index, fetched) in batch.records.iter().enumerate() {
            position.insert(fetched.key.as_str(), index);
        }
        let keys: Vec<&str> = position.keys().copied().collect();

        let mut tx = self.store.begin().await?;
        let existing: HashMap<String, crate::store::StoredRecord> =
            tx.existing_records(stream_id, &keys).await?.into_iter().map(|stored| (stored.key.clone(), stored)).collect();

        let mut writes: Vec<(&str, &str)> = Vec::new();
        let mut contributions: Vec<(usize, i64, measures::Contribution)> = Vec::new();
        let mut removed = Vec::new();
        let mut dirty = BTreeSet::new();
        for (index, fetched) in batch.records.iter().enumerate() {
            if position.get(fetched.key.as_str()) != Some(&index) {
                continue;
            }
            if let Some(old) = existing.get(&fetched.key) {
                if old.data == fetched.raw.get() {
                    continue;
                }
                // The record changed upstream: its old contribution leaves its old period.
                if let Ok(old_record) = serde_json::from_str::<Record>(&old.data) {
                    for measure in &bound {
                        let records = measure.records().expect("reading() returns record measures");
                        if let Ok(Some(old_contribution)) = measures::contribution(records, measure.config.period, tz, &old_record) {
                            removed.push((measure.id, old_contribution.period_start, old.id));
                            dirty.insert((measure.id, old_contribution.period_start));
                        }
                    }
                }
            }
            for measure in &bound {
                let records = measure.records().expect("reading() returns record measures");
                match measures::contribution(records, measure.config.period, tz, &fetched.record) {
                    Ok(Some(contribution)) => {
                        dirty.insert((measure.id, contribution.period_start));
                        contributions.push((writes.len(), measure.id, contribution));
                    }
                    Ok(None) => {}
                    Err(problem) => {
                        if report.record_problems == 0 {
                            tracing::warn!(measure = %measure.config.id, record = %fetched.key, error = %problem, "Record left out of a measure");
                        }
                        report.record_problems += 1;
                    }
                }
            }
            writes.push((fetched.key.as_str(), fetched.raw.get()));
        }

        let ids: HashMap<String, i64> = tx.upsert_records(stream_id, &writes).await?.into_iter().map(|(id, key)| (key, id)).collect();
        let mut rows = Vec::with_capacity(contributions.len());
        for (write_index, measure_id, contribution) in &contributions {
            let key = writes[*write_index].0;
            let record_id = *ids.get(key).ok_or_else(|| crate::store::StoreError::Corrupt(format!("no id returned for record {key}")))?;
            rows.push(input_row(*measure_id, record_id, contribution));
        }
        tx.delete_inputs(&removed).await?;
        tx.upsert_inputs(&rows).await?;
        tx.mark_dirty(&dirty.into_iter().collect::<Vec<_>>()).await?;
        tx.save_cursor(stream_id, Some(&batch.cursor)).await?;
        tx.commit().await?;
        report.changed += writes.len() as u64;
        Ok(())
    }
}
