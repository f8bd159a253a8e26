//! A steady checkout load for fault tests, and the check that the final
//! state is exactly what the paid orders imply.
//!
//! Data: USERS users with CREDIT each, ITEMS items with STOCK each at price
//! 1, ORDERS orders of two random items (cost 2). Users hold less credit
//! than their orders cost, so both successful and refused checkouts occur.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Cluster;

pub const USERS: u64 = 100;
pub const CREDIT: u64 = 10;
pub const ITEMS: u64 = 20;
pub const STOCK: u64 = 1000;
pub const ORDERS: u64 = 1500;
const WORKERS: u64 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// 2xx: committed.
    Paid,
    /// 4xx: refused, nothing changed.
    Refused,
    /// Timeout, cut connection or 5xx: may or may not have happened.
    Unknown,
}

pub struct LoadResult {
    pub fates: BTreeMap<u64, Fate>,
    /// When each successful checkout was acknowledged.
    pub acked_at: Vec<Instant>,
    /// When the fault was injected.
    pub fault_at: Instant,
}

impl LoadResult {
    /// The longest stretch without an acknowledged write, from the first
    /// acknowledgement to the last.
    pub fn longest_gap(&self) -> Duration {
        let mut t = self.acked_at.clone();
        t.sort();
        t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// From the fault to the first write acknowledged after it.
    pub fn first_write_after_fault(&self) -> Option<Duration> {
        self.acked_at
            .iter()
            .filter(|t| **t > self.fault_at)
            .min()
            .map(|t| *t - self.fault_at)
    }

    pub fn count(&self, fate: Fate) -> usize {
        self.fates.values().filter(|f| **f == fate).count()
    }
}

pub async fn populate(c: &Cluster) {
    for path in [
        format!("/payment/batch_init/{USERS}/{CREDIT}"),
        format!("/stock/batch_init/{ITEMS}/{STOCK}/1"),
        format!("/orders/batch_init/{ORDERS}/{ITEMS}/{USERS}/1"),
    ] {
        let (s, v) = c.post(&path).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
}

/// Checks out every order once, WORKERS at a time, through the gateway.
/// Once `fault_after` checkouts are acknowledged, `fault` runs (once).
pub async fn run(c: &Cluster, fault_after: usize, fault: impl FnOnce()) -> LoadResult {
    run_observed(c, fault_after, fault, |_| {}).await
}

/// As `run`, telling `on_ack` each order whose checkout was acknowledged.
pub async fn run_observed(
    c: &Cluster,
    fault_after: usize,
    fault: impl FnOnce(),
    on_ack: impl Fn(u64) + Send + Sync + 'static,
) -> LoadResult {
    let on_ack = Arc::new(on_ack);
    let fates = Arc::new(Mutex::new(BTreeMap::new()));
    let acked_at = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (fates, acked_at, next) = (fates.clone(), acked_at.clone(), next.clone());
        let on_ack = on_ack.clone();
        let (http, gateway) = (c.http.clone(), c.gateway());
        workers.push(tokio::spawn(async move {
            loop {
                let order = next.fetch_add(1, Ordering::SeqCst);
                if order >= ORDERS {
                    return;
                }
                let resp = http
                    .post(format!("{gateway}/orders/checkout/{order}"))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                let fate = match resp.map(|r| r.status()) {
                    Ok(s) if s.is_success() => Fate::Paid,
                    Ok(s) if s.is_client_error() => Fate::Refused,
                    _ => Fate::Unknown,
                };
                if fate == Fate::Paid {
                    acked_at.lock().unwrap().push(Instant::now());
                    on_ack(order);
                }
                fates.lock().unwrap().insert(order, fate);
            }
        }));
    }
    let mut fault = Some(fault);
    let mut fault_at = Instant::now();
    while !workers.iter().all(|w| w.is_finished()) {
        if fault.is_some() && acked_at.lock().unwrap().len() >= fault_after {
            fault_at = Instant::now();
            (fault.take().unwrap())();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        fault.is_none(),
        "the load ended before the fault was injected"
    );
    let fates = std::mem::take(&mut *fates.lock().unwrap());
    let acked_at = std::mem::take(&mut *acked_at.lock().unwrap());
    LoadResult {
        fates,
        acked_at,
        fault_at,
    }
}

/// Every acknowledged checkout is paid, no refused one is, and every
/// user's credit and item's stock is exactly what the paid orders imply.
pub async fn check_state(c: &Cluster, result: &LoadResult) {
    let mut spent: BTreeMap<String, u64> = BTreeMap::new();
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for order in 0..ORDERS {
        let (s, o) = c.get(&format!("/orders/find/{order}")).await;
        assert_eq!(s, 200, "order {order}: {o}");
        let paid = o["paid"].as_bool().unwrap();
        match result.fates[&order] {
            Fate::Paid => assert!(paid, "order {order} was acknowledged but is not paid"),
            Fate::Refused => assert!(!paid, "order {order} was refused but is paid"),
            Fate::Unknown => {}
        }
        if paid {
            *spent
                .entry(o["user_id"].as_str().unwrap().to_string())
                .or_default() += o["total_cost"].as_u64().unwrap();
            for line in o["items"].as_array().unwrap() {
                *sold
                    .entry(line[0].as_str().unwrap().to_string())
                    .or_default() += line[1].as_u64().unwrap();
            }
        }
    }
    for user in 0..USERS {
        let user = user.to_string();
        let spent = spent.get(&user).copied().unwrap_or(0);
        assert_eq!(
            super::credit(c, &user).await,
            CREDIT - spent,
            "user {user}'s credit after paying {spent}"
        );
    }
    for item in 0..ITEMS {
        let item = item.to_string();
        let sold = sold.get(&item).copied().unwrap_or(0);
        assert_eq!(
            super::stock(c, &item).await,
            STOCK - sold,
            "item {item}'s stock after selling {sold}"
        );
    }
}
