//! The services business (agency, consultancy, studio): fee income and profitability,
//! driven by clients won and kept happy, driven by selling well, getting paid on time
//! and responding fast, driven by a skilled team.

use super::{Need, Objective, Template, Topic};
use crate::config::Perspective;

/// `--template services`.
pub static TEMPLATE: Template = Template {
    name: "services",
    title: "services business",
    scorecard: "Services business",
    typical: &["quickbooks", "pipedrive", "freshdesk"],
    needs: &[Need {
        what: "an invoicing or CRM source",
        topics: &[Topic::Billing, Topic::Bookings],
    }],
    objectives: &[
        Objective {
            id: "grow_fee_income",
            name: "Grow fee income",
            perspective: Perspective::Financial,
            topics: &[Topic::Billing, Topic::Bookings],
            drivers: &["win_clients", "keep_clients_happy"],
        },
        Objective {
            id: "improve_profitability",
            name: "Improve profitability",
            perspective: Perspective::Financial,
            topics: &[Topic::Margin],
            drivers: &["keep_clients_happy"],
        },
        Objective {
            id: "win_clients",
            name: "Win clients",
            perspective: Perspective::Customer,
            topics: &[Topic::Acquisition],
            drivers: &["sell_effectively"],
        },
        Objective {
            id: "keep_clients_happy",
            name: "Keep clients happy",
            perspective: Perspective::Customer,
            topics: &[Topic::Satisfaction, Topic::Clients],
            drivers: &["respond_fast", "get_paid_on_time"],
        },
        Objective {
            id: "sell_effectively",
            name: "Sell effectively",
            perspective: Perspective::Internal,
            topics: &[Topic::SalesProcess],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "get_paid_on_time",
            name: "Get paid on time",
            perspective: Perspective::Internal,
            topics: &[Topic::Collection],
            drivers: &["build_team_skills"],
        },
        Objective {
            id: "respond_fast",
            name: "Respond to clients fast",
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
