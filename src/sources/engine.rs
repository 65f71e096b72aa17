//! The only page loop: request → records → store page and cursor in one transaction.
//!
//! For each stream of a source the engine asks the preset for the first request (from
//! the saved cursor), sends it through the shared client, and stores the records with
//! the cursor that follows them. Pages are gathered into batches of about
//! [`BATCH_RECORDS`] records, one transaction each.
//!
//! Two halves run side by side, so parsing and writing use both cores: a fetch task
//! (spawned per stream sync and always joined before the sync returns) fetches and parses
//! pages and computes each record's contributions to the measures, then hands the batch
//! over a channel of one; the sync itself writes batches in order. A batch's cursor is the
//! cursor of its last page: the saved cursor never moves ahead of committed records.
//! Memory stays flat: at most three batches (one being fetched, one waiting, one being
//! written) are held at once, each without its parsed JSON trees.
//!
//! Cancellation: the fetch task stops between pages. A request in flight gets a short
//! grace to finish and its page is committed; a batch being written is always committed.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::http::{Auth, HttpClient};
use super::presets::{self, Coverage, Preset, SyncWindow};
use super::{PageRequest, SourceError};
use crate::config::SourceConfig;
use crate::measures;
use crate::recompute::{self, Catalog, input_row};
use crate::records::Record;
use crate::store::{Store, StreamState};

/// Records per write transaction (several pages of 100). Larger batches write faster
/// (fewer commits, each a WAL sync) but hold more memory and redo more after a crash.
pub const BATCH_RECORDS: usize = 1_000;

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The source's cron schedule.
    Schedule,
    /// `scorekeeper sync`, or the demo's first sync.
    Manual,
    /// `scorekeeper backfill`.
    Backfill,
    /// The deletion reconciliation's schedule, or `scorekeeper sync --reconcile`.
    Reconcile,
}

impl Trigger {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Backfill => "backfill",
            Trigger::Reconcile => "reconcile",
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
    /// Records removed because they vanished upstream (reconciliation).
    pub removed: u64,
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

/// A fetched record ready to store: its parsed JSON tree is already dropped.
struct PreparedRecord {
    key: String,
    raw: Box<serde_json::value::RawValue>,
    /// Per measure reading the stream: its id and what this record contributes.
    contributions: Vec<(i64, measures::Contribution)>,
    /// The first problem a measure had with this record, and how many measures had one.
    problem: Option<(String, measures::RecordProblem)>,
    problems: u64,
}

/// How a sync runs besides its trigger.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Re-pull history from this instant (`scorekeeper backfill`) instead of continuing
    /// from each stream's cursor.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Called after each committed batch and at the end of each stream.
    pub progress: Option<std::sync::Arc<ProgressFn>>,
    /// Deletion reconciliation: re-read the source's `reconcile_window` (leaving the
    /// streams' cursors alone) and remove stored records it no longer lists.
    pub reconcile: bool,
}

/// A progress callback ([`SyncOptions::progress`]).
pub type ProgressFn = dyn Fn(&Progress<'_>) + Send + Sync;

/// Where a stream's sync stands.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// Source name.
    pub source: &'a str,
    /// Stream name.
    pub stream: &'a str,
    /// Pages committed.
    pub pages: u64,
    /// Records committed.
    pub records: u64,
    /// Since the stream's sync started.
    pub elapsed: std::time::Duration,
    /// `None` while running; `Some("done" | "failed" | "cancelled")` at the end.
    pub end: Option<&'static str>,
}

/// One stream's sync: what `sync_stream` works on.
#[derive(Clone, Copy)]
struct StreamSync<'a> {
    source: &'a SourceConfig,
    preset: &'static dyn Preset,
    stream: &'a str,
    state: &'a StreamState,
    options: &'a SyncOptions,
    started: Instant,
}

/// Fetched pages waiting to be written.
struct Batch {
    records: Vec<PreparedRecord>,
    cursor: String,
    pages: u64,
}

/// What the fetch task works on, owned so the task does not borrow the caller's frame.
struct FetchJob {
    source: SourceConfig,
    preset: &'static dyn Preset,
    stream: String,
}

/// What the fetch task hands to the writer.
enum Fetched {
    /// The next batch, in order.
    Batch(Batch),
    /// The fetch failed (or was cancelled) after the batches already sent.
    Failed(SourceError),
}

/// Syncs sources into the store.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    http: HttpClient,
    catalog: std::sync::Arc<Catalog>,
    /// Counts finished syncs (views built from the store stay valid while it is
    /// unchanged), and wakes whoever waits for the next one: the alert loop, the
    /// dashboard's events streams.
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Engine {
    /// An engine over the store, the shared client and the bound measures.
    pub fn new(store: Store, http: HttpClient, catalog: std::sync::Arc<Catalog>) -> Self {
        Self {
            store,
            http,
            catalog,
            generation: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// How many syncs have finished since start (a view cached under one number is
    /// stale once it changes).
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Sees each new [`Engine::generation`] after a sync finishes (the latest one only,
    /// when several finish between two looks).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The shared HTTP client (its answer counts feed `/metrics`).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Syncs every stream of `source`, then recomputes the periods it touched.
    /// A failing stream does not stop the others; the report says which failed.
    pub async fn sync_source(
        &self,
        source: &SourceConfig,
        trigger: Trigger,
        cancel: &CancellationToken,
    ) -> Result<SourceReport, SourceError> {
        self.sync_source_with(source, trigger, cancel, &SyncOptions::default())
            .await
    }

    /// [`Engine::sync_source`] with a backfill start or a progress callback.
    pub async fn sync_source_with(
        &self,
        source: &SourceConfig,
        trigger: Trigger,
        cancel: &CancellationToken,
        options: &SyncOptions,
    ) -> Result<SourceReport, SourceError> {
        let now = chrono::Utc::now().timestamp();
        let run_id = self
            .store
            .start_run(&source.name, trigger.as_str(), now)
            .await?;
        let span = tracing::info_span!("sync", source = %source.name, sync_id = run_id);
        let report = self
            .sync_streams(source, run_id, cancel, options)
            .instrument(span.clone())
            .await;
        let written =
            recompute::recompute_dirty(&self.store, &self.catalog, chrono::Utc::now().timestamp())
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
                    .filter_map(|stream| {
                        stream
                            .error
                            .as_ref()
                            .map(|error| format!("{}: {error}", stream.stream))
                    })
                    .collect();
                ("failed", Some(failed.join("; ")))
            }
        };
        let records: u64 = report.streams.iter().map(|stream| stream.records).sum();
        let pages: u64 = report.streams.iter().map(|stream| stream.pages).sum();
        self.store
            .finish_run(
                run_id,
                chrono::Utc::now().timestamp(),
                result,
                records as i64,
                pages as i64,
                error.as_deref(),
            )
            .await?;
        self.generation.send_modify(|generation| *generation += 1);
        written?;
        Ok(report)
    }

    async fn sync_streams(
        &self,
        source: &SourceConfig,
        run_id: i64,
        cancel: &CancellationToken,
        options: &SyncOptions,
    ) -> SourceReport {
        let preset = presets::preset(source.kind);
        let mut report = SourceReport {
            source: source.name.clone(),
            run_id,
            streams: Vec::new(),
            cancelled: false,
        };
        for stream in &source.streams {
            if cancel.is_cancelled() {
                report.cancelled = true;
                break;
            }
            let started = Instant::now();
            let mut stream_report = StreamReport {
                stream: stream.clone(),
                ..StreamReport::default()
            };
            let span = tracing::info_span!("stream", stream = %stream);
            let error = async {
                let state = self.store.stream_state(&source.name, stream).await;
                let result = match &state {
                    Ok(state) => {
                        let stream_sync = StreamSync { source, preset, stream, state, options, started };
                        self.sync_stream(&stream_sync, &mut stream_report, cancel).await
                    }
                    Err(_) => Ok(()),
                };
                let mut complete = false;
                let error = match (state.as_ref().err(), result) {
                    (Some(store_error), _) => Some(format!("cannot read the stream's state: {store_error}")),
                    (None, Ok(())) => {
                        complete = true;
                        None
                    }
                    (None, Err(SourceError::Cancelled)) => {
                        report.cancelled = true;
                        None
                    }
                    (None, Err(error)) => Some(error.to_string()),
                };
                if let Some(progress) = &options.progress {
                    progress(&Progress { source: &source.name, stream, pages: stream_report.pages, records: stream_report.records, elapsed: started.elapsed(), end: Some(error.as_deref().map_or(if complete { "done" } else { "cancelled" }, |_| "failed")) });
                }
                if let Ok(state) = &state
                    && let Err(store_error) = self.store.finish_stream_sync(state.id, chrono::Utc::now().timestamp(), error.as_deref(), complete && !options.reconcile).await
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
        job: &StreamSync<'_>,
        report: &mut StreamReport,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let StreamSync {
            source,
            preset,
            stream,
            state,
            options,
            started: _,
        } = *job;
        let auth = self.auth(source, preset, false).await?;
        let mut window = SyncWindow::of(source, self.catalog.timezone());
        if options.reconcile {
            return self
                .reconcile_stream(job, auth, window, report, cancel)
                .await;
        }
        let mut cursor = state.cursor.clone();
        // A new backfill drops the cursor and walks from its start; one in progress (also
        // when a scheduled sync meets it) continues from the cursor with the same start.
        let since = options.since.map(|since| since.timestamp());
        if let Some(since) = since
            && state.backfill_since != Some(since)
        {
            self.store.start_backfill(state.id, since).await?;
            cursor = None;
        }
        if let Some(since) = since.or(state.backfill_since) {
            window.start = chrono::DateTime::from_timestamp(since, 0);
        }
        let first = preset.first_request(source, stream, cursor.as_deref(), &window)?;
        self.walk(job, auth, first, None, report, cancel).await
    }

    /// Deletion reconciliation of one stream: walks the reconcile window from its start
    /// (the stream's cursor untouched), stores what it reads like any sync, then removes
    /// the stored records the walk should have listed (per the preset's [`Coverage`])
    /// but did not.
    async fn reconcile_stream(
        &self,
        job: &StreamSync<'_>,
        auth: Auth,
        mut window: SyncWindow,
        report: &mut StreamReport,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let StreamSync {
            source,
            preset,
            stream,
            ..
        } = *job;
        let (Some(reconcile), coverage) = (&source.reconcile, preset.coverage(source, stream))
        else {
            return Ok(());
        };
        if coverage == Coverage::None {
            return Ok(());
        }
        let from = chrono::Utc::now()
            - chrono::Duration::from_std(reconcile.window).unwrap_or(chrono::Duration::MAX);
        // Nothing before start_date was synced, so nothing before it is judged.
        let start = window.start.map_or(from, |start| start.max(from));
        window.start = Some(start);
        let first = preset.first_request(source, stream, None, &window)?;
        let mut seen = std::collections::HashSet::new();
        self.walk(job, auth, first, Some(&mut seen), report, cancel)
            .await?;
        report.removed = self.remove_vanished(job, &coverage, start, &seen).await?;
        Ok(())
    }

    /// Removes the stored records of a stream that `coverage` says a walk from `start`
    /// lists, but that are not among the `seen` keys; marks their periods dirty.
    async fn remove_vanished(
        &self,
        job: &StreamSync<'_>,
        coverage: &Coverage,
        start: chrono::DateTime<chrono::Utc>,
        seen: &std::collections::HashSet<String>,
    ) -> Result<u64, SourceError> {
        const PAGE: i64 = 5_000;
        let tz = self.catalog.timezone();
        let mut vanished = Vec::new();
        let mut covered = 0u64;
        let mut after = 0;
        loop {
            let rows = self.store.records_after(job.state.id, after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in &rows {
                let listed = match coverage {
                    Coverage::None => false,
                    Coverage::All => true,
                    Coverage::Field(field) => serde_json::from_str::<Record>(&row.data)
                        .ok()
                        .and_then(|record| {
                            crate::records::event_time(crate::records::field(&record, field), tz)
                                .ok()
                                .flatten()
                        })
                        .is_some_and(|time| time >= start),
                };
                if listed {
                    covered += 1;
                    if !seen.contains(&row.key) {
                        vanished.push(row.id);
                    }
                }
            }
        }
        if vanished.is_empty() {
            return Ok(0);
        }
        // An API that suddenly lists nothing (revoked permissions, an outage answering
        // 200 with an empty list) must not empty the store.
        if seen.is_empty() && covered > 1 {
            tracing::warn!(
                stored = covered,
                "The re-read listed no records at all; keeping the stored ones instead of removing them"
            );
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        let dirty = tx.remove_records(&vanished).await?;
        tx.mark_dirty(&dirty).await?;
        tx.commit().await?;
        tracing::info!(
            removed = vanished.len(),
            "Removed records that vanished upstream"
        );
        Ok(vanished.len() as u64)
    }

    /// Fetches from `first` to the end of the stream and stores every batch (saving the
    /// cursor with each, unless this is a reconciliation, which collects the keys it
    /// reads into `seen` instead).
    async fn walk(
        &self,
        job: &StreamSync<'_>,
        mut auth: Auth,
        first: PageRequest,
        mut seen: Option<&mut std::collections::HashSet<String>>,
        report: &mut StreamReport,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let StreamSync {
            source,
            preset,
            stream,
            state,
            options,
            started,
        } = *job;
        // The fetch task stops on its own token: cancelled by shutdown, or by us when a
        // write fails, so it never outlives this function (it is joined below).
        let fetch_cancel = cancel.child_token();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let fetcher = {
            let engine = self.clone();
            let job = FetchJob {
                source: source.clone(),
                preset,
                stream: stream.to_string(),
            };
            let token = fetch_cancel.clone();
            tokio::spawn(
                async move {
                    engine
                        .fetch_batches(&job, &mut auth, Some(first), &token, sender)
                        .await
                }
                .instrument(tracing::Span::current()),
            )
        };
        let mut outcome = Ok(());
        while let Some(fetched) = receiver.recv().await {
            let result = match fetched {
                Fetched::Batch(batch) => {
                    if let Some(seen) = seen.as_deref_mut() {
                        seen.extend(batch.records.iter().map(|record| record.key.clone()));
                    }
                    let stored = self
                        .store_batch(source, stream, state.id, batch, seen.is_none(), report)
                        .await;
                    if stored.is_ok()
                        && let Some(progress) = &options.progress
                    {
                        progress(&Progress {
                            source: &source.name,
                            stream,
                            pages: report.pages,
                            records: report.records,
                            elapsed: started.elapsed(),
                            end: None,
                        });
                    }
                    stored
                }
                Fetched::Failed(error) => Err(error),
            };
            if let Err(error) = result {
                outcome = Err(error);
                break;
            }
        }
        fetch_cancel.cancel();
        drop(receiver);
        if let Err(error) = fetcher.await {
            tracing::error!(error = %error, "Fetch task ended abnormally");
            outcome = outcome.and(Err(SourceError::Transient {
                detail: "the fetch task panicked".into(),
            }));
        }
        outcome
    }

    /// How `source` authenticates: its preset's credentials, or an OAuth2 access token
    /// (refreshed when due, or now with `force`).
    async fn auth(
        &self,
        source: &SourceConfig,
        preset: &'static dyn Preset,
        force: bool,
    ) -> Result<Auth, SourceError> {
        match &source.oauth {
            Some(oauth) => {
                super::oauth::access_token(&self.store, &self.http, &source.name, oauth, force)
                    .await
            }
            None => preset.auth(source),
        }
    }

    /// The fetch task: fetches batches in order and sends them, then a failure if any.
    /// Ends when the stream is complete, after a failure, or when the writer is gone.
    async fn fetch_batches(
        &self,
        job: &FetchJob,
        auth: &mut Auth,
        mut next: Option<PageRequest>,
        cancel: &CancellationToken,
        sender: tokio::sync::mpsc::Sender<Fetched>,
    ) {
        loop {
            let (batch, error) = self.fetch_batch(job, auth, &mut next, cancel).await;
            if let Some(batch) = batch
                && sender.send(Fetched::Batch(batch)).await.is_err()
            {
                return;
            }
            if let Some(error) = error {
                let _ = sender.send(Fetched::Failed(error)).await;
                return;
            }
            if next.is_none() {
                return;
            }
        }
    }

    /// Fetches pages until about [`BATCH_RECORDS`] records, the last page, or an error.
    async fn fetch_batch(
        &self,
        job: &FetchJob,
        auth: &mut Auth,
        next: &mut Option<PageRequest>,
        cancel: &CancellationToken,
    ) -> (Option<Batch>, Option<SourceError>) {
        let FetchJob {
            source,
            preset,
            stream,
        } = job;
        let tz = self.catalog.timezone();
        let bound = self.catalog.reading(&source.name, stream);
        let mut batch: Option<Batch> = None;
        while let Some(request) = next.take() {
            if cancel.is_cancelled() {
                return (batch, Some(SourceError::Cancelled));
            }
            let parse = |headers: &reqwest::header::HeaderMap, body: &[u8]| {
                preset.parse_page(source, stream, &request, headers, body)
            };
            let mut sent = self.http.send(&request, auth, cancel, parse).await;
            // An OAuth2 access token the API refuses gets one refresh and one more try.
            if let (Err(SourceError::Unauthorized { .. }), Some(_)) = (&sent, &source.oauth) {
                match self.auth(source, *preset, true).await {
                    Ok(fresh) => *auth = fresh,
                    Err(error) => return (batch, Some(error)),
                }
                sent = self.http.send(&request, auth, cancel, parse).await;
            }
            let page = match sent {
                Ok(page) => page,
                Err(error) => return (batch, Some(error)),
            };
            if page
                .next
                .as_ref()
                .is_some_and(|following| following.same_call(&request))
            {
                return (
                    batch,
                    Some(SourceError::RepeatedCursor {
                        url: super::redact_url(&request.url),
                    }),
                );
            }
            let pending = batch.get_or_insert_with(|| Batch {
                records: Vec::new(),
                cursor: String::new(),
                pages: 0,
            });
            for fetched in page.records {
                let mut prepared = PreparedRecord {
                    key: fetched.key,
                    raw: fetched.raw,
                    contributions: Vec::new(),
                    problem: None,
                    problems: 0,
                };
                for measure in &bound {
                    let records = measure
                        .records()
                        .expect("reading() returns record measures");
                    match measures::contribution(
                        records,
                        measure.config.period,
                        tz,
                        &fetched.record,
                    ) {
                        Ok(Some(contribution)) => {
                            prepared.contributions.push((measure.id, contribution))
                        }
                        Ok(None) => {}
                        Err(problem) => {
                            prepared.problems += 1;
                            prepared
                                .problem
                                .get_or_insert((measure.config.id.clone(), problem));
                        }
                    }
                }
                pending.records.push(prepared);
            }
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
    async fn store_batch(
        &self,
        source: &SourceConfig,
        stream: &str,
        stream_id: i64,
        batch: Batch,
        save_cursor: bool,
        report: &mut StreamReport,
    ) -> Result<(), SourceError> {
        let tz = self.catalog.timezone();
        let bound = self.catalog.reading(&source.name, stream);
        report.pages += batch.pages;
        report.records += batch.records.len() as u64;

        // The same object twice in one batch (an API listing it on two pages): keep the last.
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(batch.records.len());
        for (index, prepared) in batch.records.iter().enumerate() {
            position.insert(prepared.key.as_str(), index);
        }
        let keys: Vec<&str> = position.keys().copied().collect();

        let mut tx = self.store.begin().await?;
        let existing: HashMap<String, crate::store::StoredRecord> = tx
            .existing_records(stream_id, &keys)
            .await?
            .into_iter()
            .map(|stored| (stored.key.clone(), stored))
            .collect();

        let mut writes: Vec<(&str, &str)> = Vec::new();
        let mut contributions: Vec<(usize, i64, &measures::Contribution)> = Vec::new();
        let mut removed = Vec::new();
        let mut dirty = BTreeSet::new();
        for (index, prepared) in batch.records.iter().enumerate() {
            if position.get(prepared.key.as_str()) != Some(&index) {
                continue;
            }
            if let Some(old) = existing.get(&prepared.key) {
                if old.data == prepared.raw.get() {
                    continue;
                }
                // The record changed upstream: its old contribution leaves its old period.
                if let Ok(old_record) = serde_json::from_str::<Record>(&old.data) {
                    for measure in &bound {
                        let records = measure
                            .records()
                            .expect("reading() returns record measures");
                        if let Ok(Some(old_contribution)) =
                            measures::contribution(records, measure.config.period, tz, &old_record)
                        {
                            removed.push((measure.id, old_contribution.period_start, old.id));
                            dirty.insert((measure.id, old_contribution.period_start));
                        }
                    }
                }
            }
            for (measure_id, contribution) in &prepared.contributions {
                dirty.insert((*measure_id, contribution.period_start));
                contributions.push((writes.len(), *measure_id, contribution));
            }
            if let Some((measure, problem)) = &prepared.problem {
                if report.record_problems == 0 {
                    tracing::warn!(measure = %measure, record = %prepared.key, error = %problem, "Record left out of a measure");
                }
                report.record_problems += prepared.problems;
            }
            writes.push((prepared.key.as_str(), prepared.raw.get()));
        }

        let ids: HashMap<String, i64> = tx
            .upsert_records(stream_id, &writes)
            .await?
            .into_iter()
            .map(|(id, key)| (key, id))
            .collect();
        let mut rows = Vec::with_capacity(contributions.len());
        for (write_index, measure_id, contribution) in &contributions {
            let key = writes[*write_index].0;
            let record_id = *ids.get(key).ok_or_else(|| {
                crate::store::StoreError::Corrupt(format!("no id returned for record {key}"))
            })?;
            rows.push(input_row(*measure_id, record_id, contribution));
        }
        tx.delete_inputs(&removed).await?;
        tx.upsert_inputs(&rows).await?;
        tx.mark_dirty(&dirty.into_iter().collect::<Vec<_>>())
            .await?;
        if save_cursor {
            tx.save_cursor(stream_id, Some(&batch.cursor)).await?;
        }
        tx.commit().await?;
        report.changed += writes.len() as u64;
        Ok(())
    }
}
