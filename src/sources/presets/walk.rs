//! The cursor of presets that walk a list page by page and remember the newest event
//! time of the last complete walk (the high-water mark): Stripe's lists, Zendesk's
//! cursor-paginated lists.
//!
//! A walk may only raise the mark when it reaches the end (lists come newest first, or in
//! no time order), so until then the cursor records the walk in progress: its lower time
//! bound, the position after the last committed page, and the newest time seen so far.
//! A crash resumes the walk after the last committed page. Each new walk starts
//! `lookback` before the mark (never before `start_date`), so objects that changed after
//! they were first synced are read again. Pure: no IO.

use serde::{Deserialize, Serialize};

use super::SyncWindow;
use crate::sources::http::ParseError;
use crate::sources::{FetchedRecord, Page, PageRequest, SourceError};

/// The saved cursor of a walked stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WalkCursor {
    /// Newest event time (unix seconds) of the last complete walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// The walk in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Walk>,
}

/// One walk through a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Walk {
    /// The lower time bound of this walk (unix seconds), if the API filters by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<i64>,
    /// The API's position after the last committed page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Newest event time seen in this walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl Walk {
    /// Notes an object's event time.
    pub fn see(&mut self, time: i64) {
        self.max = Some(self.max.map_or(time, |max| max.max(time)));
    }
}

impl WalkCursor {
    /// Reads a saved cursor; `None` is a first sync.
    pub fn parse(saved: Option<&str>) -> Result<Self, SourceError> {
        saved.map_or_else(
            || Ok(Self::default()),
            |text| {
                serde_json::from_str(text)
                    .map_err(|error| SourceError::BadCursor(error.to_string()))
            },
        )
    }

    /// Reads the state a request carries (written by [`WalkCursor::encode`]).
    pub fn from_state(state: &str) -> Result<Self, ParseError> {
        serde_json::from_str(state).map_err(|error| ParseError {
            truncated: false,
            unauthorized: false,
            detail: format!("internal cursor state unreadable: {error}"),
        })
    }

    /// The cursor as saved text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a cursor of plain fields always serializes")
    }

    /// Starts a walk unless one is in progress. With `filtered`, the walk's lower bound is
    /// `lookback` before the mark and never before the window's start; without, the API
    /// has no time filter and the walk covers the whole list.
    pub fn begin(&mut self, window: &SyncWindow, filtered: bool) -> &Walk {
        let start = window.start.map(|start| start.timestamp());
        let lookback = window.lookback.as_secs() as i64;
        let gte = match (filtered, self.since, start) {
            (false, _, _) => None,
            (true, Some(since), Some(start)) => Some((since - lookback).max(start)),
            (true, Some(since), None) => Some(since - lookback),
            (true, None, start) => start,
        };
        self.run.get_or_insert(Walk {
            gte,
            after: None,
            max: None,
        })
    }

    /// Takes the walk in progress out of the cursor (to update it with a page).
    pub fn take_walk(&mut self) -> Walk {
        self.run.take().unwrap_or_default()
    }

    /// Continues `walk` after `position` (the page was read, more follow).
    pub fn continue_after(&mut self, mut walk: Walk, position: String) -> &Walk {
        walk.after = Some(position);
        self.run.insert(walk)
    }

    /// The page of `records` read in `walk`: with `next` (the API's position after this
    /// page) the walk continues at the request `url_for` builds from the updated walk;
    /// without, it is finished and the mark rises.
    pub fn into_page(
        mut self,
        records: Vec<FetchedRecord>,
        walk: Walk,
        next: Option<String>,
        url_for: impl FnOnce(&Walk) -> reqwest::Url,
    ) -> Page {
        match next {
            Some(position) => {
                let url = url_for(self.continue_after(walk, position));
                let state = self.encode();
                Page {
                    records,
                    cursor: state.clone(),
                    next: Some(PageRequest::get(url, state)),
                }
            }
            None => {
                self.finish(walk);
                Page {
                    records,
                    cursor: self.encode(),
                    next: None,
                }
            }
        }
    }

    /// Ends `walk` (the last page was read): the mark rises to the newest time seen.
    pub fn finish(&mut self, walk: Walk) {
        self.since = match (self.since, walk.max) {
            (Some(since), Some(max)) => Some(since.max(max)),
            (since, max) => since.or(max),
        };
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    #[test]
    fn walks_start_at_the_mark_minus_lookback_but_never_before_the_start() {
        let cases = [
            (None, Some(1_000), Some(1_000)),
            (Some(5_000), Some(1_000), Some(4_900)),
            (Some(1_050), Some(1_000), Some(1_000)),
            (Some(5_000), None, Some(4_900)),
            (None, None, None),
        ];
        for (since, start, expected) in cases {
            let mut cursor = WalkCursor { since, run: None };
            assert_eq!(
                cursor.begin(&window(start), true).gte,
                expected,
                "since {since:?}, start {start:?}"
            );
            let mut unfiltered = WalkCursor { since, run: None };
            assert_eq!(unfiltered.begin(&window(start), false).gte, None);
        }
    }

    #[test]
    fn a_walk_in_progress_is_kept_and_finishing_raises_the_mark() {
        let mut cursor = WalkCursor {
            since: Some(10),
            run: Some(Walk {
                gte: Some(5),
                after: Some("x".into()),
                max: Some(30),
            }),
        };
        assert_eq!(
            cursor.begin(&window(None), true).after.as_deref(),
            Some("x"),
            "resumes, does not restart"
        );
        let mut walk = cursor.take_walk();
        walk.see(20);
        walk.see(40);
        cursor.finish(walk);
        assert_eq!(
            cursor,
            WalkCursor {
                since: Some(40),
                run: None
            }
        );
        assert_eq!(cursor.encode(), r#"{"since":40}"#);
    }
}
