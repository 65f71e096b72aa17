//! Starter scorecards for `scorekeeper init --template NAME --sources a,b,c`.
//!
//! A template (one file each: `online_shop.rs`, `subscription.rs`, `services.rs`) is a
//! strategy map: objectives in the four perspectives, each naming the objectives that
//! drive it (learning → internal → customer → financial) and the [`Topic`]s it is
//! measured by. A kind's snippet (grouped by domain in `commerce.rs`, `support.rs`,
//! `crm.rs`, `accounting.rs` and `learning.rs`) is a `[sources.<kind>]` block plus the
//! measures that kind can feed, each tagged with a topic and written against the
//! fields of the API's own objects (the records scorekeeper keeps).
//!
//! [`generate`] joins the two: every measure whose topic an objective of the template
//! lists goes under that objective (with the formulas' inputs beside them); objectives
//! no named source can measure are left out, and their place in the strategy map is
//! bridged so the map stays connected. A template that cannot be complete from the
//! named sources — a perspective without any measure, or the template's core data
//! missing — is an error listing the kinds that would fill each gap; so is a source
//! that has nothing to measure in the template.
//!
//! `map.rs` keeps the strategy map connected; `render.rs` writes the TOML text.
//!
//! Generation is pure (the caller passes today's date) and only offers kinds this
//! build can sync ([`SourceKind::ALL`]), so the text it writes passes
//! `scorekeeper check` once the environment variables it lists are set.

mod accounting;
mod commerce;
mod crm;
mod learning;
mod map;
mod online_shop;
mod render;
mod services;
mod subscription;
mod support;

use std::collections::BTreeSet;

use chrono::NaiveDate;

use map::place;
use render::render;

use crate::config::{Perspective, SourceKind};

/// Every template, in the order they are listed to users.
pub const TEMPLATES: &[&Template] = &[
    &online_shop::TEMPLATE,
    &subscription::TEMPLATE,
    &services::TEMPLATE,
];

/// Every kind with a snippet, whether or not this build can sync it yet.
const SNIPPETS: &[&Snippet] = &[
    &commerce::STRIPE,
    &commerce::SHOPIFY,
    &accounting::QUICKBOOKS,
    &accounting::XERO,
    &crm::HUBSPOT,
    &crm::PIPEDRIVE,
    &support::ZENDESK,
    &support::FRESHDESK,
    &learning::MOODLE,
    &learning::TALENTLMS,
    &learning::CSV,
];

/// What a measure tells about the business; templates hang topics onto objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Money taken for orders and payments.
    Sales,
    /// Recurring (subscription) revenue.
    Recurring,
    /// Money invoiced or received against invoices.
    Billing,
    /// Value of deals won.
    Bookings,
    /// Margins from the books.
    Margin,
    /// How many customers buy, and how much.
    Customers,
    /// Customers invoiced (B2B clients).
    Clients,
    /// Subscribers gained and lost.
    Retention,
    /// Customer satisfaction ratings.
    Satisfaction,
    /// New customers won through the sales pipeline.
    Acquisition,
    /// Payments that fail.
    Payments,
    /// Orders cancelled.
    OrderQuality,
    /// Orders and money refunded.
    Refunds,
    /// Invoices paid.
    Collection,
    /// Support speed and quality.
    Support,
    /// How the sales pipeline converts.
    SalesProcess,
    /// The support team's skills and productivity.
    TeamSkills,
    /// Training completed.
    Training,
}

/// The unit shown next to a measure's values.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// The scorecard's currency.
    Money,
    /// A fixed unit: `%`, `min`, `hours`.
    Fixed(&'static str),
    /// No unit (counts, ratios).
    None,
}

/// A measure's target as the starter writes it.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// A common benchmark, written as a real target for the owner to adjust.
    Benchmark {
        /// Target value.
        value: f64,
        /// true: higher is better.
        up: bool,
        /// Edge of the warning band.
        warn: f64,
    },
    /// Depends on the size of the business: written commented out, for the owner to set.
    Yours {
        /// true: higher is better.
        up: bool,
    },
    /// No target (inputs of formulas, context).
    None,
}

/// Where a measure's values come from.
#[derive(Debug, Clone, Copy)]
pub enum Calc {
    /// Aggregated from one stream of the kind's source.
    Records {
        /// The stream; empty for the kind's only stream (CSV).
        stream: &'static str,
        /// The event-time field.
        time: &'static str,
        /// CEL filter.
        filter: Option<&'static str>,
        /// CEL value; `None` for a count.
        value: Option<&'static str>,
        /// Aggregate name.
        aggregate: &'static str,
    },
    /// CEL over other measures of the same kind.
    Formula(&'static str),
}

/// One measure a kind can feed.
#[derive(Debug)]
pub struct Measure {
    /// The measure id (`<kind>_...`, unique across kinds).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it tells.
    pub topic: Topic,
    /// An input of a formula: written without an objective.
    pub helper: bool,
    /// Unit of its values.
    pub unit: Unit,
    /// How it is computed.
    pub calc: Calc,
    /// Its target.
    pub goal: Goal,
    /// A comment written above it (empty for none).
    pub note: &'static str,
}

/// The value of one setting in a `[sources.<kind>]` block.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// A placeholder string the owner replaces (an account name).
    Text(&'static str),
    /// `${VAR}`: a secret read from the environment; the text says what it is.
    Env(&'static str, &'static str),
    /// A TOML value written as is (arrays, inline tables).
    Raw(&'static str),
}

/// A kind's `[sources.<kind>]` block and the measures it can feed.
#[derive(Debug)]
pub struct Snippet {
    /// The preset kind (also the source's name in the starter).
    pub kind: &'static str,
    /// Comment line(s) above the block.
    pub about: &'static str,
    /// Cron with seconds.
    pub schedule: &'static str,
    /// How often that is, for its comment.
    pub every: &'static str,
    /// `stale_after`.
    pub stale_after: &'static str,
    /// The kind's settings: key, value, comment.
    pub settings: &'static [(&'static str, Value, &'static str)],
    /// What it can measure.
    pub measures: &'static [Measure],
}

/// One objective of a template's strategy map.
#[derive(Debug)]
pub struct Objective {
    /// The objective id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Its perspective row.
    pub perspective: Perspective,
    /// Measures of these topics go under it (the first objective listing a topic wins).
    pub topics: &'static [Topic],
    /// The objectives (one perspective lower) that drive it.
    pub drivers: &'static [&'static str],
}

/// Data a template cannot do without.
#[derive(Debug)]
pub struct Need {
    /// What it is, for the error: "an orders or payments source".
    pub what: &'static str,
    /// Measures of these topics satisfy it.
    pub topics: &'static [Topic],
}

/// A starter scorecard.
#[derive(Debug)]
pub struct Template {
    /// What `--template` says.
    pub name: &'static str,
    /// What it is called in text: "online shop".
    pub title: &'static str,
    /// The `[scorecard]` name.
    pub scorecard: &'static str,
    /// Sources that make a typical starter (the README example, tests).
    pub typical: &'static [&'static str],
    /// The strategy map.
    pub objectives: &'static [Objective],
    /// What it cannot be built without.
    pub needs: &'static [Need],
}

impl Template {
    /// The objective a topic's measures go under.
    fn objective_for(&self, topic: Topic) -> Option<&Objective> {
        self.objectives
            .iter()
            .find(|objective| objective.topics.contains(&topic))
    }
}

/// Why no starter could be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `--template` names no template.
    #[error("unknown template \"{name}\" (templates: {known})")]
    UnknownTemplate {
        /// What was given.
        name: String,
        /// The templates there are.
        known: String,
    },
    /// `--sources` names a kind init cannot write.
    #[error("unknown source kind \"{name}\" in --sources (kinds: {known})")]
    UnknownKind {
        /// What was given.
        name: String,
        /// The kinds there are.
        known: String,
    },
    /// `--sources` is empty or names a kind twice.
    #[error("--sources {0}")]
    Sources(String),
    /// The template cannot be complete from these sources.
    #[error("the {template} template cannot be built from {sources}: {}", problems.join("; "))]
    Incomplete {
        /// The template's title.
        template: &'static str,
        /// The kinds given.
        sources: String,
        /// One line per gap.
        problems: Vec<String>,
    },
}

/// A generated starter configuration.
#[derive(Debug)]
pub struct Starter {
    /// The TOML text.
    pub text: String,
    /// Environment variables it reads: name and what to put there.
    pub env: Vec<(&'static str, &'static str)>,
    /// How many measures it has.
    pub measures: usize,
    /// How many objectives it has.
    pub objectives: usize,
}

/// The kinds `init` can write in this build: those with a snippet that the build can sync.
pub fn known_kinds() -> Vec<&'static str> {
    SNIPPETS
        .iter()
        .filter(|snippet| available(snippet.kind).is_some())
        .map(|snippet| snippet.kind)
        .collect()
}

/// The template names.
pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|template| template.name).collect()
}

/// The template called `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES
        .iter()
        .copied()
        .find(|template| template.name == name)
}

fn available(kind: &str) -> Option<SourceKind> {
    SourceKind::ALL
        .iter()
        .find(|(text, _)| *text == kind)
        .map(|(_, kind)| *kind)
}

fn snippet(kind: &str) -> Option<&'static Snippet> {
    SNIPPETS
        .iter()
        .copied()
        .find(|snippet| snippet.kind == kind && available(kind).is_some())
}

/// The kinds that would fill a gap, or why none can.
fn remedy(kinds: &[&str]) -> String {
    if kinds.is_empty() {
        "no source kind of this build provides it yet".to_string()
    } else {
        either(kinds)
    }
}

/// "a", "a or b", "a, b or c".
fn either(items: &[&str]) -> String {
    listed(items, "or")
}

/// "a", "a and b", "a, b and c".
fn all_of(items: &[&str]) -> String {
    listed(items, "and")
}

fn listed(items: &[&str], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}

/// One measure chosen for the starter.
struct Chosen {
    kind: &'static Snippet,
    measure: &'static Measure,
    perspective: Perspective,
    objective: Option<&'static str>,
}

/// The measures of `kinds` that `template` uses, formula inputs included.
fn choose(template: &'static Template, kinds: &[&'static Snippet]) -> Vec<Chosen> {
    let mut chosen: Vec<Chosen> = Vec::new();
    for kind in kinds {
        for measure in kind.measures {
            if let Some(objective) = template.objective_for(measure.topic) {
                chosen.push(Chosen {
                    kind,
                    measure,
                    perspective: objective.perspective,
                    objective: (!measure.helper).then_some(objective.id),
                });
            }
        }
    }
    // Inputs of chosen formulas whose own topic the template does not use: beside
    // the formula, without an objective.
    let mut index = 0;
    while index < chosen.len() {
        if let Calc::Formula(formula) = chosen[index].measure.calc {
            let (kind, perspective) = (chosen[index].kind, chosen[index].perspective);
            for input in identifiers(formula) {
                let known = chosen.iter().any(|c| c.measure.id == input);
                if let Some(measure) = kind.measures.iter().find(|m| m.id == input)
                    && !known
                {
                    chosen.push(Chosen {
                        kind,
                        measure,
                        perspective,
                        objective: None,
                    });
                }
            }
        }
        index += 1;
    }
    chosen
}

/// The identifiers of a formula (measure ids are plain identifiers).
fn identifiers(formula: &str) -> impl Iterator<Item = &str> {
    formula
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// Builds the starter for `template` from the kinds named in `sources`.
/// `today` dates the header and sets `start_date` (the first of this month, a year ago).
pub fn generate(
    template_name: &str,
    sources: &[String],
    today: NaiveDate,
) -> Result<Starter, InitError> {
    let template = template(template_name).ok_or_else(|| InitError::UnknownTemplate {
        name: template_name.to_string(),
        known: template_names().join(", "),
    })?;
    let mut kinds: Vec<&'static Snippet> = Vec::new();
    for name in sources {
        let name = name.trim();
        let kind = snippet(name).ok_or_else(|| {
            let later = SNIPPETS.iter().any(|snippet| snippet.kind == name);
            InitError::UnknownKind {
                name: name.to_string(),
                known: format!(
                    "{}{}",
                    known_kinds().join(", "),
                    if later {
                        "; this build cannot sync it yet"
                    } else {
                        ""
                    }
                ),
            }
        })?;
        if kinds.iter().any(|k| k.kind == kind.kind) {
            return Err(InitError::Sources(format!("names {name} twice")));
        }
        kinds.push(kind);
    }
    if kinds.is_empty() {
        return Err(InitError::Sources(format!(
            "names no source (kinds: {})",
            known_kinds().join(", ")
        )));
    }

    let chosen = choose(template, &kinds);
    let mut problems = Vec::new();
    for need in template.needs {
        let met = chosen
            .iter()
            .any(|c| !c.measure.helper && need.topics.contains(&c.measure.topic));
        if !met {
            problems.push(format!(
                "it needs {}: {}",
                need.what,
                remedy(&kinds_for(template, |topic| need.topics.contains(&topic)))
            ));
        }
    }
    for perspective in Perspective::ALL {
        let covered = chosen
            .iter()
            .any(|c| c.objective.is_some() && c.perspective == perspective);
        if !covered {
            problems.push(format!(
                "it needs a source for the {} perspective: {}",
                perspective.title().to_lowercase(),
                remedy(&kinds_for(template, |topic| {
                    template
                        .objective_for(topic)
                        .is_some_and(|o| o.perspective == perspective)
                }))
            ));
        }
    }
    for kind in &kinds {
        if !chosen.iter().any(|c| c.kind.kind == kind.kind) {
            problems.push(format!(
                "{} has nothing to measure in it (its sources: {})",
                kind.kind,
                either(&kinds_for(template, |_| true))
            ));
        }
    }
    if !problems.is_empty() {
        return Err(InitError::Incomplete {
            template: template.title,
            sources: kinds.iter().map(|k| k.kind).collect::<Vec<_>>().join(", "),
            problems,
        });
    }

    let measured: BTreeSet<&str> = chosen.iter().filter_map(|c| c.objective).collect();
    let placed = place(template, &measured);
    let env: Vec<(&'static str, &'static str)> = kinds
        .iter()
        .flat_map(|kind| kind.settings.iter())
        .filter_map(|(_, value, _)| match value {
            Value::Env(name, about) => Some((*name, *about)),
            _ => None,
        })
        .collect();
    let text = render(template, &kinds, &chosen, &placed, &env, today);
    Ok(Starter {
        text,
        env,
        measures: chosen.len(),
        objectives: placed.len(),
    })
}

/// The kinds (of this build) with a non-helper measure whose topic passes `wanted` and
/// that the template uses.
fn kinds_for(template: &Template, wanted: impl Fn(Topic) -> bool) -> Vec<&'static str> {
    SNIPPETS
        .iter()
        .filter(|snippet| available(snippet.kind).is_some())
        .filter(|snippet| {
            snippet
                .measures
                .iter()
                .any(|m| !m.helper && wanted(m.topic) && template.objective_for(m.topic).is_some())
        })
        .map(|snippet| snippet.kind)
        .collect()
}

#[cfg(test)]
mod tests;
