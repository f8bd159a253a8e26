//! The admin plane: routes that change or dump the cluster answer only to
//! `Authorization: Bearer <admin token>`. Without it, 401; with a wrong
//! one (or on a node that has no token), 403; either way before the route
//! reads anything, so nothing changes.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::admin_token::AdminToken;
use super::error::ApiError;
use super::state::AppState;

/// Whether `headers` carry the admin token; the refusal otherwise.
pub fn check(token: Option<&AdminToken>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "this route needs the admin token: Authorization: Bearer <token> \
                      (`raftcart cluster ...` sends it; see --token-file)"
                .into(),
        });
    };
    let Some(presented) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "the Authorization header must be `Bearer <admin token>`".into(),
        });
    };
    let Some(token) = token else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: "this node has no admin token (--admin-token-file): its operator routes \
                      are disabled"
                .into(),
        });
    };
    if !token.matches(presented.trim_ascii()) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: "wrong admin token".into(),
        });
    }
    Ok(())
}

fn refused(e: ApiError) -> Response {
    let unauthorized = e.status == StatusCode::UNAUTHORIZED;
    let mut resp = e.into_response();
    if unauthorized {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// For the routes that change or dump the cluster.
pub async fn require_admin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(s.admin.as_deref(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => refused(e),
    }
}

/// For the read-only cluster routes: open unless the node runs with
/// `--auth-reads`.
pub async fn require_admin_for_reads(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !s.auth_reads {
        return next.run(req).await;
    }
    require_admin(State(s), req, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn the_token_is_required_and_must_match() {
        let token = AdminToken::new(b"s3cret-token");
        let status = |auth| check(Some(&token), &headers(auth)).map_err(|e| e.status);
        assert_eq!(status(None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(status(Some("s3cret-token")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(
            status(Some("Basic s3cret-token")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(Some("Bearer s3cret-tokem")),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(status(Some("Bearer ")), Err(StatusCode::FORBIDDEN));
        assert_eq!(status(Some("Bearer s3cret-token")), Ok(()));
    }

    #[test]
    fn a_node_without_a_token_refuses_every_operator_call() {
        let status = |auth| check(None, &headers(auth)).map_err(|e| e.status);
        assert_eq!(status(None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(status(Some("Bearer anything")), Err(StatusCode::FORBIDDEN));
    }
}
