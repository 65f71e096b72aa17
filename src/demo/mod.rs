//! `scorekeeper demo`: the real daemon against built-in sandbox APIs on loopback.
//!
//! The sandbox ([`sandbox`]) serves a bakery's last 12 months through every API it imitates
//! (Stripe, Zendesk, Shopify, Freshdesk, Pipedrive, HubSpot, QuickBooks, Xero, Moodle,
//! TalentLMS), each under its own path prefix on one loopback server. The demo configuration (`config/demo.toml`, embedded in the binary) is
//! loaded through the normal loader with every sandboxed source's `base_url` replaced by an
//! environment override, so the demo exercises exactly the code paths of `scorekeeper run`.
//! The sandbox server is the one task spawned outside `app.rs`: it belongs to the demo, not
//! to the daemon.

pub mod sandbox;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::{self, RunOptions, Services};
use crate::cli::Failure;
use crate::config::{self, ConfigError, Settings};

/// The demo configuration, embedded so `scorekeeper demo` works from any folder.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The Stripe key the sandbox accepts (also in `config/demo.toml`).
pub const SANDBOX_API_KEY: &str = sandbox::STRIPE_API_KEY;
/// The seed of the sandbox's data: every demo shows the same bakery.
pub const SANDBOX_SEED: u64 = 7;

/// Loads the demo configuration (`config_path`, or the embedded one) with the `base_url` of
/// every source the sandbox serves pointed at the sandbox on `sandbox_address`, through the
/// environment overrides `SCOREKEEPER__SOURCES__<NAME>__BASE_URL` on top of `env`.
///
/// The configuration is read twice: once to learn its sources and their kinds, then with
/// the overrides.
///
/// # Errors
///
/// The configuration's problems, as `scorekeeper check` reports them.
pub fn load_config(
    config_path: Option<&Path>,
    sandbox_address: SocketAddr,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    let load = |env: &BTreeMap<String, String>| match config_path {
        Some(path) => config::load_with_env(path, env),
        None => config::load_str(DEMO_CONFIG, "config/demo.toml (embedded)", env),
    };
    let plain = load(env)?;
    let mut env = env.clone();
    for (name, source) in &plain.sources {
        let kind = source.kind.as_str();
        if sandbox::serves(kind) {
            env.insert(
                format!(
                    "SCOREKEEPER__SOURCES__{}__BASE_URL",
                    name.to_ascii_uppercase()
                ),
                sandbox::base_url(sandbox_address, kind),
            );
        }
    }
    load(&env)
}

/// Runs the demo until SIGTERM/ctrl-c.
pub async fn run(config_path: Option<&Path>) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the sandbox to a loopback port")?;
    let sandbox_address = sandbox
        .local_addr()
        .context("reading the sandbox address")?;
    let router = sandbox::router(chrono::Utc::now(), SANDBOX_SEED);
    let sandbox_token = shutdown.clone();
    let sandbox_task = tokio::spawn(sandbox::serve(sandbox, router, sandbox_token));

    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = load_config(config_path, sandbox_address, &env).map_err(Failure::Config)?;

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
        "scorekeeper demo: sandbox APIs at http://{sandbox_address}/{{{}}}, database {database}",
        sandbox::APIS.map(|api| api.kind).join(",")
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
