//! Where `raftcart cluster ...` sends its requests and with what
//! credentials: a node's API address, the admin token, and the CA that
//! signed the nodes' certificates when they speak TLS.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::secrets::{self, ADMIN_TOKEN_FILE};

#[derive(Args, Debug)]
pub struct Target {
    /// Any node's API address.
    #[arg(long, default_value = "http://127.0.0.1:8001", env = "RAFTCART_ADDR")]
    pub addr: String,
    /// File holding the admin token (else RAFTCART_ADMIN_TOKEN, else DATA_DIR/admin.token).
    #[arg(long, env = "RAFTCART_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The data dir of `raftcart up`, where it keeps admin.token.
    #[arg(long, default_value = "./data", env = "RAFTCART_DATA_DIR")]
    pub data_dir: PathBuf,
    /// CA certificate (PEM) that signed the nodes' certificates: reach them over https.
    #[arg(long, env = "RAFTCART_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl Target {
    /// The admin token, from the first of: --token-file,
    /// RAFTCART_ADMIN_TOKEN, DATA_DIR/admin.token. None if none is set
    /// (the read-only routes need none unless the nodes run --auth-reads).
    pub fn token(&self) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(path) = &self.token_file {
            return secrets::read(path, "admin token").map(Some);
        }
        if let Ok(token) = std::env::var("RAFTCART_ADMIN_TOKEN") {
            return Ok(Some(token.trim().as_bytes().to_vec()));
        }
        let in_data_dir = self.data_dir.join(ADMIN_TOKEN_FILE);
        if in_data_dir.exists() {
            return secrets::read(&in_data_dir, "admin token").map(Some);
        }
        Ok(None)
    }

    /// A client that presents the admin token (if any) on every request.
    pub fn client(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        let mut headers = HeaderMap::new();
        if let Some(token) = self.token()? {
            let mut bearer = b"Bearer ".to_vec();
            bearer.extend_from_slice(&token);
            let mut value = HeaderValue::from_bytes(&bearer)
                .context("the admin token must be visible ASCII")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers);
        let builder = match &self.tls_ca {
            Some(ca) => crate::tls::trust_ca(builder, ca)?,
            None => builder,
        };
        builder.build().context("building the HTTP client")
    }

    /// The URL of `path` on `addr` (HOST:PORT, or a URL with a scheme).
    pub fn url(&self, addr: &str, path: &str) -> String {
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.to_string()
        } else if self.tls_ca.is_some() {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        format!("{}{path}", base.trim_end_matches('/'))
    }
}
