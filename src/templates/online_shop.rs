//! The online shop: sales and margin, driven by customers who come back and are
//! pleased, driven by orders that go through and fast support, driven by a skilled team.

use super::{Need, Objective, Template, Topic};
use crate::config::Perspective;

/// `--template online-shop`.
pub static TEMPLATE: Template = Template {
    name: "online-shop",
    title: "online shop",
    scorecard: "Online shop",
    typical: &["shopify", "stripe", "zendesk"],
    needs: &[Need {
        what: "an orders or payments source",
        topics: &[Topic::Sales],
    }],
    objectives: &[
        Objective {
            id: "grow_sales",
            name: "Grow sales",
            perspective: Perspective::Financial,
            topics: &[Topic::Sales],
            drivers: &["win_repeat_customers", "delight_customers"],
        },
        Objective {
            id: "protect_margin",
            name: "Protect the margin",
            perspective: Perspective::Financial,
            topics: &[Topic::Margin],
            drivers: &["win_repeat_customers"],
        },
        Objective {
            id: "win_repeat_customers",
            name: "Win customers who come back",
            perspective: Perspective::Customer,
            topics: &[Topic::Customers],
            drivers: &["smooth_orders"],
        },
        Objective {
            id: "delight_customers",
            name: "Delight customers",
            perspective: Perspective::Customer,
            topics: &[Topic::Satisfaction],
            drivers: &["answer_fast", "smooth_orders"],
        },
        Objective {
            id: "smooth_orders",
            name: "Get every order through",
            perspective: Perspective::Internal,
            topics: &[Topic::Payments, Topic::OrderQuality, Topic::Refunds],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "answer_fast",
            name: "Answer customers fast and right",
            perspective: Perspective::Internal,
            topics: &[Topic::Support],
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
