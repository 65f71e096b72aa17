//! Time limit of read requests: a `GET` or `HEAD` that has no answer after
//! [`READ_TIMEOUT`] (a stalled database, a lock held too long) gets 503 with the API's
//! JSON error, and its handler is dropped, so stuck requests do not pile up.
//! Write calls are not limited here: `POST /api/v1/sources/{name}/sync` runs a whole sync.
//! Bodies are limited in `mod.rs`; the request head by hyper (431 past its buffer).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a read request may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The middleware; `limit` is [`READ_TIMEOUT`] outside tests.
pub async fn read_deadline(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                path,
                limit_s = limit.as_secs_f64(),
                "Request took too long; answered 503"
            );
            super::api::ApiError::Timeout(limit.as_secs()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    #[tokio::test]
    async fn a_slow_read_gets_503_and_a_quick_one_its_answer() {
        crate::tls::install_crypto_provider();
        let router = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                })
                .post(|| async { "written" }),
            )
            .route("/quick", get(|| async { "here" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(100),
                read_deadline,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let slow = client
            .get(format!("http://{address}/slow"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(slow.status().as_u16(), 503);
        let body = slow.text().await.expect("body");
        assert!(body.contains("\"code\":\"timeout\""), "{body}");
        let quick = client
            .get(format!("http://{address}/quick"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(quick.text().await.expect("body"), "here");
        let written = client
            .post(format!("http://{address}/slow"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            written.status().as_u16(),
            200,
            "writes are not limited here"
        );
        server.abort();
    }
}
