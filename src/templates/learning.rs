//! Snippets for training: Moodle, TalentLMS and a CSV training log.
//!
//! Fields follow the assembled streams of DESIGN §2:
//! - `moodle.course_completions`: `core_completion_get_course_completion_status`'s
//!   `completionstatus` plus `courseid`, `userid` and `timecompleted` (unix seconds, null
//!   until completed):
//!   <https://docs.moodle.org/dev/Web_service_API_functions>
//! - `talentlms.course_completions`: the `users` entries of `GET /api/v1/courses/id:{id}`
//!   (`id`, `completion_percentage` as a string, `completed_on` in the portal's own date
//!   format and `completed_on_timestamp` in unix seconds, `enrolled_on_timestamp`) plus
//!   `course_id` and `course_name`: <https://www.talentlms.com/pages/docs/TalentLMS-API-Documentation.pdf>
//! - the CSV training log is the owner's own file, one row per person, course and day.

use super::{Calc, Goal, Measure, Snippet, Topic, Unit, Value};

/// Moodle: course completions.
pub static MOODLE: Snippet = Snippet {
    kind: "moodle",
    about: "Moodle: course completions of every enrolled user.",
    schedule: "0 0 3 * * *",
    every: "every day at 03:00",
    stale_after: "2d",
    settings: &[
        (
            "base_url",
            Value::Text("https://moodle.your-company.example"),
            "your Moodle site",
        ),
        (
            "token",
            Value::Env(
                "MOODLE_TOKEN",
                "Moodle web service token (Site administration → Server → Web services → Manage tokens)",
            ),
            "read from the environment",
        ),
    ],
    measures: &[
        Measure {
            id: "moodle_completions",
            name: "Courses completed",
            topic: Topic::Training,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "course_completions",
                time: "timecompleted",
                filter: Some("completed == true"),
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "moodle_people_trained",
            name: "People who completed a course",
            topic: Topic::Training,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "course_completions",
                time: "timecompleted",
                filter: Some("completed == true"),
                value: Some("userid"),
                aggregate: "count_distinct",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
    ],
};

/// TalentLMS: course completions.
pub static TALENTLMS: Snippet = Snippet {
    kind: "talentlms",
    about: "TalentLMS: course progress of every enrolled user.",
    schedule: "0 0 3 * * *",
    every: "every day at 03:00",
    stale_after: "2d",
    settings: &[
        (
            "domain",
            Value::Text("your-company.talentlms.com"),
            "your TalentLMS domain",
        ),
        (
            "api_key",
            Value::Env(
                "TALENTLMS_API_KEY",
                "TalentLMS API key (Account & Settings → Integrations → API)",
            ),
            "read from the environment",
        ),
    ],
    measures: &[
        Measure {
            id: "talentlms_completions",
            name: "Courses completed",
            topic: Topic::Training,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "course_completions",
                time: "completed_on_timestamp",
                filter: None,
                value: None,
                aggregate: "count",
            },
            goal: Goal::Yours { up: true },
            note: "completed_on_timestamp is empty until the course is completed.",
        },
        Measure {
            id: "talentlms_people_trained",
            name: "People who completed a course",
            topic: Topic::Training,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "course_completions",
                time: "completed_on_timestamp",
                filter: None,
                value: Some("id"),
                aggregate: "count_distinct",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "talentlms_progress",
            name: "Average progress of new enrolments",
            topic: Topic::Training,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Records {
                stream: "course_completions",
                time: "enrolled_on_timestamp",
                filter: None,
                value: Some("completion_percentage"),
                aggregate: "avg",
            },
            goal: Goal::Benchmark {
                value: 80.0,
                up: true,
                warn: 60.0,
            },
            note: "Progress so far of the people enrolled in the month.",
        },
    ],
};

/// A CSV training log kept by the owner.
pub static CSV: Snippet = Snippet {
    kind: "csv",
    about: "A training log kept as a CSV file: one row per person, course and day, e.g.\n  date,employee,course,hours\n  2026-03-02,ana,Returns handling,2.5",
    schedule: "0 0 * * * *",
    every: "every hour",
    stale_after: "2d",
    settings: &[
        (
            "path",
            Value::Text("data/training.csv"),
            "or url = \"https://...\" for a file served over HTTP",
        ),
        (
            "columns",
            Value::Raw(
                "{ date = \"date\", employee = \"string\", course = \"string\", hours = \"number\" }",
            ),
            "",
        ),
        (
            "key",
            Value::Raw("[\"date\", \"employee\", \"course\"]"),
            "the columns that identify a row",
        ),
    ],
    measures: &[
        Measure {
            id: "csv_training_hours",
            name: "Training hours",
            topic: Topic::Training,
            helper: false,
            unit: Unit::Fixed("hours"),
            calc: Calc::Records {
                stream: "",
                time: "date",
                filter: None,
                value: Some("hours"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "csv_people_trained",
            name: "People trained",
            topic: Topic::Training,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "",
                time: "date",
                filter: None,
                value: Some("employee"),
                aggregate: "count_distinct",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "csv_hours_per_person",
            name: "Training hours per person trained",
            topic: Topic::Training,
            helper: false,
            unit: Unit::Fixed("hours"),
            calc: Calc::Formula("csv_training_hours / csv_people_trained"),
            goal: Goal::Benchmark {
                value: 2.0,
                up: true,
                warn: 1.0,
            },
            note: "Two hours a month is about 24 hours a year, a common training budget.",
        },
    ],
};
