//! TLS set up once per process: rustls needs a process-wide crypto provider before its first
//! configuration (Redis connections, HTTP clients); lockout uses `ring`.

use std::sync::Once;

/// Installs `ring` as the process's provider, once; every caller (the service, the CLI, a
/// program using the library) calls this before making a TLS configuration.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err: the program installed a provider of its own first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client's builder (HTTPS with the system's roots, or `SSL_CERT_FILE`): reqwest's
/// rustls takes the process's provider, and building a client before it is installed panics.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().tls_backend_rustls()
}
