//! Client quotas through the Admin API end to end: AlterClientQuotas and
//! DescribeClientQuotas (KIP-546) with their filters, KIP-599's
//! controller mutation quota refusing a CreateTopics (v6+) over its rate
//! with THROTTLING_QUOTA_EXCEEDED, and KIP-124's request_percentage, each
//! for its client id only.

mod common;

use oxka_client::admin::NewTopic;
use oxka_client::quota::{QuotaEntity, QuotaFilterComponent, CLIENT_ID, USER};
use oxka_client::{Admin, ClientConfig, Error};

use common::{block_on, unique, TestBroker};

fn admin(b: &TestBroker, client_id: &str) -> Admin {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", b.bootstrap())
        .set("client.id", client_id);
    Admin::new(&cfg).expect("admin")
}

#[test]
fn describe_filters_and_the_controller_mutation_quota() {
    let b = TestBroker::start();
    block_on(async {
        let a = admin(&b, "quota-admin");
        let alice = QuotaEntity::new(Some(Some("alice")), None);
        let alice_default_client = QuotaEntity::new(Some(Some("alice")), Some(None));
        let mutator = QuotaEntity::new(None, Some(Some("mutator")));
        let results = a
            .alter_client_quotas(
                &[
                    (
                        alice.clone(),
                        vec![("producer_byte_rate".into(), Some(1024.0))],
                    ),
                    (
                        alice_default_client.clone(),
                        vec![("request_percentage".into(), Some(50.0))],
                    ),
                    (
                        mutator.clone(),
                        vec![("controller_mutation_rate".into(), Some(1.0))],
                    ),
                ],
                false,
            )
            .await
            .expect("alter");
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        // validate_only changes nothing
        let v = a
            .alter_client_quotas(
                &[(
                    QuotaEntity::new(None, Some(Some("ghost"))),
                    vec![("consumer_byte_rate".into(), Some(1.0))],
                )],
                true,
            )
            .await
            .expect("validate");
        assert!(v[0].1.is_ok());
        let user_alice = [QuotaFilterComponent::Exact(USER.into(), "alice".into())];
        let loose = a
            .describe_client_quotas(&user_alice, false)
            .await
            .expect("describe");
        assert_eq!(loose.len(), 2, "{loose:?}");
        let strict = a
            .describe_client_quotas(&user_alice, true)
            .await
            .expect("describe");
        assert_eq!(strict.len(), 1);
        assert_eq!(strict[0].0, alice);
        assert_eq!(strict[0].1["producer_byte_rate"], 1024.0);
        let any_client = [QuotaFilterComponent::Specified(CLIENT_ID.into())];
        let clients = a
            .describe_client_quotas(&any_client, false)
            .await
            .expect("describe");
        let mut names: Vec<String> = clients.iter().map(|(e, _)| e.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            vec!["client-id=mutator", "user=alice,client-id=<default>"],
            "{names:?}"
        );

        // KIP-599: a burst of 11 (1/s over 11 windows); 15 partitions are
        // let through and leave the bucket 4 below zero (four seconds to
        // refill, ample for the next request even on a loaded machine),
        // so the next creation of this client id is refused; its
        // connection is then muted for those seconds (KIP-219)
        let m = admin(&b, "mutator");
        let first = unique("mut");
        let r = m
            .create_topics(&[NewTopic::new(first.as_str(), 15, 1)], false)
            .await
            .expect("create");
        assert!(r[0].1.is_ok(), "{r:?}");
        let second = unique("mut");
        let r = m
            .create_topics(&[NewTopic::new(second.as_str(), 1, 1)], false)
            .await
            .expect("create");
        match &r[0].1 {
            Err(Error::Kafka { code, message, .. }) => {
                assert_eq!(code.0, 89, "{message:?}");
                assert_eq!(
                    message.as_deref(),
                    Some("The throttling quota has been exceeded.")
                );
            }
            other => panic!("expected THROTTLING_QUOTA_EXCEEDED, got {other:?}"),
        }
        // another client id is not limited
        let r = a
            .create_topics(&[NewTopic::new(second.as_str(), 1, 1)], false)
            .await
            .expect("create");
        assert!(r[0].1.is_ok(), "{r:?}");
    });
}

/// KIP-124: a client id over its `request_percentage` gets
/// `throttle_time_ms` (at most one window) in any response that has it;
/// another client id does not.
#[test]
fn request_percentage_throttles_any_api() {
    use kafka_protocol::messages::MetadataRequest;
    use std::time::Duration;
    let b = TestBroker::start();
    block_on(async {
        let a = admin(&b, "quota-admin");
        let busy = QuotaEntity::new(None, Some(Some("busy")));
        let r = a
            .alter_client_quotas(
                &[(busy, vec![("request_percentage".into(), Some(0.0001))])],
                false,
            )
            .await
            .expect("alter");
        assert!(r[0].1.is_ok(), "{r:?}");
        let addr = b.bootstrap();
        let connect = |id: &'static str| {
            oxka_client::Connection::connect(
                &addr,
                id,
                Duration::from_secs(10),
                Duration::from_secs(30),
                1 << 20,
            )
        };
        let idle = connect("idle").await.expect("connect");
        let busy = connect("busy").await.expect("connect");
        let mut throttle = 0;
        for _ in 0..20 {
            let resp = busy
                .send(MetadataRequest::default())
                .await
                .expect("metadata");
            throttle = resp.throttle_time_ms;
            if throttle > 0 {
                break;
            }
        }
        assert!((1..=1000).contains(&throttle), "throttle {throttle} ms");
        let resp = idle
            .send(MetadataRequest::default())
            .await
            .expect("metadata");
        assert_eq!(resp.throttle_time_ms, 0);
    });
}
