//! The subscription software business: recurring revenue and efficiency, driven by
//! customers won and kept, driven by collecting every payment, resolving issues and
//! selling well, driven by a skilled team.

use super::{Need, Objective, Template, Topic};
use crate::config::Perspective;

/// `--template subscription`.
pub static TEMPLATE: Template = Template {
    name: "subscription",
    title: "subscription software",
    scorecard: "Subscription software",
    typical: &["stripe", "zendesk", "hubspot"],
    needs: &[Need {
        what: "a subscription billing source",
        topics: &[Topic::Recurring, Topic::Billing],
    }],
    objectives: &[
        Objective {
            id: "grow_recurring_revenue",
            name: "Grow recurring revenue",
            perspective: Perspective::Financial,
            topics: &[Topic::Recurring, Topic::Billing, Topic::Bookings],
            drivers: &["keep_customers", "win_customers"],
        },
        Objective {
            id: "run_efficiently",
            name: "Run efficiently",
            perspective: Perspective::Financial,
            topics: &[Topic::Margin],
            drivers: &["keep_customers"],
        },
        Objective {
            id: "keep_customers",
            name: "Keep customers happy and subscribed",
            perspective: Perspective::Customer,
            topics: &[Topic::Retention, Topic::Satisfaction, Topic::Clients],
            drivers: &["resolve_issues_fast", "collect_every_payment"],
        },
        Objective {
            id: "win_customers",
            name: "Win new customers",
            perspective: Perspective::Customer,
            topics: &[Topic::Acquisition],
            drivers: &["sell_effectively"],
        },
        Objective {
            id: "collect_every_payment",
            name: "Collect every payment",
            perspective: Perspective::Internal,
            topics: &[Topic::Payments, Topic::Collection],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "resolve_issues_fast",
            name: "Resolve issues fast",
            perspective: Perspective::Internal,
            topics: &[Topic::Support],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "sell_effectively",
            name: "Sell effectively",
            perspective: Perspective::Internal,
            topics: &[Topic::SalesProcess],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "build_team_skills",
            name: "Build a skilled team",
            perspective: Perspective::Learning,
            topics: &[Topic::TeamSkills, Topic::Training],
            drivers: &[],
        },
    ],
};
