//! TLS fixtures: certificates made at test time with the `openssl` command (a CA, a server and a
//! client certificate it signed, and an unrelated CA), TLS-only `redis-server`s and clusters
//! that use them (and Sentinel groups: `SentinelGroup::start_tls`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use super::{RedisCluster, RedisServer, Setup};

/// Certificates and PKCS#8 keys (EC P-256, valid for 2 days) in a temporary directory, removed
/// with the value.
pub struct TestCertificates {
    pub ca: PathBuf,
    /// A CA that signed nothing: trusting only it, a client refuses the servers.
    pub other_ca: PathBuf,
    /// Signed by `ca`, for `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Signed by `ca`, for client authentication.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Removed with the value.
    _dir: tempfile::TempDir,
}

/// Whether a server asks clients for a certificate: `--tls-auth-clients yes|optional`.
pub enum ClientAuth {
    Required,
    Optional,
}

const CA: &str = "\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

const SERVER: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
";

const CLIENT: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
";

impl TestCertificates {
    pub fn make() -> Self {
        // rustls panics on building a client unless a crypto provider is installed.
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (ca, ca_key) = certificate(dir.path(), "ca", CA, None);
        let (other_ca, _) = certificate(dir.path(), "other-ca", CA, None);
        let (server_cert, server_key) =
            certificate(dir.path(), "server", SERVER, Some((&ca, &ca_key)));
        let (client_cert, client_key) =
            certificate(dir.path(), "client", CLIENT, Some((&ca, &ca_key)));
        TestCertificates {
            ca,
            other_ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            _dir: dir,
        }
    }

    /// What a client presents (the client certificate) and trusts (`ca`), as PEM.
    pub fn client_tls(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read(&self.client_cert),
                client_key: read(&self.client_key),
            }),
            root_cert: Some(read(&self.ca)),
        }
    }

    /// A TLS-only server with the server certificate, trusting `ca`, presenting the client
    /// certificate when it connects to another server itself (to its primary, a cluster peer).
    fn server(&self, auth: ClientAuth) -> Setup {
        let auth = match auth {
            ClientAuth::Required => "yes",
            ClientAuth::Optional => "optional",
        };
        let mut extra = vec!["--tls-auth-clients".to_string(), auth.to_string()];
        for (option, path) in [
            ("--tls-cert-file", &self.server_cert),
            ("--tls-key-file", &self.server_key),
            ("--tls-ca-cert-file", &self.ca),
            ("--tls-client-cert-file", &self.client_cert),
            ("--tls-client-key-file", &self.client_key),
        ] {
            extra.extend([option.to_string(), text(path)]);
        }
        Setup {
            extra,
            tls: Some(self.client_tls()),
            ..Setup::default()
        }
    }

    /// Like `server` (client certificates optional), replicating over TLS too: what the data
    /// nodes of a TLS cluster or Sentinel group run with, and their Sentinels (which then talk
    /// TLS to the data nodes and to each other).
    pub(super) fn replicating_server(&self) -> Setup {
        let mut setup = self.server(ClientAuth::Optional);
        setup
            .extra
            .extend(["--tls-replication", "yes"].map(String::from));
        setup
    }

    /// `redis-cli`'s arguments to connect as the client.
    fn cli_args(&self) -> Vec<String> {
        let (ca, cert, key) = (
            text(&self.ca),
            text(&self.client_cert),
            text(&self.client_key),
        );
        ["--tls", "--cacert", &ca, "--cert", &cert, "--key", &key]
            .map(String::from)
            .to_vec()
    }
}

impl RedisServer {
    /// A TLS-only server (`--port 0 --tls-port P`); `url()` is `rediss://127.0.0.1:P` and
    /// `connection()` presents the client certificate.
    pub fn start_tls(certs: &TestCertificates, auth: ClientAuth) -> Self {
        Self::launch(certs.server(auth))
    }
}

impl RedisCluster {
    /// Like `start`, TLS-only: clients, the cluster bus and replication (client certificates
    /// optional); `endpoint()` lists `rediss://` seeds.
    pub fn start_tls(replicas: usize, certs: &TestCertificates) -> Self {
        let mut setup = certs.replicating_server();
        setup
            .extra
            .extend(["--tls-cluster", "yes"].map(String::from));
        Self::create(3, replicas, setup, &certs.cli_args())
    }
}

/// Makes `<name>.key` and `<name>.crt` in `dir` with the X.509 v3 `extensions`, signed by
/// `issuer` (certificate, key), or self-signed; answers their paths.
fn certificate(
    dir: &Path,
    name: &str,
    extensions: &str,
    issuer: Option<(&Path, &Path)>,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let request = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.crt"));
    let extfile = dir.join(format!("{name}.ext"));
    std::fs::write(&extfile, extensions).expect("a writable temporary file");
    openssl(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-out"])
            .arg(&key),
    );
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-subj", &format!("/CN=lockout test {name}")])
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(&request),
    );
    let mut sign = Command::new("openssl");
    sign.args(["x509", "-req", "-days", "2", "-in"])
        .arg(&request)
        .arg("-extfile")
        .arg(&extfile)
        .arg("-out")
        .arg(&cert);
    match issuer {
        None => sign.arg("-signkey").arg(&key),
        // Distinct serials for the certificates one CA signs.
        Some((issuer_cert, issuer_key)) => sign
            .arg("-CA")
            .arg(issuer_cert)
            .arg("-CAkey")
            .arg(issuer_key)
            .args(["-set_serial", &format!("0x{:x}", rand::random::<u64>())]),
    };
    openssl(&mut sign);
    (cert, key)
}

/// Runs an `openssl` command, panicking with its error output if it fails.
fn openssl(command: &mut Command) {
    let output = command
        .output()
        .expect("openssl must be installed (./run-tests installs it)");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("a certificate file made by openssl")
}

fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_string()
}
