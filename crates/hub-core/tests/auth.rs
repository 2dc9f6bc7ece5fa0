//! Subprotocols and authorization types at the upgrade.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{upgrade_head, Head};
use hub_core::{AuthRequest, Hub, ProtocolNotOffered, Refusal, Rejection};

fn with_protocols(values: Vec<&'static str>) -> Head {
    let mut head = upgrade_head();
    for value in values {
        head.0.push(("sec-websocket-protocol", value));
    }
    head
}

#[test]
fn the_offered_subprotocols_are_read_and_only_an_offered_one_is_answered() {
    let hub = Hub::new();
    let mut accept = hub
        .accept(&with_protocols(vec!["bearer, s3cret", "chat.v2"]))
        .unwrap();
    assert_eq!(accept.offered, ["bearer", "s3cret", "chat.v2"]);
    assert!(!accept
        .headers()
        .iter()
        .any(|(n, _)| *n == "sec-websocket-protocol"));
    assert_eq!(
        accept.select_protocol("graphql-ws"),
        Err(ProtocolNotOffered("graphql-ws".into()))
    );
    assert_eq!(accept.protocol, None, "nothing changed");
    accept.select_protocol("bearer").unwrap();
    assert!(accept
        .headers()
        .contains(&("sec-websocket-protocol", "bearer")));
}

#[test]
fn hostile_protocol_headers_are_refused_before_anything_is_allocated_for_them() {
    let hub = Hub::new();
    let long: &'static str = Box::leak("x".repeat(64 * 1024).into_boxed_str());
    let many: &'static str = Box::leak(vec!["p"; 1000].join(", ").into_boxed_str());
    for head in [with_protocols(vec![long]), with_protocols(vec![many])] {
        let rejection = hub.accept(&head).unwrap_err();
        assert_eq!(rejection, Rejection::ProtocolsTooLarge);
        assert_eq!(rejection.status(), 431);
    }
    assert_eq!(hub.stats().rejected(Rejection::ProtocolsTooLarge), 2);
    // at the limits, fine
    let at_limit: &'static str = Box::leak(
        vec!["p"; hub_core::MAX_PROTOCOLS]
            .join(",")
            .into_boxed_str(),
    );
    assert_eq!(
        hub.accept(&with_protocols(vec![at_limit]))
            .unwrap()
            .offered
            .len(),
        hub_core::MAX_PROTOCOLS
    );
}

#[test]
fn a_refusal_is_counted_under_its_own_reason() {
    let hub = Hub::new();
    let refusal = Refusal::new(401).header("www-authenticate", "Bearer");
    hub.refused(&refusal);
    assert_eq!(hub.stats().rejected(Rejection::Refused), 1);
    assert_eq!(Refusal::new(200).status, 403, "never a success status");
}

#[test]
fn the_bearer_token_is_found_where_each_client_can_put_it() {
    let header = AuthRequest::new("GET", "/events/chat").with_header("Authorization", "Bearer abc");
    assert_eq!(header.bearer_token(), Some("abc"));
    let browser = AuthRequest::new("GET", "/ws/chat").with_protocols(["bearer", "xyz"]);
    assert_eq!(browser.bearer_token(), Some("xyz"));
    let basic = AuthRequest::new("GET", "/").with_header("authorization", "Basic Zm9v");
    assert_eq!(basic.bearer_token(), None);
    // a browser behind HTTP authentication sends its Basic credentials by itself
    let behind_basic = AuthRequest::new("GET", "/ws/chat")
        .with_header("authorization", "Basic Zm9vOmJhcg==")
        .with_protocols(["bearer", "xyz"]);
    assert_eq!(behind_basic.bearer_token(), Some("xyz"));
    // a Bearer header stays the answer
    let both = AuthRequest::new("GET", "/ws/chat")
        .with_header("authorization", "Bearer abc")
        .with_protocols(["bearer", "xyz"]);
    assert_eq!(both.bearer_token(), Some("abc"));
    let dangling = AuthRequest::new("GET", "/").with_protocols(["bearer"]);
    assert_eq!(dangling.bearer_token(), None);
    let query = AuthRequest::new("GET", "/events/chat").with_query("room=a&token=q1");
    assert_eq!(query.query_param("token"), Some("q1"));
    assert_eq!(query.query_param("missing"), None);
}

#[tokio::test]
async fn a_panicking_authorization_step_is_answered_500_and_counted_never_dropped() {
    let hub = Hub::new();
    let sync_panic = hub_core::Authorizer::new(|_: AuthRequest| -> std::future::Ready<_> {
        panic!("a bug in the application's check")
    });
    let async_panic = hub_core::Authorizer::new(|_: AuthRequest| async {
        tokio::task::yield_now().await;
        if true {
            panic!("a bug after an await");
        }
        Ok(hub_core::Admission::new())
    });
    for step in [sync_panic, async_panic] {
        let mut accept = hub.accept(&upgrade_head()).unwrap();
        let request = AuthRequest::new("GET", "/ws/chat");
        let refusal = step
            .authorize(
                &hub,
                request,
                Some(&mut accept),
                hub_core::ConnectOptions::websocket(),
            )
            .await
            .unwrap_err();
        assert_eq!(refusal.status, 500);
    }
    assert_eq!(hub.stats().rejected(Rejection::AuthorizationPanicked), 2);
}
