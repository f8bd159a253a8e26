//! The HTTP API of docs/API.md, served by every node, with the operator's
//! routes under `/cluster`.
//!
//! Each handler reads its path, builds one command or query, and hands it
//! to the executor, which runs it on the leader (forwarding if need be).

mod admin_auth;
pub mod admin_token;
mod batch;
mod bench;
mod cluster;
#[cfg(feature = "failpoints")]
mod debug;
mod error;
mod handlers;
mod live_page;
mod params;
mod reply;
mod request_tracking;
mod state;

use axum::routing::{get, post};
use axum::{middleware, Router};

pub use state::AppState;

pub fn router(state: AppState) -> Router {
    use handlers::*;
    let executor = state.executor.clone();
    let routes = Router::new()
        .route("/stock/item/create/{price}", post(create_item))
        .route("/stock/find/{item_id}", get(find_item))
        .route("/stock/add/{item_id}/{amount}", post(add_stock))
        .route("/stock/subtract/{item_id}/{amount}", post(subtract_stock))
        .route(
            "/stock/batch_init/{n}/{stock}/{price}",
            post(batch_init_items),
        )
        .route("/payment/create_user", post(create_user))
        .route("/payment/find_user/{user_id}", get(find_user))
        .route("/payment/add_funds/{user_id}/{amount}", post(add_funds))
        .route("/payment/pay/{user_id}/{amount}", post(pay))
        .route(
            "/payment/pay/{user_id}/{order_id}/{amount}",
            post(pay_for_order),
        )
        .route("/payment/cancel/{user_id}/{order_id}", post(cancel))
        .route(
            "/payment/status/{user_id}/{order_id}",
            get(payment_status).post(payment_status),
        )
        .route("/payment/batch_init/{n}/{credit}", post(batch_init_users))
        .route("/orders/create/{user_id}", post(create_order))
        .route("/orders/find/{order_id}", get(find_order))
        .route(
            "/orders/addItem/{order_id}/{item_id}/{quantity}",
            post(add_item),
        )
        .route("/orders/addItem/{order_id}/{item_id}", post(add_one_item))
        .route(
            "/orders/removeItem/{order_id}/{item_id}",
            post(remove_item).delete(remove_item),
        )
        .route(
            "/orders/remove/{order_id}",
            post(remove_order).delete(remove_order),
        )
        .route("/orders/checkout/{order_id}", post(checkout))
        .route(
            "/orders/batch_init/{n}/{n_items}/{n_users}/{price}",
            post(batch_init_orders),
        )
        .merge(operator_routes(&state))
        .merge(read_only_routes(&state))
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_tracking::track,
        ))
        .with_state(state);
    // Each request of a batch is tracked (request id, metrics) on its own.
    let shop = routes.clone();
    routes.route(
        crate::batch::PATH,
        post(move |body| batch::run(shop.clone(), executor.clone(), body)),
    )
}

/// The routes that change or dump the cluster: admin token only.
/// `gateway::is_served` keeps them off the gateway.
fn operator_routes(state: &AppState) -> Router<AppState> {
    use cluster::*;
    let routes = Router::new()
        .route(
            "/cluster/add-learner/{id}/{api_addr}/{raft_addr}",
            post(add_learner),
        )
        .route("/cluster/promote/{id}", post(promote))
        .route("/cluster/transfer-leader", post(transfer_leader))
        .route("/cluster/transfer-leader/{id}", post(transfer_leader_to))
        .route("/cluster/remove/{id}", post(remove_member))
        .route("/cluster/snapshot", post(snapshot))
        .route("/cluster/backup", get(backup))
        .route("/cluster/bench/http", post(bench::http_only))
        .route("/cluster/bench/noop", post(bench::noop));
    // Test builds only: crash points (storage's `CRASH_POINTS`), the Raft
    // cut-off and the hold on joint membership entries.
    #[cfg(feature = "failpoints")]
    let routes = routes
        .route("/debug/crash-at/{name}", post(debug::crash_at))
        .route(
            "/debug/cut-off",
            post(debug::cut_off).delete(debug::lift_cut_off),
        )
        .route("/debug/cut-off/{id}", post(debug::cut_off_to))
        .route(
            "/debug/hold-joint",
            post(debug::hold_joint).delete(debug::lift_hold_joint),
        );
    routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        admin_auth::require_admin,
    ))
}

/// What shows the cluster without changing it: open unless `--auth-reads`.
fn read_only_routes(state: &AppState) -> Router<AppState> {
    use cluster::*;
    use live_page::*;
    Router::new()
        .route("/cluster/status", get(cluster_status))
        .route("/cluster/node", get(node_stats))
        .route("/cluster/overview", get(overview))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .route("/ui", get(page))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            admin_auth::require_admin_for_reads,
        ))
}
