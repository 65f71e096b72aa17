//! Snippets for sales pipelines: Pipedrive and HubSpot.
//!
//! Fields follow the APIs' own objects, as synced:
//! - Pipedrive v2 deals (`status` open/won/lost, `value` in the deal's `currency`,
//!   `add_time`, `won_time`, `lost_time`, `close_time`):
//!   <https://developers.pipedrive.com/docs/api/v1/Deals#getDeals>
//! - HubSpot CRM deals (`createdAt`; `properties` as strings: `amount`, `dealstage`,
//!   `closedate`, `hs_is_closed_won` "true"/"false"; the default pipeline's closed
//!   stages are `closedwon` and `closedlost`):
//!   <https://developers.hubspot.com/docs/api/crm/deals>

use super::{Calc, Goal, Measure, Snippet, Topic, Unit, Value};

/// Pipedrive: deals.
pub static PIPEDRIVE: Snippet = Snippet {
    kind: "pipedrive",
    about: "Pipedrive: deals.",
    schedule: "0 0 * * * *",
    every: "every hour",
    stale_after: "6h",
    settings: &[
        (
            "company_domain",
            Value::Text("your-company"),
            "your-company.pipedrive.com",
        ),
        (
            "api_token",
            Value::Env(
                "PIPEDRIVE_API_TOKEN",
                "Pipedrive API token (Personal preferences → API)",
            ),
            "read from the environment",
        ),
    ],
    measures: &[
        Measure {
            id: "pipedrive_won_value",
            name: "Value of deals won",
            topic: Topic::Bookings,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "deals",
                time: "won_time",
                filter: Some("status == 'won'"),
                value: Some("value"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "Deal values are in each deal's own currency.",
        },
        Measure {
            id: "pipedrive_won_deals",
            name: "Deals won",
            topic: Topic::Acquisition,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "won_time",
                filter: Some("status == 'won'"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "pipedrive_average_deal",
            name: "Average deal won",
            topic: Topic::Acquisition,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "deals",
                time: "won_time",
                filter: Some("status == 'won'"),
                value: Some("value"),
                aggregate: "avg",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "pipedrive_closed_deals",
            name: "Deals closed (won or lost)",
            topic: Topic::SalesProcess,
            helper: true,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "close_time",
                filter: Some("status in ['won', 'lost']"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "pipedrive_closed_won",
            name: "Deals closed won",
            topic: Topic::SalesProcess,
            helper: true,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "close_time",
                filter: Some("status == 'won'"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "pipedrive_win_rate",
            name: "Win rate",
            topic: Topic::SalesProcess,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula("pipedrive_closed_won / pipedrive_closed_deals * 100"),
            goal: Goal::Benchmark {
                value: 30.0,
                up: true,
                warn: 20.0,
            },
            note: "Won among the deals closed in the month.",
        },
        Measure {
            id: "pipedrive_new_deals",
            name: "New deals",
            topic: Topic::SalesProcess,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "add_time",
                filter: None,
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
    ],
};

/// HubSpot: deals.
pub static HUBSPOT: Snippet = Snippet {
    kind: "hubspot",
    about: "HubSpot CRM: deals.",
    schedule: "0 0 * * * *",
    every: "every hour",
    stale_after: "6h",
    settings: &[(
        "access_token",
        Value::Env(
            "HUBSPOT_ACCESS_TOKEN",
            "HubSpot private app access token with crm.objects.deals.read",
        ),
        "read from the environment",
    )],
    measures: &[
        Measure {
            id: "hubspot_won_value",
            name: "Value of deals won",
            topic: Topic::Bookings,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "deals",
                time: "properties.closedate",
                filter: Some("properties.hs_is_closed_won == 'true'"),
                value: Some("properties.amount"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "HubSpot sends properties as strings; amounts are read as numbers.",
        },
        Measure {
            id: "hubspot_won_deals",
            name: "Deals won",
            topic: Topic::Acquisition,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "properties.closedate",
                filter: Some("properties.hs_is_closed_won == 'true'"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "hubspot_average_deal",
            name: "Average deal won",
            topic: Topic::Acquisition,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "deals",
                time: "properties.closedate",
                filter: Some("properties.hs_is_closed_won == 'true'"),
                value: Some("properties.amount"),
                aggregate: "avg",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "hubspot_lost_deals",
            name: "Deals lost",
            topic: Topic::SalesProcess,
            helper: true,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "properties.closedate",
                filter: Some("properties.dealstage in ['closedlost']"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::None,
            note: "closedlost is the default pipeline's lost stage; other pipelines have their own\nstage ids (Settings → Objects → Deals → Pipelines): add them to the list.",
        },
        Measure {
            id: "hubspot_win_rate",
            name: "Win rate",
            topic: Topic::SalesProcess,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula(
                "hubspot_won_deals / (hubspot_won_deals + hubspot_lost_deals) * 100",
            ),
            goal: Goal::Benchmark {
                value: 30.0,
                up: true,
                warn: 20.0,
            },
            note: "",
        },
        Measure {
            id: "hubspot_new_deals",
            name: "New deals",
            topic: Topic::SalesProcess,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "deals",
                time: "createdAt",
                filter: None,
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
    ],
};
