//! The routes that show the node from outside: `/metrics`, the live page
//! (`/ui`) and the data it polls (`/cluster/node`, `/cluster/overview`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures::future::join_all;
use serde_json::{json, Value};

use super::state::AppState;

/// How long the live page's data waits for each other member.
const MEMBER_WAIT: Duration = Duration::from_millis(700);

pub async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics
            .render(s.executor.raft(), s.executor.read_index_counts()),
    )
        .into_response()
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("live_page.html"))
}

/// This node's status and counters: one member's part of the live page.
pub async fn node_stats(State(s): State<AppState>) -> Response {
    cross_origin(Json(this_node(&s)).into_response())
}

fn this_node(s: &AppState) -> Value {
    let (requests, checkouts) = s.metrics.totals();
    json!({
        "up": true,
        "status": s.status(),
        "requests_total": requests,
        "checkouts_total": checkouts.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

/// Every member's status and counters as this node can reach them now; a
/// member that does not answer in time is shown down, not waited for.
pub async fn overview(State(s): State<AppState>, headers: HeaderMap) -> Response {
    // Where the members require the token for this route, they require it
    // for theirs too: pass on the caller's.
    let auth = headers.get(header::AUTHORIZATION);
    let here = s.status();
    let asks = here.members.iter().map(|m| {
        let s = &s;
        async move {
            if m.id == here.node_id {
                return (m.id, this_node(s));
            }
            let url = format!("{}://{}/cluster/node", s.scheme, m.api_addr);
            let mut req = s.http.get(&url);
            if let Some(auth) = auth {
                req = req.header(header::AUTHORIZATION, auth.clone());
            }
            let answer = async { req.send().await?.json::<Value>().await };
            let stats = match tokio::time::timeout(MEMBER_WAIT, answer).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => json!({ "up": false, "error": e.to_string() }),
                Err(_) => json!({ "up": false, "error": "no answer in time" }),
            };
            (m.id, stats)
        }
    });
    let members: BTreeMap<_, _> = join_all(asks).await.into_iter().collect();
    cross_origin(Json(json!({ "served_by": here.node_id, "members": members })).into_response())
}

/// The page falls back to another member when its own node is down; these
/// read-only routes let it.
fn cross_origin(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}
