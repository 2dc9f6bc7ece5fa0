//! The lean path, for memory-bound deployments: actix-http hands every `Connection: upgrade`
//! request, with its raw connection, to an upgrade service. Here that service validates the
//! request through the hub, writes the 101 itself and gives the socket (plus any bytes actix
//! already read) to the hub's driver. actix's HTTP/1 dispatcher buffers are gone, which brings
//! an idle client from ~14 kB down to ~2 kB (see the README).
//!
//! Requests without `Connection: upgrade` (a plain GET, SSE) still reach the actix-web `App`
//! given to `HttpService::build().finish(..)`, so keep the native routes there too: they answer
//! 426 and friends exactly as every adapter.
//!
//! ```no_run
//! use actix_http::{HttpService, Request};
//! use actix_service::map_config;
//! use actix_web::{dev::AppConfig, App};
//! use hub_core::{ConnectOptions, Hub};
//!
//! # #[allow(dead_code)]
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new();
//!     let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
//!     actix_server::Server::build()
//!         .listen("hub", listener, move || {
//!             let ws_hub = hub.clone();
//!             let route = move |req: &Request| {
//!                 (req.path() == "/ws/chat").then(|| {
//!                     (ws_hub.clone(), ConnectOptions::websocket(), Default::default())
//!                 })
//!             };
//!             HttpService::build()
//!                 .upgrade(hub_actix::lean::upgrade_service(route))
//!                 .finish(map_config(App::new(), |_| AppConfig::default()))
//!                 .tcp()
//!         })?
//!         .run()
//!         .await
//! }
//! ```

use crate::WsConfig;
use actix_codec::Framed;
use actix_http::{h1, HttpMessage, Request};
use actix_service::{fn_service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use hub_core::{ConnectOptions, HttpVersion, Hub, Rejection, RequestHead};
use tokio::io::AsyncWriteExt;

/// A [`RequestHead`] over an actix-http request.
#[derive(Debug)]
pub struct LeanHead<'a>(pub &'a Request);

impl RequestHead for LeanHead<'_> {
    fn version(&self) -> HttpVersion {
        crate::http_version(self.0.version())
    }

    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        crate::header_values(self.0.headers(), name)
    }

    fn query(&self) -> Option<&str> {
        self.0.uri().query()
    }
}

fn response_head(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if status != 101 {
        head.push_str(&format!(
            "content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head
}

fn reason(status: u16) -> &'static str {
    actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

async fn refuse(io: &mut TcpStream, rejection: Rejection) {
    let status = rejection.status();
    let head = response_head(
        status,
        reason(status),
        rejection.headers(),
        rejection.body(),
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// The upgrade service. `route` picks the hub (and the client's options and buffers) for a
/// request, or `None` for a 404.
pub fn upgrade_service<R>(
    route: R,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
> + Clone
where
    R: Fn(&Request) -> Option<(Hub, ConnectOptions, WsConfig)> + Clone + 'static,
{
    fn_service(
        move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
            let route = route.clone();
            async move {
                let picked = route(&req);
                let parts = framed.into_parts();
                let mut io = parts.io;
                // Responses actix encoded but has not written yet (to requests pipelined ahead
                // of this one) go out first, whatever this one's answer is.
                if !parts.write_buf.is_empty() && io.write_all(&parts.write_buf).await.is_err() {
                    return Ok(());
                }
                let Some((hub, options, config)) = picked else {
                    let head = response_head(404, "Not Found", &[], "not found\n");
                    let _ = io.write_all(head.as_bytes()).await;
                    return Ok(());
                };
                let accept = match hub.accept(&LeanHead(&req)) {
                    Ok(accept) => accept,
                    Err(rejection) => {
                        refuse(&mut io, rejection).await;
                        return Ok(());
                    }
                };
                let options = options.resume_from(&LeanHead(&req));
                // Nothing of actix's may outlive the handshake: the request (and its payload
                // plumbing), the codec and both buffers (the write buffer is written above)
                // would stay for the connection's life.
                drop(req);
                drop(parts.codec);
                drop(parts.write_buf);
                // Bytes actix read past the request head belong to the WebSocket.
                let already_read = parts.read_buf.to_vec();
                drop(parts.read_buf);
                let head = response_head(101, "Switching Protocols", &accept.headers(), "");
                if io.write_all(head.as_bytes()).await.is_err() {
                    return Ok(());
                }
                hub_tokio::serve_partially_read(hub, io, already_read, options, config).await;
                Ok(())
            }
        },
    )
}
