//! `raftcart cluster backup --out FILE`: fetches a consistent copy of the
//! data from a node and writes it where asked, checked and synced.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use raftcart_storage::Backup;

use super::target::Target;

pub async fn to_file(target: &Target, out: &Path, json: bool) -> anyhow::Result<()> {
    // Copying the whole state machine can take a while on a big store.
    let http = target.client(Duration::from_secs(300))?;
    let url = target.url(&target.addr, "/cluster/backup");
    let resp = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} is unreachable"))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        bail!(
            "{url}: {} ({status})",
            body["error"].as_str().unwrap_or("no backup")
        );
    }
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{url} cut the backup short"))?;
    // Checked before it is written: a damaged copy must not pass for a
    // backup.
    let backup = Backup::decode(&bytes).context("the node sent a damaged backup")?;
    write_synced(out, &bytes).with_context(|| format!("writing {}", out.display()))?;

    let summary = backup.summary();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": out.display().to_string(),
                "bytes": bytes.len(),
                "applied_index": backup.applied_index(),
                "records": summary,
            })
        );
    } else {
        println!(
            "backup at log index {}: {} users, {} items, {} orders -> {} ({} bytes)",
            backup
                .applied_index()
                .map_or("-".to_string(), |i| i.to_string()),
            summary.users,
            summary.items,
            summary.orders,
            out.display(),
            bytes.len()
        );
    }
    Ok(())
}

/// Written beside the target, synced, then renamed over it: a crash leaves
/// the old file or the new one, never half of one.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
