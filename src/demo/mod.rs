//! `scorekeeper demo`: the real daemon against built-in sandbox APIs on loopback.
//!
//! The sandbox serves a bakery's last 12 months of Stripe data ([`stripe_sandbox`]).
//! The demo configuration (`config/demo.toml`, embedded in the binary) is loaded through
//! the normal loader with the sandbox's address as an environment override, so the demo
//! exercises exactly the code paths of `scorekeeper run`. The sandbox server is the one
//! task spawned outside `app.rs`: it belongs to the demo, not to the daemon.

pub mod stripe_sandbox;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::app::{self, RunOptions, Services};
use crate::cli::Failure;
use crate::config;

/// The demo configuration, embedded so `scorekeeper demo` works from any folder.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The key the sandbox accepts (also in `config/demo.toml`).
pub const SANDBOX_API_KEY: &str = "sk_test_scorekeeper_demo";

/// Runs the demo until SIGTERM/ctrl-c.
pub async fn run(config_path: Option<&Path>) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the sandbox to a loopback port")?;
    let sandbox_address = sandbox
        .local_addr()
        .context("reading the sandbox address")?;
    let data = Arc::new(RwLock::new(stripe_sandbox::StripeData::bakery(
        chrono::Utc::now(),
        7,
    )));
    let sandbox_token = shutdown.clone();
    let sandbox_task = tokio::spawn(stripe_sandbox::serve(
        sandbox,
        data,
        SANDBOX_API_KEY.to_string(),
        sandbox_token,
    ));

    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert(
        "SCOREKEEPER__SOURCES__STRIPE__BASE_URL".into(),
        format!("http://{sandbox_address}"),
    );
    let settings = match config_path {
        Some(path) => config::load_with_env(path, &env),
        None => config::load_str(DEMO_CONFIG, "config/demo.toml (embedded)", &env),
    }
    .map_err(Failure::Config)?;

    let listener = match tokio::net::TcpListener::bind(settings.server.listen).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(listen = %settings.server.listen, "Address in use; the demo picks a free port instead");
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a free loopback port")?
        }
        Err(error) => {
            return Err(Failure::Runtime(
                anyhow::Error::new(error).context(format!("binding {}", settings.server.listen)),
            ));
        }
    };
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    let database = crate::secret::redact_url(settings.database.url.expose());
    let services = Services::prepare(settings).await?;
    println!(
        "scorekeeper demo: sandbox Stripe API at http://{sandbox_address}, database {database}"
    );
    println!(
        "Dashboard: http://{address}/   (API: http://{address}/api/v1/scorecard; ctrl-c to stop)"
    );
    app::run(
        services,
        listener,
        RunOptions {
            sync_at_start: true,
        },
        shutdown.clone(),
    )
    .await?;
    shutdown.cancel();
    let _ = sandbox_task.await;
    Ok(())
}
