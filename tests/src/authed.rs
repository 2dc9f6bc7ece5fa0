//! A hub behind an authorization step, served by each adapter (actix on both paths), for the
//! authentication tests:
//! - `/sse`: an SSE subscription, behind the step;
//! - any other path: a WebSocket upgrade, behind the step.
//!
//! The step ([`TestAuth`]) takes the bearer token (`Authorization: Bearer`, or the
//! subprotocols `bearer, <token>`) or the `token` query parameter, awaits a simulated lookup,
//! and answers by token: `good` admits (data [`Authed`], subprotocol `bearer` when offered),
//! `slow` admits once the test opens [`TestAuth::gate`], `unoffered` admits with a subprotocol
//! the client did not offer, anything else (or nothing) is refused with 401 and
//! `WWW-Authenticate: Bearer`.

use crate::Adapter;
use hub_core::{Admission, AuthRequest, Authorizer, ConnectOptions, Hub, Refusal};
use hub_hyper::sse::SseConfig;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What the step attaches to an admitted client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authed {
    pub token: String,
    pub path: String,
    pub peer: Option<SocketAddr>,
}

/// The test's authorization step and what it observes.
#[derive(Debug, Clone)]
pub struct TestAuth {
    /// How many times the step ran.
    pub calls: Arc<AtomicUsize>,
    /// What the `slow` token waits for (one permit per slow request).
    pub gate: Arc<Semaphore>,
    /// A permit for every `slow` request that reached the step and now waits at the gate.
    pub entered: Arc<Semaphore>,
}

impl Default for TestAuth {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            entered: Arc::new(Semaphore::new(0)),
        }
    }
}

impl TestAuth {
    /// How many times the step ran.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The step.
    pub fn authorizer(&self) -> Authorizer {
        let this = self.clone();
        Authorizer::new(move |req: AuthRequest| {
            let this = this.clone();
            async move {
                this.calls.fetch_add(1, Ordering::SeqCst);
                // a token lookup takes a moment (this is the step's own work, not a wait on
                // the test's behalf)
                tokio::time::sleep(Duration::from_millis(5)).await;
                let token = req
                    .bearer_token()
                    .or_else(|| req.query_param("token"))
                    .unwrap_or("")
                    .to_string();
                let admitted = |req: &AuthRequest, token: &str| {
                    let data = Authed {
                        token: token.to_string(),
                        path: req.path.clone(),
                        peer: req.peer,
                    };
                    let admission = Admission::new().data(data);
                    if req.protocols.iter().any(|p| p == "bearer") {
                        admission.protocol("bearer")
                    } else {
                        admission
                    }
                };
                match token.as_str() {
                    "good" => Ok(admitted(&req, &token)),
                    "slow" => {
                        this.entered.add_permits(1);
                        let permit = this.gate.acquire().await;
                        drop(permit);
                        Ok(admitted(&req, &token))
                    }
                    "unoffered" => Ok(Admission::new().protocol("not-offered")),
                    "json" => Err(Refusal::new(401)
                        .header("Content-Type", "application/json")
                        // framing is the server's: a step's own is not to be trusted
                        .header("content-length", "0")
                        .body("{\"error\":\"bad token\"}")),
                    "informational" => {
                        // a step that set the public field to a status that is no refusal
                        let mut refusal = Refusal::new(401).body("no\n");
                        refusal.status = 101;
                        Err(refusal)
                    }
                    _ => Err(Refusal::new(401)
                        .header("www-authenticate", "Bearer")
                        .body("bad or missing token\n")),
                }
            }
        })
    }
}

/// Serves `hub` behind `auth`'s step on an ephemeral port with `adapter`; returns the address.
pub async fn serve_authed(adapter: Adapter, hub: &Hub, auth: &TestAuth) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (hub, auth) = (hub.clone(), auth.authorizer());
    let sse = SseConfig::default();
    match adapter {
        Adapter::Hyper => {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let service = move |req: http::Request<hyper::body::Incoming>| {
                let options = ConnectOptions::default();
                let response: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                    if req.uri().path() == "/sse" {
                        Box::pin(hub_hyper::sse::subscribe_authorized(
                            &req, &hub, &auth, sse, options,
                        ))
                    } else {
                        let config = Default::default();
                        Box::pin(hub_hyper::upgrade_authorized(
                            req, &hub, &auth, options, config,
                        ))
                    };
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            };
            tokio::spawn(hub_hyper::serve(listener, service, std::future::pending()));
        }
        Adapter::Warp => {
            use warp::Filter;
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let events = warp::path!("sse").and(hub_warp::sse::subscribe_authorized(
                hub.clone(),
                sse,
                auth.clone(),
            ));
            let routes = events
                .or(hub_warp::ws_authorized(hub, auth))
                .unify()
                .recover(hub_warp::recover)
                .unify();
            tokio::spawn(hub_warp::serve(listener, routes, std::future::pending()));
        }
        Adapter::ActixNative => {
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    actix_web::HttpServer::new(move || native_app(&hub, &auth, sse))
                        .h1_allow_half_closed(false)
                        .disable_signals()
                        .workers(1)
                        .listen(listener)
                        .unwrap()
                        .run()
                        .await
                        .unwrap();
                });
            });
        }
        Adapter::Actix => {
            use actix_service::map_config;
            use actix_web::dev::AppConfig;
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    actix_server::Server::build()
                        .listen("authed", listener, move || {
                            let (ws_hub, ws_auth) = (hub.clone(), auth.clone());
                            let route = move |req: &actix_http::Request| {
                                (req.path() != "/sse").then(|| {
                                    let options = ConnectOptions::websocket();
                                    let auth = Some(ws_auth.clone());
                                    (ws_hub.clone(), options, Default::default(), auth)
                                })
                            };
                            let app = || {
                                map_config(native_app(&hub, &auth, sse), |_| AppConfig::default())
                            };
                            actix_http::HttpService::build()
                                .h1_allow_half_closed(false)
                                .upgrade(hub_actix::lean::authorized_upgrade_service_or(
                                    route,
                                    app(),
                                ))
                                .finish(app())
                                .tcp()
                        })
                        .unwrap()
                        .disable_signals()
                        .workers(1)
                        .run()
                        .await
                        .unwrap();
                });
            });
        }
    }
    addr
}

/// The actix-web routes: `/sse` and every other path an upgrade, behind the step.
fn native_app(
    hub: &Hub,
    auth: &Authorizer,
    sse: SseConfig,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use actix_web::{web, HttpRequest};
    let (sse_hub, sse_auth) = (hub.clone(), auth.clone());
    let (hub, auth) = (hub.clone(), auth.clone());
    actix_web::App::new()
        .route(
            "/sse",
            web::to(move |req: HttpRequest| {
                let options = ConnectOptions::default();
                hub_actix::sse::subscribe_authorized(&req, &sse_hub, &sse_auth, sse, options)
            }),
        )
        .default_service(web::to(move |req: HttpRequest, body: web::Payload| {
            let (options, config) = (ConnectOptions::websocket(), Default::default());
            hub_actix::upgrade_authorized(&req, body, &hub, &auth, options, config)
        }))
}
