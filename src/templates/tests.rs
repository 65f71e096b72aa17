use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::map::{Placed, components, layer};
use super::*;
use crate::config::{MeasureKind, Settings};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 15).expect("valid date")
}

fn strings(kinds: &[&str]) -> Vec<String> {
    kinds.iter().map(|kind| kind.to_string()).collect()
}

/// Loads the starter the way `scorekeeper check` does, with every variable it names set.
fn load(starter: &Starter) -> Settings {
    let env: BTreeMap<String, String> = starter
        .env
        .iter()
        .map(|(name, _)| (name.to_string(), format!("dummy-{}", name.to_lowercase())))
        .collect();
    crate::config::load_str(&starter.text, "starter", &env)
        .unwrap_or_else(|error| panic!("the starter does not load: {error}\n{}", starter.text))
}

/// Everything a complete starter promises.
fn assert_complete(template: &Template, kinds: &[&str], starter: &Starter) {
    let context = format!("{} from {kinds:?}", template.name);
    let settings = load(starter);

    let sources: BTreeSet<&str> = settings.sources.keys().map(String::as_str).collect();
    assert_eq!(
        sources,
        kinds.iter().copied().collect(),
        "{context}: sources"
    );
    for source in &sources {
        assert!(
            settings
                .measures
                .iter()
                .any(|m| matches!(&m.kind, MeasureKind::Records(r) if r.source == *source)),
            "{context}: source {source} feeds no measure"
        );
    }
    for (name, _) in &starter.env {
        assert!(
            starter.text.contains(&format!("\"${{{name}}}\"")),
            "{context}: {name} is listed but not read"
        );
    }

    for perspective in Perspective::ALL {
        assert!(
            settings
                .measures
                .iter()
                .any(|m| m.perspective == perspective && m.objective.is_some()),
            "{context}: no measure in the {} perspective",
            perspective.as_str()
        );
    }
    for (id, objective) in &settings.objectives {
        let measured: Vec<_> = settings
            .measures
            .iter()
            .filter(|m| m.objective.as_deref() == Some(id.as_str()))
            .collect();
        assert!(
            !measured.is_empty(),
            "{context}: objective {id} has no measure"
        );
        for measure in measured {
            assert_eq!(
                measure.perspective, objective.perspective,
                "{context}: measure {} sits in another perspective than its objective {id}",
                measure.id
            );
        }
        for driver in &objective.drivers {
            assert_eq!(
                layer(settings.objectives[driver].perspective) + 1,
                layer(objective.perspective),
                "{context}: {driver} drives {id} but is not one perspective lower"
            );
        }
    }
    assert_connected(&context, &settings);
    assert_eq!(settings.measures.len(), starter.measures, "{context}");
    assert_eq!(settings.objectives.len(), starter.objectives, "{context}");
}

/// The strategy map is one connected map, and every objective leads to a financial one.
fn assert_connected(context: &str, settings: &Settings) {
    let objectives = &settings.objectives;
    let mut neighbours: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, objective) in objectives {
        neighbours.entry(id).or_default();
        for driver in &objective.drivers {
            neighbours.entry(id).or_default().insert(driver);
            neighbours.entry(driver).or_default().insert(id);
        }
    }
    let first = objectives.keys().next().expect("a starter has objectives");
    let mut seen = BTreeSet::from([first.as_str()]);
    let mut todo = vec![first.as_str()];
    while let Some(id) = todo.pop() {
        for next in &neighbours[id] {
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    assert_eq!(
        seen.len(),
        objectives.len(),
        "{context}: the strategy map falls apart: {objectives:?}"
    );
    for (id, objective) in objectives {
        let mut at = vec![id.as_str()];
        let mut reached = objective.perspective == Perspective::Financial;
        while !reached && !at.is_empty() {
            at = objectives
                .iter()
                .filter(|(_, o)| o.drivers.iter().any(|d| at.contains(&d.as_str())))
                .map(|(effect, _)| effect.as_str())
                .collect();
            reached = at
                .iter()
                .any(|effect| objectives[*effect].perspective == Perspective::Financial);
        }
        assert!(reached, "{context}: {id} leads to no financial objective");
    }
}

#[test]
fn every_template_builds_from_its_typical_sources() {
    for template in TEMPLATES {
        let kinds: Vec<&str> = template
            .typical
            .iter()
            .copied()
            .filter(|kind| known_kinds().contains(kind))
            .collect();
        let starter = generate(template.name, &strings(&kinds), today())
            .unwrap_or_else(|error| panic!("{}: {error}", template.name));
        assert_complete(template, &kinds, &starter);
    }
}

/// Every set of up to three kinds this build knows either gives a complete starter, or
/// an error whose remedies are kinds that were not given.
#[test]
fn every_combination_of_kinds_builds_or_says_what_is_missing() {
    let known = known_kinds();
    let mut sets: Vec<Vec<&str>> = Vec::new();
    for (i, a) in known.iter().enumerate() {
        sets.push(vec![a]);
        for (j, b) in known.iter().enumerate().skip(i + 1) {
            sets.push(vec![a, b]);
            for c in known.iter().skip(j + 1) {
                sets.push(vec![a, b, c]);
            }
        }
    }
    let mut built = 0;
    for template in TEMPLATES {
        for kinds in &sets {
            match generate(template.name, &strings(kinds), today()) {
                Ok(starter) => {
                    assert_complete(template, kinds, &starter);
                    built += 1;
                }
                Err(InitError::Incomplete { problems, .. }) => {
                    assert!(!problems.is_empty());
                    for problem in &problems {
                        if let Some((_, remedy)) = problem.split_once(": ")
                            && problem.starts_with("it needs")
                        {
                            for kind in remedy.split([',', ' ']).filter(|w| known.contains(w)) {
                                assert!(
                                    !kinds.contains(&kind),
                                    "{} from {kinds:?}: {kind} is given, yet the error asks for it: {problem}",
                                    template.name
                                );
                            }
                        } else {
                            assert!(
                                problem.contains("has nothing to measure"),
                                "unexpected problem: {problem}"
                            );
                        }
                    }
                }
                Err(other) => panic!("{} from {kinds:?}: {other}", template.name),
            }
        }
    }
    // Each template has at least its typical set among them.
    assert!(built >= TEMPLATES.len(), "only {built} starters were built");
}

/// For every kind that can fill a perspective of a template, the typical set with that
/// kind in the place of the typical kinds filling that perspective still builds.
#[test]
fn each_kind_that_fills_a_perspective_builds_with_the_typical_rest() {
    let known = known_kinds();
    for template in TEMPLATES {
        let typical: Vec<&str> = template
            .typical
            .iter()
            .copied()
            .filter(|kind| known.contains(kind))
            .collect();
        for perspective in Perspective::ALL {
            let fills = |kind: &str| {
                kinds_for(template, |topic| {
                    template
                        .objective_for(topic)
                        .is_some_and(|o| o.perspective == perspective)
                })
                .contains(&kind)
            };
            for kind in known.iter().copied().filter(|kind| fills(kind)) {
                let mut kinds: Vec<&str> = typical
                    .iter()
                    .copied()
                    .filter(|k| !fills(k) || *k == kind)
                    .collect();
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
                match generate(template.name, &strings(&kinds), today()) {
                    Ok(starter) => assert_complete(template, &kinds, &starter),
                    // Taking the typical kinds out may leave another gap; then the error
                    // must not be about this perspective.
                    Err(InitError::Incomplete { problems, .. }) => {
                        let title = perspective.title().to_lowercase();
                        assert!(
                            !problems
                                .iter()
                                .any(|p| p.contains(&format!("the {title} perspective"))),
                            "{} from {kinds:?}: {kind} should fill {title}: {problems:?}",
                            template.name
                        );
                    }
                    Err(other) => panic!("{other}"),
                }
            }
        }
    }
}

#[test]
fn online_shop_without_an_orders_source_says_which_kinds_it_needs() {
    let error = generate("online-shop", &strings(&["zendesk"]), today()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("the online shop template cannot be built from zendesk: "),
        "{message}"
    );
    assert!(
        message.contains("it needs an orders or payments source: stripe or shopify")
            || message.contains("it needs an orders or payments source: shopify or stripe"),
        "{message}"
    );
}

#[test]
fn missing_perspective_names_the_kinds_that_fill_it() {
    let error = generate("online-shop", &strings(&["shopify"]), today()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("it needs a source for the learning & growth perspective: "),
        "{message}"
    );
    let (_, kinds) = message
        .split_once("learning & growth perspective: ")
        .expect("checked above");
    assert!(
        kinds.contains("zendesk") && kinds.contains("freshdesk"),
        "{message}"
    );
}

#[test]
fn a_kind_with_nothing_to_measure_is_named() {
    let error = generate(
        "services",
        &strings(&["pipedrive", "freshdesk", "shopify"]),
        today(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("shopify has nothing to measure in it"),
        "{message}"
    );
}

#[test]
fn unknown_template_lists_the_templates() {
    let message = generate("bakery", &strings(&["stripe"]), today())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "unknown template \"bakery\" (templates: online-shop, subscription, services)"
    );
}

#[test]
fn unknown_kind_lists_the_kinds_this_build_knows() {
    let message = generate("online-shop", &strings(&["stripe", "magento"]), today())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("unknown source kind \"magento\" in --sources (kinds: "),
        "{message}"
    );
    for (kind, _) in SourceKind::ALL {
        if SNIPPETS.iter().any(|snippet| snippet.kind == *kind) {
            assert!(message.contains(kind), "{kind} missing from: {message}");
        }
    }
}

#[test]
fn a_kind_named_twice_or_no_kind_is_refused() {
    let twice = generate("online-shop", &strings(&["stripe", " stripe"]), today()).unwrap_err();
    assert_eq!(twice.to_string(), "--sources names stripe twice");
    let none = generate("online-shop", &[], today()).unwrap_err();
    assert!(
        none.to_string().starts_with("--sources names no source"),
        "{none}"
    );
}

#[test]
fn every_snippet_of_this_build_reads_only_streams_its_preset_offers() {
    for snippet in SNIPPETS {
        let Some(kind) = available(snippet.kind) else {
            continue;
        };
        let streams = crate::sources::presets::describe(kind).streams;
        for measure in snippet.measures {
            if let Calc::Records { stream, .. } = measure.calc {
                assert!(
                    stream.is_empty() || streams.contains(&stream),
                    "{}: {} reads {stream}, not one of {streams:?}",
                    snippet.kind,
                    measure.id
                );
            }
        }
    }
}

#[test]
fn formulas_read_measures_of_their_own_kind_and_ids_are_unique() {
    let mut ids = BTreeSet::new();
    for snippet in SNIPPETS {
        for measure in snippet.measures {
            assert!(
                measure.id.starts_with(&format!("{}_", snippet.kind)),
                "{} is not prefixed with its kind",
                measure.id
            );
            assert!(ids.insert(measure.id), "{} is defined twice", measure.id);
            if let Calc::Formula(formula) = measure.calc {
                for input in identifiers(formula) {
                    assert!(
                        snippet.measures.iter().any(|m| m.id == input),
                        "{}: {input} is no measure of {}",
                        measure.id,
                        snippet.kind
                    );
                }
            }
        }
    }
}

#[test]
fn template_drivers_name_objectives_one_perspective_lower() {
    for template in TEMPLATES {
        for objective in template.objectives {
            for driver in objective.drivers {
                let cause = template
                    .objectives
                    .iter()
                    .find(|o| o.id == *driver)
                    .unwrap_or_else(|| panic!("{}: no objective {driver}", template.name));
                assert_eq!(
                    layer(cause.perspective) + 1,
                    layer(objective.perspective),
                    "{}: {driver} → {}",
                    template.name,
                    objective.id
                );
            }
        }
    }
}

#[test]
fn starter_without_the_variables_set_fails_check_naming_them() {
    let starter = generate("online-shop", &strings(&["stripe", "zendesk"]), today())
        .expect("stripe and zendesk make an online shop starter");
    let error = crate::config::load_str(&starter.text, "starter", &BTreeMap::new()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("STRIPE_API_KEY"), "{message}");
    assert!(message.contains("ZENDESK_API_TOKEN"), "{message}");
    assert!(
        starter.text.contains("#   STRIPE_API_KEY"),
        "header lists the variable"
    );
}

#[test]
fn objectives_left_out_are_listed_with_what_would_measure_them() {
    let starter = generate("online-shop", &strings(&["shopify", "zendesk"]), today())
        .expect("shopify and zendesk make an online shop starter");
    assert!(
        starter
            .text
            .contains("#   Protect the margin (financial): "),
        "{}",
        starter.text
    );
    assert!(!starter.text.contains("[objectives.protect_margin]"));
}

#[test]
fn start_date_is_the_first_of_the_month_a_year_ago() {
    let starter = generate("online-shop", &strings(&["stripe", "zendesk"]), today())
        .expect("stripe and zendesk make an online shop starter");
    let settings = load(&starter);
    for source in settings.sources.values() {
        assert_eq!(source.start_date, NaiveDate::from_ymd_opt(2025, 3, 1));
    }
}

#[test]
fn benchmark_targets_are_written_and_size_targets_left_commented() {
    let starter = generate("subscription", &strings(&["stripe", "zendesk"]), today())
        .expect("stripe and zendesk make a subscription starter");
    let settings = load(&starter);
    let csat = settings
        .measure("zendesk_csat")
        .expect("CSAT is in the starter");
    let target = csat.target.as_ref().expect("CSAT has a benchmark target");
    assert_eq!((target.value, target.warn), (90.0, Some(80.0)));
    let revenue = settings
        .measure("stripe_subscription_revenue")
        .expect("subscription revenue is in the starter");
    assert!(revenue.target.is_none());
    assert!(starter.text.contains("# target = { value = YOUR_PLAN"));
}

static SPLIT: Template = Template {
    name: "split",
    title: "split",
    scorecard: "Split",
    typical: &[],
    needs: &[],
    objectives: &[
        Objective {
            id: "f1",
            name: "F1",
            perspective: Perspective::Financial,
            topics: &[],
            drivers: &["c1"],
        },
        Objective {
            id: "f2",
            name: "F2",
            perspective: Perspective::Financial,
            topics: &[],
            drivers: &["c2"],
        },
        Objective {
            id: "c1",
            name: "C1",
            perspective: Perspective::Customer,
            topics: &[],
            drivers: &["i1"],
        },
        Objective {
            id: "c2",
            name: "C2",
            perspective: Perspective::Customer,
            topics: &[],
            drivers: &["i2"],
        },
        Objective {
            id: "i1",
            name: "I1",
            perspective: Perspective::Internal,
            topics: &[],
            drivers: &["l1"],
        },
        Objective {
            id: "i2",
            name: "I2",
            perspective: Perspective::Internal,
            topics: &[],
            drivers: &["l2"],
        },
        Objective {
            id: "l1",
            name: "L1",
            perspective: Perspective::Learning,
            topics: &[],
            drivers: &[],
        },
        Objective {
            id: "l2",
            name: "L2",
            perspective: Perspective::Learning,
            topics: &[],
            drivers: &[],
        },
    ],
};

#[test]
fn place_joins_two_separate_chains_into_one_map() {
    let all: BTreeSet<&str> = SPLIT.objectives.iter().map(|o| o.id).collect();
    let placed = place(&SPLIT, &all);
    let parts: BTreeSet<usize> = components(&placed).into_iter().collect();
    assert_eq!(parts.len(), 1, "{placed:?}");
    // The bridge is one extra driver, not a rewiring.
    let drivers: usize = placed.iter().map(|p| p.drivers.len()).sum();
    assert_eq!(drivers, 7, "{placed:?}");
}

#[test]
fn place_rewires_around_left_out_objectives() {
    // c1 and i2 have no measures: f1 loses its driver, i1 drives nothing, c2 loses i2.
    let measured: BTreeSet<&str> = ["f1", "f2", "c2", "i1", "l1", "l2"].into();
    let placed = place(&SPLIT, &measured);
    let by_id: BTreeMap<&str, &Placed> = placed.iter().map(|p| (p.objective.id, p)).collect();
    assert_eq!(by_id["f1"].drivers, ["c2"], "driven by the customer row");
    assert!(by_id["c2"].drivers.contains(&"i1"), "{placed:?}");
    let parts: BTreeSet<usize> = components(&placed).into_iter().collect();
    assert_eq!(parts.len(), 1, "{placed:?}");
    for p in &placed {
        for driver in &p.drivers {
            assert_eq!(
                layer(by_id[driver].objective.perspective) + 1,
                layer(p.objective.perspective)
            );
        }
    }
}

/// Snippets of kinds this build cannot sync yet are not loaded by any other test: their
/// expressions must at least compile, and their settings read secrets from the environment.
#[test]
fn every_snippet_compiles_and_reads_secrets_from_the_environment() {
    use crate::measures::expr::Expr;
    for snippet in SNIPPETS {
        for measure in snippet.measures {
            let expressions = match measure.calc {
                Calc::Records { filter, value, .. } => [filter, value],
                Calc::Formula(formula) => [Some(formula), None],
            };
            for expression in expressions.into_iter().flatten() {
                Expr::parse(expression)
                    .unwrap_or_else(|error| panic!("{}: {expression}: {error}", measure.id));
            }
            if let Calc::Records {
                aggregate, value, ..
            } = measure.calc
            {
                let aggregate = crate::measures::Aggregate::parse(aggregate)
                    .unwrap_or_else(|| panic!("{}: aggregate {aggregate}", measure.id));
                assert_eq!(
                    value.is_none(),
                    aggregate == crate::measures::Aggregate::Count,
                    "{}: only a count goes without a value",
                    measure.id
                );
            }
        }
        for (key, value, _) in snippet.settings {
            let secret = [
                "api_key",
                "api_token",
                "access_token",
                "token",
                "client_secret",
                "refresh_token",
            ];
            if secret.contains(key) {
                assert!(
                    matches!(value, Value::Env(..)),
                    "{}.{key} is a secret but not read from the environment",
                    snippet.kind
                );
            }
        }
    }
}
