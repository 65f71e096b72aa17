//! Snippets for the books: QuickBooks Online and Xero.
//!
//! Fields follow the APIs' own objects, as synced:
//! - QuickBooks invoices and payments (`TotalAmt`, `Balance` still owed, `TxnDate`,
//!   `CustomerRef.value`):
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice>,
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/payment>;
//!   `profit_and_loss` is assembled from the ProfitAndLoss report, one record per
//!   (row, month): `account`, `group` (Income, COGS, Expenses, ...), `month`, `amount`
//!   (DESIGN §2).
//! - Xero invoices (`Type` ACCREC for sales, ACCPAY for bills; `Status` DRAFT, SUBMITTED,
//!   AUTHORISED, PAID, VOIDED, DELETED; `Total`, `AmountDue`, `DateString` — `Date` is a
//!   `/Date(ms)/` literal — and `Contact.ContactID`):
//!   <https://developer.xero.com/documentation/api/accounting/invoices>

use super::{Calc, Goal, Measure, Snippet, Topic, Unit, Value};

/// QuickBooks Online: invoices, payments and the profit and loss report.
pub static QUICKBOOKS: Snippet = Snippet {
    kind: "quickbooks",
    about: "QuickBooks Online: invoices, payments and the profit and loss report.\nscorekeeper refreshes the OAuth2 access token itself and keeps the rotated refresh token.",
    schedule: "0 0 */2 * * *",
    every: "every 2 hours",
    stale_after: "12h",
    settings: &[
        (
            "realm_id",
            Value::Text("your-realm-id"),
            "the company id (shown in the app's URL and the OAuth2 callback)",
        ),
        (
            "client_id",
            Value::Env(
                "QUICKBOOKS_CLIENT_ID",
                "Intuit app client id (developer.intuit.com → your app → Keys and credentials)",
            ),
            "",
        ),
        (
            "client_secret",
            Value::Env("QUICKBOOKS_CLIENT_SECRET", "Intuit app client secret"),
            "",
        ),
        (
            "refresh_token",
            Value::Env(
                "QUICKBOOKS_REFRESH_TOKEN",
                "refresh token from authorizing the app for the company (com.intuit.quickbooks.accounting)",
            ),
            "used once; rotated tokens are kept in the database",
        ),
    ],
    measures: &[
        Measure {
            id: "quickbooks_invoiced",
            name: "Invoiced",
            topic: Topic::Billing,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "invoices",
                time: "TxnDate",
                filter: None,
                value: Some("TotalAmt"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "quickbooks_payments",
            name: "Payments received",
            topic: Topic::Billing,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "payments",
                time: "TxnDate",
                filter: None,
                value: Some("TotalAmt"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "quickbooks_collected",
            name: "Paid on the month's invoices",
            topic: Topic::Collection,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "invoices",
                time: "TxnDate",
                filter: None,
                value: Some("TotalAmt - Balance"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "quickbooks_collection_rate",
            name: "Invoiced amount collected",
            topic: Topic::Collection,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula("quickbooks_collected / quickbooks_invoiced * 100"),
            goal: Goal::Benchmark {
                value: 85.0,
                up: true,
                warn: 70.0,
            },
            note: "How much of each month's invoices is paid so far; with 30-day terms the last\nmonth keeps climbing for a few weeks.",
        },
        Measure {
            id: "quickbooks_customers",
            name: "Clients invoiced",
            topic: Topic::Clients,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "invoices",
                time: "TxnDate",
                filter: None,
                value: Some("CustomerRef.value"),
                aggregate: "count_distinct",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "quickbooks_income",
            name: "Income",
            topic: Topic::Margin,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "profit_and_loss",
                time: "month",
                filter: Some("group == 'Income'"),
                value: Some("amount"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "quickbooks_cost_of_sales",
            name: "Cost of goods sold",
            topic: Topic::Margin,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "profit_and_loss",
                time: "month",
                filter: Some("group == 'COGS'"),
                value: Some("amount"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "quickbooks_expenses",
            name: "Operating expenses",
            topic: Topic::Margin,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "profit_and_loss",
                time: "month",
                filter: Some("group == 'Expenses'"),
                value: Some("amount"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "quickbooks_gross_margin",
            name: "Gross margin",
            topic: Topic::Margin,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula(
                "(quickbooks_income - quickbooks_cost_of_sales) / quickbooks_income * 100",
            ),
            goal: Goal::Benchmark {
                value: 40.0,
                up: true,
                warn: 30.0,
            },
            note: "",
        },
        Measure {
            id: "quickbooks_operating_margin",
            name: "Operating margin",
            topic: Topic::Margin,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula(
                "(quickbooks_income - quickbooks_cost_of_sales - quickbooks_expenses) / quickbooks_income * 100",
            ),
            goal: Goal::Benchmark {
                value: 10.0,
                up: true,
                warn: 5.0,
            },
            note: "",
        },
    ],
};

/// Xero: invoices (sales and bills).
pub static XERO: Snippet = Snippet {
    kind: "xero",
    about: "Xero: invoices (sales invoices and bills).\nscorekeeper refreshes the OAuth2 access token itself and keeps the rotated refresh token.",
    schedule: "0 0 */2 * * *",
    every: "every 2 hours",
    stale_after: "12h",
    settings: &[
        (
            "tenant_id",
            Value::Text("your-tenant-id"),
            "the organisation's tenant id (GET https://api.xero.com/connections)",
        ),
        (
            "client_id",
            Value::Env(
                "XERO_CLIENT_ID",
                "Xero app client id (developer.xero.com → My Apps)",
            ),
            "",
        ),
        (
            "client_secret",
            Value::Env("XERO_CLIENT_SECRET", "Xero app client secret"),
            "",
        ),
        (
            "refresh_token",
            Value::Env(
                "XERO_REFRESH_TOKEN",
                "refresh token from authorizing the app (scopes accounting.transactions.read offline_access)",
            ),
            "used once; rotated tokens are kept in the database",
        ),
    ],
    measures: &[
        Measure {
            id: "xero_invoiced",
            name: "Invoiced",
            topic: Topic::Billing,
            helper: false,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "invoices",
                time: "DateString",
                filter: Some(XERO_SALES),
                value: Some("Total"),
                aggregate: "sum",
            },
            goal: Goal::Yours { up: true },
            note: "Sales invoices (ACCREC) that are approved or paid, by invoice date.",
        },
        Measure {
            id: "xero_collected",
            name: "Paid on the month's invoices",
            topic: Topic::Collection,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "invoices",
                time: "DateString",
                filter: Some(XERO_SALES),
                value: Some("Total - AmountDue"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "xero_collection_rate",
            name: "Invoiced amount collected",
            topic: Topic::Collection,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula("xero_collected / xero_invoiced * 100"),
            goal: Goal::Benchmark {
                value: 85.0,
                up: true,
                warn: 70.0,
            },
            note: "How much of each month's invoices is paid (or credited) so far; with 30-day\nterms the last month keeps climbing for a few weeks.",
        },
        Measure {
            id: "xero_customers",
            name: "Clients invoiced",
            topic: Topic::Clients,
            helper: false,
            unit: Unit::None,
            calc: Calc::Records {
                stream: "invoices",
                time: "DateString",
                filter: Some(XERO_SALES),
                value: Some("Contact.ContactID"),
                aggregate: "count_distinct",
            },
            goal: Goal::Yours { up: true },
            note: "",
        },
        Measure {
            id: "xero_bills",
            name: "Bills",
            topic: Topic::Margin,
            helper: true,
            unit: Unit::Money,
            calc: Calc::Records {
                stream: "invoices",
                time: "DateString",
                filter: Some("Type == 'ACCPAY' && Status in ['AUTHORISED', 'PAID']"),
                value: Some("Total"),
                aggregate: "sum",
            },
            goal: Goal::None,
            note: "",
        },
        Measure {
            id: "xero_margin_over_bills",
            name: "Margin over bills",
            topic: Topic::Margin,
            helper: false,
            unit: Unit::Fixed("%"),
            calc: Calc::Formula("(xero_invoiced - xero_bills) / xero_invoiced * 100"),
            goal: Goal::Benchmark {
                value: 20.0,
                up: true,
                warn: 10.0,
            },
            note: "Sales invoiced less bills received, as a share of sales: a cash view of\nmargin (payroll and bank fees paid outside bills are not in it).",
        },
    ],
};

/// Approved or paid sales invoices.
const XERO_SALES: &str = "Type == 'ACCREC' && Status in ['AUTHORISED', 'PAID']";
