//! Process-wide TLS setup: reqwest and sqlx both use rustls with the `ring` provider,
//! chosen over aws-lc because it builds much faster and needs no C toolchain beyond cc.

/// Installs rustls' `ring` provider as the process default. Safe to call many times.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
