//! Upgrades behind the application's authorization step ([`Authorizer`]).

use crate::{peer, rejection_response, response, spawn_client, Body, HttpHead, WsConfig};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hub_core::{Accept, AuthRequest, Authorizer, ConnectOptions, Hub, Refusal};
use hyper::upgrade::OnUpgrade;
use std::future::Future;

/// The response for a request the authorization step refused: its status, headers and body.
pub fn refusal_response(refusal: &Refusal) -> Response<Body> {
    response::refusal::<Full<Bytes>>(refusal).map(BodyExt::boxed_unsync)
}

/// As [`upgrade_with`](crate::upgrade_with), behind the application's authorization step.
///
/// The request is validated first ([`Hub::accept`]: 400, 403, 426, 431, 503 as on every
/// adapter, without running the step); then `authorizer` sees its head
/// ([`AuthRequest`]: path, query, headers, cookies, the peer's address when [`serve`](crate::serve)
/// recorded it, the offered subprotocols). Its [`Admission`](hub_core::Admission) gives the
/// client's data and the subprotocol the 101 answers with; its
/// [`Refusal`] is the answer (counted as
/// [`Rejection::Refused`](hub_core::Rejection::Refused)). A subprotocol the client did not
/// offer is answered 500, never sent (see [`Authorizer::authorize`]).
///
/// ```no_run
/// use hub_core::{Admission, Authorizer, AuthRequest, Hub, Refusal};
/// use hyper::{body::Incoming, Request};
///
/// # #[allow(dead_code)]
/// # async fn demo() -> std::io::Result<()> {
/// let hub = Hub::new();
/// let auth = Authorizer::new(|req: AuthRequest| async move {
///     match req.bearer_token() {
///         Some("s3cret") => Ok(Admission::new().protocol("bearer")),
///         _ => Err(Refusal::new(401).header("www-authenticate", "Bearer")),
///     }
/// });
/// let service = move |req: Request<Incoming>| {
///     let reply = hub_hyper::upgrade_authorized(req, &hub, &auth, Default::default(), Default::default());
///     async move { Ok::<_, std::convert::Infallible>(reply.await) }
/// };
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// hub_hyper::serve(listener, service, std::future::pending()).await;
/// # Ok(()) }
/// ```
pub fn upgrade_authorized<B>(
    mut req: Request<B>,
    hub: &Hub,
    authorizer: &Authorizer,
    options: ConnectOptions,
    config: WsConfig,
) -> impl Future<Output = Response<Body>> + Send + 'static {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let head = HttpHead(&req);
    let accepted = hub.accept(&head).map(|accept| {
        let request = response::auth_request(
            req.method(),
            req.uri().path(),
            req.uri().query(),
            req.headers(),
            peer(&req),
        );
        (accept, request, options.resume_from(&head))
    });
    let (hub, authorizer) = (hub.clone(), authorizer.clone());
    async move {
        let (accept, request, options) = match accepted {
            Ok(accepted) => accepted,
            Err(rejection) => return rejection_response(rejection),
        };
        let authorized = authorize_upgrade(
            accept,
            Some(on_upgrade),
            &hub,
            &authorizer,
            request,
            options,
            config,
        );
        match authorized.await {
            Ok(accept) => {
                response::switching_protocols::<Full<Bytes>>(&accept).map(BodyExt::boxed_unsync)
            }
            Err(refusal) => refusal_response(&refusal),
        }
    }
}

/// The framework-neutral half of [`upgrade_authorized`], for adapters on hyper-based
/// frameworks (warp): runs the step on an upgrade `hub` accepted (`accept`) and, when it
/// admits it, arranges for the client's driver to be spawned once hyper hands over the
/// connection (as [`start_upgrade`](crate::start_upgrade)). The caller answers with
/// [`response::switching_protocols`].
///
/// # Errors
/// The [`Refusal`] to answer with ([`Authorizer::authorize`]); nothing is spawned.
pub async fn authorize_upgrade(
    mut accept: Accept,
    on_upgrade: Option<OnUpgrade>,
    hub: &Hub,
    authorizer: &Authorizer,
    request: AuthRequest,
    options: ConnectOptions,
    config: WsConfig,
) -> Result<Accept, Refusal> {
    let request = request.with_protocols(accept.offered.clone());
    let options = authorizer
        .authorize(hub, request, Some(&mut accept), options)
        .await?;
    spawn_client(on_upgrade, hub, options.accepted(&accept), config);
    Ok(accept)
}
