//! The TOML text of a starter: the header with the variables to set, the scorecard,
//! the sources, the strategy map and the measures by perspective.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use super::map::Placed;
use super::{
    Calc, Chosen, Goal, Objective, Snippet, Template, Unit, Value, all_of, available, either,
    identifiers, kinds_for,
};
use crate::config::Perspective;

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `# text` for every line of `text`.
fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
}

/// `key = value` padded so comments line up, with the comment if any.
fn line(out: &mut String, key: &str, value: &str, note: &str) {
    let assignment = format!("{key} = {value}");
    if note.is_empty() {
        let _ = writeln!(out, "{assignment}");
    } else {
        let _ = writeln!(out, "{assignment:<40} # {note}");
    }
}

/// The stream a measure reads: the kind's only stream when the snippet leaves it empty.
fn stream_of(kind: &Snippet, stream: &'static str) -> &'static str {
    if !stream.is_empty() {
        return stream;
    }
    available(kind.kind)
        .and_then(|kind| {
            crate::sources::presets::describe(kind)
                .streams
                .first()
                .copied()
        })
        .expect(
            "snippets are only used for kinds this build can sync, and every preset has a stream",
        )
}

pub(super) fn render(
    template: &Template,
    kinds: &[&'static Snippet],
    chosen: &[Chosen],
    placed: &[Placed],
    env: &[(&str, &str)],
    today: NaiveDate,
) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.kind).collect();
    let mut out = String::new();
    comment(
        &mut out,
        &format!(
            "Starter scorecard: {} template, from {}.\n\
             Written by `scorekeeper init --template {} --sources {}` on {today}.",
            template.title,
            all_of(&names),
            template.name,
            names.join(","),
        ),
    );
    out.push_str("#\n");
    if env.is_empty() {
        comment(&mut out, "This file reads no environment variables.");
    } else {
        comment(
            &mut out,
            "Set these environment variables before running scorekeeper (the file reads them as ${NAME}):",
        );
        let width = env.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, about) in env {
            let _ = writeln!(out, "#   {name:<width$}  {about}");
        }
    }
    comment(
        &mut out,
        "\nThen replace the \"your-...\" placeholders (account names) in [sources], set\n\
         [scorecard] timezone and currency, and run `scorekeeper check`\n\
         (`scorekeeper check --connect` also tries every source's credentials).\n\
         \n\
         Targets on rates and times are common benchmarks: adjust them to your business.\n\
         Targets on amounts and counts depend on your size, so they are commented out:\n\
         set them to your plan (value = the target, warn = the edge of the amber band).\n\
         Every measure is per calendar month; change `period` to judge by week or quarter\n\
         (a formula and its inputs need the same period).",
    );
    let left_out: Vec<&Objective> = template
        .objectives
        .iter()
        .filter(|objective| !placed.iter().any(|p| p.objective.id == objective.id))
        .collect();
    if !left_out.is_empty() {
        comment(
            &mut out,
            "\nObjectives of the template that none of these sources can measure (left out):",
        );
        for objective in left_out {
            let kinds = kinds_for(template, |topic| objective.topics.contains(&topic));
            let remedy = if kinds.is_empty() {
                "no source kind of this build measures it yet".to_string()
            } else {
                format!("add {} to measure it", either(&kinds))
            };
            let _ = writeln!(
                out,
                "#   {} ({}): {remedy}",
                objective.name,
                objective.perspective.as_str(),
            );
        }
    }

    out.push_str("\n[scorecard]\n");
    line(
        &mut out,
        "name",
        &quote(template.scorecard),
        "shown on the dashboard",
    );
    line(
        &mut out,
        "timezone",
        &quote("UTC"),
        "your IANA time zone (Europe/Berlin, America/New_York): months are calendar months there",
    );
    line(
        &mut out,
        "currency",
        &quote("USD"),
        "your currency; money measures below are in the sources' own currency",
    );
    out.push_str("\n[database]\n");
    line(
        &mut out,
        "url",
        &quote("sqlite://data/scorekeeper.db"),
        "or postgres://USER:PASSWORD@HOST/DB",
    );
    out.push_str("\n[server]\n");
    line(
        &mut out,
        "listen",
        &quote("127.0.0.1:8080"),
        "the dashboard and API; loopback only",
    );
    out.push_str(
        "# api_token = \"${SCOREKEEPER_API_TOKEN}\"   # enables the write endpoints (sync now, silence)\n",
    );

    // Sources.
    let start = NaiveDate::from_ymd_opt(today.year() - 1, today.month(), 1)
        .expect("the first of a month always exists");
    for kind in kinds {
        out.push('\n');
        comment(&mut out, kind.about);
        let _ = writeln!(out, "[sources.{}]", kind.kind);
        line(&mut out, "kind", &quote(kind.kind), "");
        line(
            &mut out,
            "schedule",
            &quote(kind.schedule),
            &format!(
                "{} (cron with seconds: sec min hour day month weekday)",
                kind.every
            ),
        );
        line(
            &mut out,
            "start_date",
            &quote(&start.to_string()),
            "the first sync pulls history from this day",
        );
        for (key, value, note) in kind.settings {
            let value = match value {
                Value::Text(text) => quote(text),
                Value::Env(name, _) => quote(&format!("${{{name}}}")),
                Value::Raw(raw) => raw.to_string(),
            };
            line(&mut out, key, &value, note);
        }
        line(
            &mut out,
            "stale_after",
            &quote(kind.stale_after),
            "alert when no sync has succeeded for this long",
        );
    }

    // Strategy map.
    out.push('\n');
    comment(
        &mut out,
        "Strategy map: each objective names the objectives that drive it\n\
         (learning & growth → internal process → customer → financial).",
    );
    for perspective in Perspective::ALL {
        for p in placed
            .iter()
            .filter(|p| p.objective.perspective == perspective)
        {
            let _ = writeln!(out, "\n[objectives.{}]", p.objective.id);
            line(&mut out, "name", &quote(p.objective.name), "");
            line(&mut out, "perspective", &quote(perspective.as_str()), "");
            if !p.drivers.is_empty() {
                let drivers: Vec<String> = p.drivers.iter().map(|d| quote(d)).collect();
                line(
                    &mut out,
                    "drivers",
                    &format!("[{}]", drivers.join(", ")),
                    "",
                );
            }
        }
    }

    // Measures, by perspective and objective; formula inputs next to their formula.
    for perspective in Perspective::ALL {
        out.push('\n');
        comment(&mut out, &format!("--- {} ---", perspective.title()));
        let mut written: BTreeSet<&str> = BTreeSet::new();
        let in_row: Vec<&Chosen> = chosen
            .iter()
            .filter(|c| c.perspective == perspective)
            .collect();
        for p in placed
            .iter()
            .filter(|p| p.objective.perspective == perspective)
        {
            for c in in_row
                .iter()
                .filter(|c| c.objective == Some(p.objective.id))
            {
                write_with_inputs(&mut out, c, &in_row, &mut written);
            }
        }
        for c in &in_row {
            write_with_inputs(&mut out, c, &in_row, &mut written);
        }
    }
    out
}

/// Writes a measure after the inputs of its formula (once each).
fn write_with_inputs<'a>(
    out: &mut String,
    c: &'a Chosen,
    row: &[&'a Chosen],
    written: &mut BTreeSet<&'a str>,
) {
    if !written.insert(c.measure.id) {
        return;
    }
    if let Calc::Formula(formula) = c.measure.calc {
        for input in identifiers(formula) {
            if let Some(other) = row.iter().find(|o| o.measure.id == input) {
                write_with_inputs(out, other, row, written);
            }
        }
    }
    write_measure(out, c);
}

fn write_measure(out: &mut String, c: &Chosen) {
    let m = c.measure;
    out.push('\n');
    comment(out, m.note);
    let _ = writeln!(out, "[measures.{}]", m.id);
    line(out, "name", &quote(m.name), "");
    line(out, "perspective", &quote(c.perspective.as_str()), "");
    line(out, "period", &quote("month"), "");
    match m.unit {
        Unit::Money => line(out, "unit", &quote("USD"), ""),
        Unit::Fixed(unit) => line(out, "unit", &quote(unit), ""),
        Unit::None => {}
    }
    match m.calc {
        Calc::Records {
            stream,
            time,
            filter,
            value,
            aggregate,
        } => {
            line(
                out,
                "from",
                &quote(&format!("{}.{}", c.kind.kind, stream_of(c.kind, stream))),
                "",
            );
            line(out, "time", &quote(time), "");
            if let Some(filter) = filter {
                line(out, "where", &quote(filter), "");
            }
            if let Some(value) = value {
                line(out, "value", &quote(value), "");
            }
            line(out, "aggregate", &quote(aggregate), "");
        }
        Calc::Formula(formula) => line(out, "formula", &quote(formula), ""),
    }
    let direction = |up: bool| if up { "up" } else { "down" };
    match m.goal {
        Goal::Benchmark { value, up, warn } => line(
            out,
            "target",
            &format!(
                "{{ value = {value}, direction = \"{}\", warn = {warn} }}",
                direction(up)
            ),
            "a common benchmark: adjust",
        ),
        Goal::Yours { up } => {
            let _ = writeln!(
                out,
                "# target = {{ value = YOUR_PLAN, direction = \"{}\" }}   # set to your plan",
                direction(up)
            );
        }
        Goal::None => {}
    }
    if let Some(objective) = c.objective {
        line(out, "objective", &quote(objective), "");
    }
}
