//! Upgrades and subscriptions behind the application's authorization step ([`Authorizer`]):
//! a refusal rejects the request with [`Refused`], which [`recover`](crate::recover) answers.

use crate::{rejection_response, request, NotAnUpgrade, RequestParts, WsConfig};
use hub_core::{AuthRequest, Authorizer, ConnectOptions, Hub, Refusal, RequestHead};
use std::future::Future;
use warp::reply::Response;
use warp::Filter;

/// An authorization step's refusal (or a 500 for a subprotocol the client did not offer), as
/// a warp rejection; [`recover`](crate::recover) answers it with the refusal's status, headers
/// and body. Already counted in the hub's stats.
#[derive(Debug)]
pub struct Refused(pub Refusal);

impl warp::reject::Reject for Refused {}

impl RequestParts {
    /// The request head as an authorization step sees it (without the offered subprotocols).
    pub fn auth_request(&self) -> AuthRequest {
        hub_hyper::response::auth_request(
            &self.method,
            self.path.as_str(),
            self.query.as_deref(),
            &self.headers,
            self.peer,
        )
    }

    /// As [`RequestParts::upgrade`], behind the application's authorization step: once the
    /// hub accepted the upgrade (400, 403, 426, 431, 503 otherwise, without running the
    /// step), `authorizer` sees the request head (path, query, headers, cookies, peer
    /// address, offered subprotocols). Its admission gives the client's data and the
    /// subprotocol the 101 answers with.
    ///
    /// # Errors
    /// As [`RequestParts::upgrade`] for a request that is no upgrade; [`Refused`] when the
    /// step refuses (counted as [`Rejection::Refused`](hub_core::Rejection::Refused)) or picks
    /// a subprotocol the client did not offer (a 500; see [`Authorizer::authorize`]).
    pub fn upgrade_authorized(
        mut self,
        hub: &Hub,
        authorizer: &Authorizer,
        options: ConnectOptions,
        config: WsConfig,
    ) -> impl Future<Output = Result<Response, warp::Rejection>> + Send + 'static {
        let checked = if self.is_websocket_upgrade() {
            let on_upgrade = self.on_upgrade.take();
            Ok(hub.accept(&self).map(|accept| {
                let options = options.resume_from(&self);
                (accept, on_upgrade, self.auth_request(), options)
            }))
        } else {
            self.on_upgrade = None;
            Err(warp::reject::custom(NotAnUpgrade {
                hub: hub.clone(),
                parts: self,
            }))
        };
        let (hub, authorizer) = (hub.clone(), authorizer.clone());
        async move {
            let (accept, on_upgrade, request, options) = match checked? {
                Ok(accepted) => accepted,
                Err(rejection) => return Ok(rejection_response(rejection)),
            };
            let authorized = hub_hyper::authorize_upgrade(
                accept,
                on_upgrade,
                &hub,
                &authorizer,
                request,
                options,
                config,
            );
            match authorized.await {
                Ok(accept) => Ok(hub_hyper::response::switching_protocols(&accept)),
                Err(refusal) => Err(warp::reject::custom(Refused(refusal))),
            }
        }
    }
}

/// As [`ws`](crate::ws), behind the application's authorization step
/// ([`RequestParts::upgrade_authorized`]): a refusal rejects with [`Refused`], so add
/// [`recover`](crate::recover) to answer it.
///
/// ```
/// use hub_core::{Admission, Authorizer, AuthRequest, Hub, Refusal};
/// use warp::Filter;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let auth = Authorizer::new(|req: AuthRequest| async move {
///     match req.bearer_token() {
///         Some("s3cret") => Ok(Admission::new().protocol("bearer")),
///         _ => Err(Refusal::new(401).header("www-authenticate", "Bearer")),
///     }
/// });
/// let routes = warp::path!("ws" / "chat")
///     .and(hub_warp::ws_authorized(Hub::new(), auth))
///     .recover(hub_warp::recover);
/// let response = warp::test::request()
///     .path("/ws/chat")
///     .header("host", "localhost")
///     .header("upgrade", "websocket")
///     .header("connection", "upgrade")
///     .header("sec-websocket-version", "13")
///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("sec-websocket-protocol", "bearer, wrong")
///     .reply(&routes)
///     .await;
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], "Bearer");
/// # }
/// ```
pub fn ws_authorized(
    hub: Hub,
    authorizer: Authorizer,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    ws_authorized_with(hub, WsConfig::default(), authorizer)
}

/// As [`ws_authorized`], with buffer tuning.
pub fn ws_authorized_with(
    hub: Hub,
    config: WsConfig,
    authorizer: Authorizer,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    request().and_then(move |parts: RequestParts| {
        parts.upgrade_authorized(&hub, &authorizer, ConnectOptions::websocket(), config)
    })
}
