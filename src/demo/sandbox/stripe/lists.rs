//! The lists the sandbox serves: how each one is held, and how a page is cut from it.
//!
//! A list is either stored objects (JSON text kept sorted by `(created, id)`) or the synthetic
//! generator. Both are indexed oldest first, so one page algorithm serves them and walks only
//! the indexes a page needs. Nothing here parses JSON or builds `serde_json::Value` trees: a
//! page is a concatenation of the objects' text.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::http::StatusCode;

use super::error::StripeError;
use super::query::{Cursor, ListQuery};
use super::synthetic::SyntheticCharges;
use super::{Resource, StripeData};

/// One stored object: its sort key, its JSON text and the fields lists can filter on.
#[derive(Clone, Debug)]
pub(super) struct StoredObject {
    pub(super) created: i64,
    pub(super) id: Box<str>,
    pub(super) json: Box<str>,
    pub(super) attrs: Vec<(&'static str, Box<str>)>,
}

/// Objects kept as JSON text, sorted by `(created, id)` ascending: the reverse of list order, so
/// that an index grows with time exactly as a synthetic index does and one page algorithm
/// serves both forms.
#[derive(Clone, Debug, Default)]
pub(super) struct StoredList {
    objects: Vec<StoredObject>,
    created_by_id: HashMap<Box<str>, i64>,
}

impl StoredList {
    pub(super) fn from_objects(mut objects: Vec<StoredObject>) -> Self {
        objects.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        objects.dedup_by(|later, earlier| later.id == earlier.id);
        let created_by_id = objects.iter().map(|o| (o.id.clone(), o.created)).collect();
        StoredList {
            objects,
            created_by_id,
        }
    }

    fn search(&self, created: i64, id: &str) -> Result<usize, usize> {
        self.objects
            .binary_search_by(|o| (o.created, &*o.id).cmp(&(created, id)))
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        let created = *self.created_by_id.get(id)?;
        self.search(created, id).ok()
    }

    pub(super) fn upsert(&mut self, object: StoredObject) {
        if let Some(at) = self.index_of(&object.id) {
            self.objects.remove(at);
        }
        let at = match self.search(object.created, &object.id) {
            Ok(at) | Err(at) => at,
        };
        self.created_by_id.insert(object.id.clone(), object.created);
        self.objects.insert(at, object);
    }
}

/// One resource's objects, stored or computed; either way indexed oldest first.
#[derive(Clone, Debug)]
pub(super) enum List {
    Stored(StoredList),
    Synthetic(SyntheticCharges),
}

impl Default for List {
    fn default() -> Self {
        List::Stored(StoredList::default())
    }
}

impl List {
    pub(super) fn len(&self) -> u64 {
        match self {
            List::Stored(list) => list.objects.len() as u64,
            List::Synthetic(synthetic) => synthetic.count,
        }
    }

    fn created(&self, index: u64) -> i64 {
        match self {
            List::Stored(list) => list.objects[index as usize].created,
            List::Synthetic(synthetic) => synthetic.created(index),
        }
    }

    pub(super) fn index_of(&self, id: &str) -> Option<u64> {
        match self {
            List::Stored(list) => list.index_of(id).map(|index| index as u64),
            List::Synthetic(synthetic) => synthetic.index_of(id),
        }
    }

    fn attr(&self, index: u64, field: &str) -> Option<Cow<'_, str>> {
        match self {
            List::Stored(list) => list.objects[index as usize]
                .attrs
                .iter()
                .find(|(name, _)| *name == field)
                .map(|(_, value)| Cow::Borrowed(&**value)),
            List::Synthetic(synthetic) => synthetic.attr(index, field).map(Cow::Owned),
        }
    }

    pub(super) fn write(&self, index: u64, out: &mut String) {
        match self {
            List::Stored(list) => out.push_str(&list.objects[index as usize].json),
            List::Synthetic(synthetic) => synthetic.write(index, out),
        }
    }
}

impl StripeData {
    /// The body of one list response, or the Stripe error to send instead.
    pub(super) fn list_page(
        &self,
        resource: Resource,
        query: &ListQuery,
    ) -> Result<String, StripeError> {
        let list = &self.lists[resource.slot()];
        let len = list.len();
        // `created` is non-decreasing in the index, so the created range is an index range.
        let mut lo = query
            .created_min
            .map_or(0, |min| partition_point(len, |i| list.created(i) < min));
        let mut hi = query
            .created_max
            .map_or(len, |max| partition_point(len, |i| list.created(i) <= max));
        let backwards = match &query.cursor {
            Some(Cursor::StartingAfter(id)) => {
                let at = list.index_of(id).ok_or_else(|| {
                    StripeError::no_such(resource, id, "starting_after", StatusCode::BAD_REQUEST)
                })?;
                hi = hi.min(at);
                false
            }
            Some(Cursor::EndingBefore(id)) => {
                let at = list.index_of(id).ok_or_else(|| {
                    StripeError::no_such(resource, id, "ending_before", StatusCode::BAD_REQUEST)
                })?;
                lo = lo.max(at + 1);
                true
            }
            None => false,
        };
        let matches = |index: u64| {
            query
                .filters
                .iter()
                .all(|filter| filter.matches(list.attr(index, filter.field).as_deref()))
        };

        // Without filters every index matches, so the walk touches limit + 1 indexes: O(page).
        let mut picked = Vec::with_capacity(query.limit);
        let mut has_more = false;
        if backwards {
            // `ending_before` returns the objects just newer than the cursor, still newest
            // first; `has_more` then tells whether even newer ones exist.
            for index in lo..hi {
                if matches(index) {
                    if picked.len() == query.limit {
                        has_more = true;
                        break;
                    }
                    picked.push(index);
                }
            }
            picked.reverse();
        } else {
            for index in (lo..hi).rev() {
                if matches(index) {
                    if picked.len() == query.limit {
                        has_more = true;
                        break;
                    }
                    picked.push(index);
                }
            }
        }

        let mut body = String::with_capacity(96 + picked.len() * 1_400);
        body.push_str(r#"{"object":"list","data":["#);
        for (n, index) in picked.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            list.write(*index, &mut body);
        }
        body.push_str(r#"],"has_more":"#);
        body.push_str(if has_more { "true" } else { "false" });
        body.push_str(r#","url":"/v1/"#);
        body.push_str(resource.name());
        body.push_str("\"}");
        Ok(body)
    }

    pub(super) fn retrieve(&self, resource: Resource, id: &str) -> Result<String, StripeError> {
        let list = &self.lists[resource.slot()];
        let index = list
            .index_of(id)
            .ok_or_else(|| StripeError::no_such(resource, id, "id", StatusCode::NOT_FOUND))?;
        let mut body = String::with_capacity(1_400);
        list.write(index, &mut body);
        Ok(body)
    }
}

/// The first index in `0..len` for which `is_before` is false (`is_before` must be monotone).
fn partition_point(len: u64, mut is_before: impl FnMut(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if is_before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
