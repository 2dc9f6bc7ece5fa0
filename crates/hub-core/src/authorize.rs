//! The application's authorization step, as every adapter runs it: after the hub accepted the
//! upgrade (or admitted the subscription), before the 101 (or the event stream).

use crate::{Accept, Admission, AuthRequest, ConnectOptions, Hub, Refusal, Rejection};
use futures_util::FutureExt;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

/// The future an [`Authorizer`] returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Admission, Refusal>> + Send>>;

/// An application's authorization step: a function of the request head
/// ([`AuthRequest`]) that admits it ([`Admission`]: the client's data, the subprotocol to
/// answer with) or refuses it ([`Refusal`]: status, headers, body). It may be async (a token
/// lookup). Cheap to clone; give one to an adapter's authorized upgrade or subscription.
///
/// ```
/// use hub_core::{Admission, Authorizer, AuthRequest, Refusal};
///
/// struct User(String);
///
/// let authorizer = Authorizer::new(|request: AuthRequest| async move {
///     match request.bearer_token() {
///         Some("s3cret") => Ok(Admission::new().data(User("ada".into())).protocol("bearer")),
///         _ => Err(Refusal::new(401).header("www-authenticate", "Bearer")),
///     }
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let browser = AuthRequest::new("GET", "/ws/chat").with_protocols(["bearer", "s3cret"]);
/// let admission = authorizer.check(browser).await.unwrap();
/// let user = admission.data.as_ref().and_then(|d| d.downcast_ref::<User>());
/// assert_eq!(user.map(|u| u.0.as_str()), Some("ada"));
/// let stranger = AuthRequest::new("GET", "/ws/chat").with_protocols(["bearer", "guess"]);
/// assert_eq!(authorizer.check(stranger).await.unwrap_err().status, 401);
/// # });
/// ```
#[derive(Clone)]
pub struct Authorizer(Arc<dyn Fn(AuthRequest) -> AuthFuture + Send + Sync>);

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorizer")
    }
}

impl Authorizer {
    /// The step `check`.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Admission, Refusal>> + Send + 'static,
    {
        Self(Arc::new(move |request| Box::pin(check(request))))
    }

    /// Runs the step on `request` alone (no hub, nothing counted).
    pub fn check(&self, request: AuthRequest) -> AuthFuture {
        (self.0)(request)
    }

    /// Runs the step for a request `hub` has already accepted (`accept`, a WebSocket upgrade)
    /// or admitted (`None`, an event stream), and applies its answer: the admission's data
    /// becomes the client's ([`ConnectOptions::data`]), its subprotocol is selected on
    /// `accept`, and the options get the request's peer and path for the connection's span
    /// ([`ConnectOptions::located_at`]).
    ///
    /// # Errors
    /// The [`Refusal`] to answer with, counted in [`Stats::rejected`](crate::Stats::rejected):
    /// the step's own (under [`Rejection::Refused`]); a 500 when it picked a subprotocol the
    /// client did not offer (an event stream offers none; [`Rejection::UnofferedProtocol`],
    /// logged as the application's error); a 503 when the hub began shutting down meanwhile,
    /// or reached [`HubConfig::max_connections`](crate::HubConfig::max_connections) meanwhile.
    pub async fn authorize(
        &self,
        hub: &Hub,
        request: AuthRequest,
        accept: Option<&mut Accept>,
        options: ConnectOptions,
    ) -> Result<ConnectOptions, Refusal> {
        let mut options = options.located_at(request.peer, &request.path);
        // the application's code: a panic in it answers 500 (counted), never a dropped request
        let checked = std::panic::catch_unwind(AssertUnwindSafe(|| self.check(request)));
        let outcome = match checked {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let admission = match outcome {
            Ok(Ok(admission)) => admission,
            Ok(Err(refusal)) => {
                hub.refused(&refusal);
                return Err(refusal);
            }
            Err(_) => {
                tracing::error!("the authorization step panicked: answering 500");
                return Err(refuse(hub, Rejection::AuthorizationPanicked));
            }
        };
        if hub.is_shutting_down() {
            return Err(refuse(hub, Rejection::ShuttingDown));
        }
        // the step may have taken a while: others may have taken the last places meanwhile
        // (answered 503 with Retry-After, not a 101 closed at once with 1013)
        if hub
            .config()
            .max_connections
            .is_some_and(|max| hub.client_count() >= max)
        {
            return Err(refuse(hub, Rejection::TooManyConnections));
        }
        if let Some(protocol) = &admission.protocol {
            let selected = match accept {
                Some(accept) => accept.select_protocol(protocol),
                None => Err(crate::ProtocolNotOffered(protocol.clone())),
            };
            if let Err(error) = selected {
                tracing::error!(%error, "the authorization step picked a subprotocol the client did not offer");
                return Err(refuse(hub, Rejection::UnofferedProtocol));
            }
        }
        if admission.data.is_some() {
            options.data = admission.data;
        }
        Ok(options)
    }
}

/// Counts `rejection` and turns it into the refusal to answer with.
fn refuse(hub: &Hub, rejection: Rejection) -> Refusal {
    hub.inner.counters.reject(rejection);
    Refusal::from(rejection)
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        let mut refusal = Refusal::new(rejection.status()).body(rejection.body());
        for (name, value) in rejection.headers() {
            refusal = refusal.header(name, value);
        }
        refusal
    }
}

impl ConnectOptions {
    /// Unless already set, the peer's address ([`Self::peer`]) and the route
    /// ([`Self::route`], the request path) for the connection's tracing span. Adapters call
    /// it with the request they accept.
    pub fn located_at(mut self, peer: Option<SocketAddr>, route: &str) -> Self {
        if self.peer.is_none() {
            self.peer = peer;
        }
        if self.route.is_none() {
            self.route = Some(Arc::from(route));
        }
        self
    }
}
