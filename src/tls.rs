//! Optional TLS (rustls, ring): with `--tls-cert/--tls-key/--tls-ca` a
//! node's API and Raft ports speak TLS, and on the Raft port both sides
//! present a certificate signed by the cluster's CA (mutual TLS), as etcd's
//! `--peer-client-cert-auth` does. Clients of the API need only trust the
//! CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[derive(Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Certificate chain (PEM) naming this host; with --tls-key and --tls-ca, every port speaks TLS.
    #[arg(long, env = "RAFTCART_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, env = "RAFTCART_TLS_KEY", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) that signed the members' certificates.
    #[arg(long, env = "RAFTCART_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The loaded certificates, or None when TLS is off.
    pub fn load(&self) -> anyhow::Result<Option<Tls>> {
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Tls::load(cert, key, ca).map(Some),
            (None, None, None) => Ok(None),
            _ => bail!("TLS needs all three of --tls-cert, --tls-key and --tls-ca"),
        }
    }
}

pub struct Tls {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .with_context(|| format!("{} holds an unusable CA certificate", path.display()))?;
    }
    Ok(roots)
}

impl Tls {
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<Tls> {
        Ok(Tls {
            chain: read_certs(cert)?,
            key: PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading a private key from {}", key.display()))?,
            roots: Arc::new(read_roots(ca)?),
        })
    }

    /// The Raft port: peers must present a certificate the CA signed.
    pub fn peer_server(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .context("building the peer certificate verifier")?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("the TLS certificate and key do not go together")?;
        Ok(Arc::new(config))
    }

    /// The API port and the gateway: clients need no certificate.
    pub fn api_server(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("the TLS certificate and key do not go together")?;
        Ok(Arc::new(config))
    }

    /// Calls to other members' Raft ports: trusts the CA, presents this
    /// node's certificate.
    pub fn peer_client(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .context("the TLS certificate and key do not go together")?;
        Ok(builder.use_preconfigured_tls(config))
    }

    /// Calls to members' API ports: trusts the CA.
    pub fn api_client(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        roots_client(builder, self.roots.clone())
    }
}

fn roots_client(
    builder: reqwest::ClientBuilder,
    roots: Arc<RootCertStore>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(builder.use_preconfigured_tls(config))
}

/// A client that trusts the CA in `ca` (PEM), for `raftcart cluster`.
pub fn trust_ca(
    builder: reqwest::ClientBuilder,
    ca: &Path,
) -> anyhow::Result<reqwest::ClientBuilder> {
    roots_client(builder, Arc::new(read_roots(ca)?))
}
