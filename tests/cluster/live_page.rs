//! The live page in a real browser (headless Chromium): it shows the
//! leader, throws no script error, and still works with a node down.
//! Screenshots are left in the test's temp dir under the cargo target dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::Cluster;

/// `RAFTCART_CHROMIUM`, else `chromium` on the PATH (scripts/prereqs.sh
/// installs Debian's package).
fn chromium() -> String {
    std::env::var("RAFTCART_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

fn browse(url: &str, args: &[String]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1100,650",
            // Virtual time runs the page's polling for a few seconds.
            "--virtual-time-budget=6000",
        ])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} ({e}): install chromium (scripts/prereqs.sh does) \
                 or set RAFTCART_CHROMIUM",
                chromium()
            )
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rendered DOM after the page ran, and a screenshot of it.
fn load(url: &str, screenshot: &Path) -> String {
    browse(url, &[format!("--screenshot={}", screenshot.display())]);
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    browse(url, &["--dump-dom".to_string()])
}

fn shows_leader(dom: &str, leader: u64) {
    assert!(
        !dom.contains("data-js-error"),
        "the page reported a script error: {dom}"
    );
    assert!(
        dom.contains(&format!("data-leader=\"{leader}\"")),
        "the page does not show leader {leader}: {dom}"
    );
    assert!(dom.contains(&format!("leader: <b>node {leader}</b>")));
}

fn shot(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("live_page");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn live_page_shows_the_leader_and_survives_a_node_down() {
    let c = Cluster::start(22840, &["--no-restart"]).await;
    let leader = c.wait_for_leader(Duration::from_secs(30)).await;
    // Some traffic for the charts.
    for _ in 0..20 {
        assert_eq!(c.post("/payment/create_user").await.0, 200);
    }

    let dom = load(&format!("{}/ui", c.gateway()), &shot("all-up.png"));
    shows_leader(&dom, leader);
    assert!(dom.contains("3 of 3 nodes answering"), "{dom}");

    // A follower down: the page, served by another node, shows it down.
    let down = (1..=3).find(|id| *id != leader).unwrap();
    let serving = (1..=3).find(|id| *id != leader && *id != down).unwrap();
    c.kill_node(down);
    let url = format!("{}/", c.node_url(serving));
    let dom = load(&url, &shot("follower-down.png"));
    shows_leader(&dom, leader);
    assert!(dom.contains("2 of 3 nodes answering"), "{dom}");
    assert!(dom.contains("<td class=\"text\">down</td>"), "{dom}");
}
