//! OS signals → the root `CancellationToken`.
//!
//! The first SIGTERM or ctrl-c cancels the root token: every task holds a child token
//! and stops at its next wait point, the page in flight commits, and `app` waits for the
//! tasks up to [`DRAIN_DEADLINE`]. A second signal exits at once with status 130.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long `app` waits for tasks to finish after shutdown was requested.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(8);

/// Waits for SIGTERM or ctrl-c.
async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "Cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "Cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Cancels `root` on the first signal and exits the process on the second. Returns when
/// `root` is cancelled by anyone.
pub async fn listen(root: CancellationToken) {
    tokio::select! {
        () = signal() => {
            tracing::info!("Shutdown requested; finishing the work in flight (signal again to exit at once)");
            root.cancel();
        }
        () = root.cancelled() => return,
    }
    signal().await;
    tracing::warn!("Second signal; exiting now");
    std::process::exit(130);
}
