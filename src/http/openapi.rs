//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! Generated from the code: each handler's `#[utoipa::path]` (path, parameters, request
//! body, every status it answers with, doc comment) and each body type's
//! `#[derive(ToSchema)]` (fields and their `///` docs). Nothing here is written by hand
//! except what has no handler of this module tree to hang on: the bearer security scheme
//! and the dashboard page at `/`. The document is built once, on first request.
//! `tests/it/openapi/` checks that every route answers and is documented, and validates
//! real responses against this document.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::response::Response;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, RefOr, Required, ResponseBuilder, Schema, Type,
};
use utoipa::{Modify, OpenApi};

use super::{api, control, health, metrics};

/// The name of the bearer security scheme in the document.
pub const BEARER_SCHEME: &str = "api_token";

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scorekeeper",
        description = "The Balanced Scorecard kept by scorekeeper: perspectives, measures and their series, \
            alerts, sources and the strategy map, read as JSON; syncs and silences written with the bearer \
            `api_token`. Every error is `{\"error\": {\"code\", \"message\"}}` with a stable `code`."
    ),
    paths(
        api::scorecard,
        control::measures,
        api::series,
        control::strategy_map,
        control::alerts,
        control::silence,
        control::sources,
        control::sync,
        health::healthz,
        health::readyz,
        metrics::metrics,
        document,
    ),
    components(schemas(api::ErrorBody)),
    modifiers(&Additions),
    tags(
        (name = "scorecard", description = "The scorecard, measures, series and the strategy map"),
        (name = "alerts", description = "Alert states, history, deliveries and silences"),
        (name = "sources", description = "Sources, their sync state, and syncing now"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// What the derive cannot say: every field is always sent, the security scheme, and the
/// dashboard page (served by `dashboard`, whose handler is described here so that module
/// stays free to change).
struct Additions;

impl Modify for Additions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // The derive leaves `Option` fields out of `required`, but no body type skips a
        // field: an empty value is sent as `null`. Saying so lets clients rely on every
        // key being there (the contract test fails if one is ever left out).
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(object)) = schema {
                object.required = object.properties.keys().cloned().collect();
            }
        }
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The configured `server.api_token`, sent as `Authorization: Bearer <token>`. \
                         Without one configured, write endpoints answer 403.",
                    ))
                    .build(),
            ),
        );
        let text = |description: &str, media_types: &[&str]| {
            let mut response = ResponseBuilder::new().description(description);
            for media_type in media_types {
                response = response.content(
                    *media_type,
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                );
            }
            response.build()
        };
        let page = OperationBuilder::new()
            .tag("operations")
            .summary(Some("The dashboard"))
            .description(Some(
                "The scorecard as a web page, served by the daemon itself. A static page: \
                 its script reads the JSON API.",
            ))
            .response("200", text("The page", &["text/html; charset=utf-8"]))
            .build();
        let version = ParameterBuilder::new()
            .name("version")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The build's asset fingerprint, as the page names it"))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        let file = ParameterBuilder::new()
            .name("file")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The file's name, e.g. `app.js`"))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        let asset = OperationBuilder::new()
            .tag("operations")
            .summary(Some("A file of the dashboard"))
            .description(Some(
                "An embedded script, style sheet or icon, cacheable for a year.",
            ))
            .parameter(version)
            .parameter(file)
            .response(
                "200",
                text(
                    "The file",
                    &[
                        "text/javascript; charset=utf-8",
                        "text/css; charset=utf-8",
                        "image/svg+xml",
                    ],
                ),
            )
            .response(
                "404",
                ResponseBuilder::new()
                    .description("Another build's fingerprint, or no such file")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
            .build();
        let events = OperationBuilder::new()
            .tag("operations")
            .summary(Some("Sync notifications"))
            .description(Some(
                "Server-Sent Events: `event: sync` with the number of finished syncs as \
                 `data` (and `id`), first the current one, then one after each sync; a \
                 comment every 15 s. The stream stays open until the server shuts down.",
            ))
            .response("200", text("The event stream", &["text/event-stream"]))
            .build();
        openapi
            .paths
            .add_path_operation("/", vec![HttpMethod::Get], page);
        openapi
            .paths
            .add_path_operation("/assets/{version}/{file}", vec![HttpMethod::Get], asset);
        openapi
            .paths
            .add_path_operation("/api/v1/events", vec![HttpMethod::Get], events);
    }
}

/// The document as JSON, built on first use.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        ApiDoc::openapi()
            .to_json()
            .expect("the document is plain data: it always serializes"),
    )
});

/// This document.
///
/// The OpenAPI 3.1 description of every endpoint, generated from the code.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub async fn document() -> Response {
    api::json_response(DOCUMENT.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme_on_writes_only() {
        let document: serde_json::Value =
            serde_json::from_slice(&DOCUMENT).expect("the document is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["components"]["securitySchemes"][BEARER_SCHEME]["scheme"],
            "bearer"
        );
        let paths = document["paths"].as_object().expect("paths");
        let mut guarded = Vec::new();
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("a path item") {
                if operation.get("security").is_some() {
                    guarded.push(format!("{method} {path}"));
                }
            }
        }
        guarded.sort();
        assert_eq!(
            guarded,
            [
                "post /api/v1/alerts/{id}/silence",
                "post /api/v1/sources/{name}/sync"
            ]
        );
    }
}
