//! TLS and SASL end to end with the `oxka` binary: librdkafka (the
//! `rdkafka` crate, built without OpenSSL, so SASL_PLAINTEXT with PLAIN)
//! and `oxka-client` over SSL with a client certificate and SASL_SSL with
//! SCRAM-SHA-512 whose credential it created with
//! AlterUserScramCredentials. Certificates are generated here (rcgen).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestBroker;
use oxka_client::sasl::scram::ScramMechanism;
use oxka_client::{Admin, ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A CA and two certificates it signs: the broker's (localhost,
/// 127.0.0.1) and a client's (CN=alice); PEM files in `dir`.
struct Pki {
    ca: String,
    broker_keystore: String,
    alice_keystore: String,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "oxka test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = |sans: Vec<String>, cn: &str| {
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        format!("{}{}", key.serialize_pem(), cert.pem())
    };
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        broker_keystore: write(
            "broker.pem",
            issue(vec!["localhost".into(), "127.0.0.1".into()], "localhost"),
        ),
        alice_keystore: write("alice.pem", issue(Vec::new(), "alice")),
    }
}

struct SecureBroker {
    _broker: TestBroker,
    _dir: tempfile::TempDir,
    pki: Pki,
    plaintext: String,
    ssl: String,
    sasl_plaintext: String,
    sasl_ssl: String,
}

fn start() -> SecureBroker {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let listeners = format!(
        "listeners=PLAINTEXT://{},SSL://{},SASL_PLAINTEXT://{},SASL_SSL://{}",
        addr(0),
        addr(1),
        addr(2),
        addr(3)
    );
    let keystore = format!("ssl.keystore.location={}", pki.broker_keystore);
    let truststore = format!("ssl.truststore.location={}", pki.ca);
    let jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";";
    let plain = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}");
    let broker = TestBroker::start_on(
        ports[0],
        &[
            &listeners,
            "ssl.keystore.type=PEM",
            &keystore,
            "ssl.truststore.type=PEM",
            &truststore,
            "listener.name.ssl.ssl.client.auth=required",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512",
            &plain,
        ],
    );
    SecureBroker {
        _broker: broker,
        _dir: dir,
        pki,
        plaintext: addr(0),
        ssl: addr(1),
        sasl_plaintext: addr(2),
        sasl_ssl: addr(3),
    }
}

fn rdkafka_config(b: &SecureBroker, password: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &b.sasl_plaintext)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "alice")
        .set("sasl.password", password);
    c
}

#[test]
fn librdkafka_over_sasl_plain() {
    let b = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let producer: FutureProducer = rdkafka_config(&b, "alice-secret")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    rt.block_on(async {
        for i in 0..10 {
            producer
                .send(
                    FutureRecord::<(), _>::to("sasl-rd").payload(&format!("m{i}")),
                    Duration::from_secs(20),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("delivered over SASL_PLAINTEXT");
        }
    });
    let consumer: BaseConsumer = rdkafka_config(&b, "alice-secret")
        .set("group.id", "sasl-rd-readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["sasl-rd"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 10 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    assert_eq!(got, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());

    // a wrong password: no metadata, and librdkafka reports the broker's
    // authentication error
    let bad: BaseConsumer<Errors> = rdkafka_config(&b, "wrong")
        .set("group.id", "x")
        .create_with_context(Errors::default())
        .unwrap();
    assert!(bad.fetch_metadata(None, Duration::from_secs(5)).is_err());
    // error events are served by poll
    let deadline = Instant::now() + Duration::from_secs(10);
    while bad.context().0.lock().unwrap().is_empty() && Instant::now() < deadline {
        let _ = bad.poll(Duration::from_millis(100));
    }
    let errors = bad.context().0.lock().unwrap().join("\n");
    assert!(errors.contains("Invalid username or password"), "{errors}");
}

/// The errors librdkafka reports through its error callback.
#[derive(Default)]
struct Errors(std::sync::Mutex<Vec<String>>);

impl rdkafka::ClientContext for Errors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if let Ok(mut e) = self.0.lock() {
            e.push(format!("{error}: {reason}"));
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

#[test]
fn oxka_client_over_tls_and_scram() {
    let b = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let admin = Admin::new(&ClientConfig::with_bootstrap(&b.plaintext)).unwrap();
        admin
            .alter_user_scram_credential("bob", ScramMechanism::Sha512, Some("bob-secret"), 4096)
            .await
            .unwrap();
        let creds = admin
            .describe_user_scram_credentials(&["bob".to_string()])
            .await
            .unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!(
            creds[0].1.as_ref().unwrap(),
            &vec![(ScramMechanism::Sha512, 4096)]
        );

        let mut scram = ClientConfig::with_bootstrap(&b.sasl_ssl);
        scram
            .set("security.protocol", "SASL_SSL")
            .set("ssl.truststore.type", "PEM")
            .set("ssl.truststore.location", &b.pki.ca)
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"bob-secret\";",
            );
        let producer = Producer::new(&scram).unwrap();
        for i in 0..5 {
            producer
                .send(ProducerRecord::new("sec-oxka").value(format!("r{i}")))
                .await
                .unwrap();
        }
        producer.close().await.unwrap();

        // mutual TLS: the client certificate is required on this listener
        let mut mtls = ClientConfig::with_bootstrap(&b.ssl);
        mtls.set("security.protocol", "SSL")
            .set("ssl.truststore.location", &b.pki.ca)
            .set("ssl.keystore.type", "PEM")
            .set("ssl.keystore.location", &b.pki.alice_keystore);
        let mut consumer = Consumer::new(&mtls).unwrap();
        let tp = TopicPartition::new("sec-oxka", 0);
        consumer.assign(vec![tp.clone()]).unwrap();
        consumer.seek_to_beginning(&[tp]).await.unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 5 && Instant::now() < deadline {
            for r in consumer.poll(Duration::from_millis(300)).await.unwrap() {
                got.push(String::from_utf8_lossy(&r.value.unwrap_or_default()).to_string());
            }
        }
        assert_eq!(got, ["r0", "r1", "r2", "r3", "r4"]);

        // no client certificate, or a wrong SCRAM password: refused
        let mut anonymous = mtls.clone();
        anonymous.remove("ssl.keystore.location");
        anonymous.set("request.timeout.ms", "5000");
        let a = Admin::new(&anonymous).unwrap();
        assert!(a.list_topics(false).await.is_err());
        let mut wrong = scram.clone();
        wrong.set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"nope\";",
        );
        let err = Admin::new(&wrong).unwrap().list_topics(false).await.unwrap_err();
        assert!(err.to_string().contains("invalid credentials"), "{err}");
    });
}

/// Two brokers whose only client listener (named PLAINTEXT, mapped to
/// SASL_SSL) is also the inter-broker one, with an authorizer whose only
/// super user is the brokers' user: the follower's replica fetcher has to
/// speak TLS and SASL/PLAIN to join the ISR, and the brokers' internal
/// clients (consumer lag, the console's admin client and message
/// browser) too, to reach the partitions the other broker leads.
#[test]
fn brokers_replicate_and_serve_lag_over_sasl_ssl() {
    use common::cluster::TestCluster;
    use oxka_client::admin::NewTopic;

    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let keystore = format!("ssl.keystore.location={}", pki.broker_keystore);
    let truststore = format!("ssl.truststore.location={}", pki.ca);
    let jaas = "listener.name.plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";";
    let cluster = TestCluster::start(
        2,
        0,
        0,
        &[
            "listener.security.protocol.map=PLAINTEXT:SASL_SSL,CONTROLLER:PLAINTEXT",
            "ssl.keystore.type=PEM",
            &keystore,
            "ssl.truststore.type=PEM",
            &truststore,
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            jaas,
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin",
            "http.listeners=http://127.0.0.1:0",
        ],
    );
    let mut cfg = ClientConfig::with_bootstrap(cluster.bootstrap());
    cfg.set("security.protocol", "SASL_SSL")
        .set("ssl.truststore.location", &pki.ca)
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "admin")
        .set("sasl.password", "admin-secret");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let admin = Admin::new(&cfg).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while admin.describe_cluster().await.map_or(0, |c| {
            c.brokers.iter().filter(|b| b.fenced != Some(true)).count()
        }) < 2
        {
            assert!(
                Instant::now() < deadline,
                "the brokers never both registered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        admin
            .create_topic(NewTopic::new("replicated", 1, 2))
            .await
            .unwrap();
        let producer = Producer::new(&cfg).unwrap();
        producer
            .send(ProducerRecord::new("replicated").value("over TLS"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = admin.describe_topic("replicated").await.unwrap();
            if t.partitions[0].isr.len() == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the follower never joined the ISR: {:?}; node 2's log: {}",
                t.partitions[0],
                cluster.log_tail(2)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // a group 3 records behind on each partition of a topic led by
        // both brokers
        admin
            .create_topic(NewTopic::new("lagged", 2, 1))
            .await
            .unwrap();
        let t = admin.describe_topic("lagged").await.unwrap();
        let mut leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader).collect();
        leaders.sort();
        assert_eq!(leaders, [1, 2], "{:?}", t.partitions);
        for p in 0..2 {
            for i in 0..4 {
                producer
                    .send(
                        ProducerRecord::new("lagged")
                            .partition(p)
                            .value(format!("record-{p}-{i}")),
                    )
                    .await
                    .unwrap();
            }
        }
        producer.close().await.unwrap();
        let committed = (0..2)
            .map(|p| (TopicPartition::new("lagged", p), 1))
            .collect();
        // a new cluster's coordinator may still be loading the group's
        // partition: the admin client retries that, as Java's does
        admin
            .alter_group_offsets("laggards", &committed)
            .await
            .unwrap();
    });
    let lag_on = |id: i32, p: &str| -> Option<f64> {
        let addr = cluster.node(id).http.clone()?;
        let (_, _, body) = common::http::get(&addr, "/metrics", None);
        body.lines().find_map(|l| {
            let rest = l.strip_prefix("kafka_consumergroup_lag{")?;
            let labels = rest.split('}').next()?;
            (labels.contains("consumergroup=\"laggards\"")
                && labels.contains("topic=\"lagged\"")
                && labels.contains(&format!("partition=\"{p}\"")))
            .then(|| l.rsplit(' ').next()?.parse().ok())?
        })
    };
    // the coordinator computes both lags, one from the other leader
    let coordinator = common::cluster::wait_for(Duration::from_secs(60), "the group's lag", || {
        [1, 2]
            .into_iter()
            .find(|id| lag_on(*id, "0") == Some(3.0) && lag_on(*id, "1") == Some(3.0))
    });
    let console = cluster.node(coordinator).http.clone().expect("HTTP");
    let (status, _, page) = common::http::get(&console, "/groups/laggards", None);
    assert_eq!(status, 200);
    assert!(page.contains("id=\"total-lag\">6<"), "{page}");
    // the message browser reads both partitions through the internal
    // consumer, on either node
    for id in [1, 2] {
        let addr = cluster.node(id).http.clone().expect("HTTP");
        let (status, _, page) = common::http::get(
            &addr,
            "/topics/lagged?partition=all&from=offset&offset=0&limit=10",
            None,
        );
        assert_eq!(status, 200);
        for p in 0..2 {
            assert!(
                page.contains(&format!("record-{p}-3")),
                "node {id}'s browser misses partition {p}: {page}"
            );
        }
    }
}

/// `oxka users scram set|list|delete`, and every command's
/// `--command-config` with Kafka's client properties over SASL_SSL.
#[test]
fn cli_manages_scram_users_and_connects_with_them() {
    use std::process::Command;
    let b = start();
    let oxka = |args: &[&str]| {
        let o = Command::new(TestBroker::binary())
            .args(args)
            .output()
            .expect("run oxka");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, _, err) = oxka(&[
        "users",
        "scram",
        "set",
        "carol",
        "--password",
        "carol-secret",
        "-b",
        &b.plaintext,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = oxka(&[
        "users",
        "scram",
        "list",
        "--output",
        "json",
        "-b",
        &b.plaintext,
    ]);
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["user"], "carol");
    assert_eq!(listed[0]["mechanism"], "SCRAM-SHA-512");
    assert!(!out.contains("carol-secret"));

    let props = b._dir.path().join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"carol\" password=\"carol-secret\";\n",
            b.pki.ca
        ),
    )
    .unwrap();
    let props = props.display().to_string();
    let (ok, _, err) = oxka(&[
        "topics",
        "create",
        "cli-sec",
        "-b",
        &b.sasl_ssl,
        "--command-config",
        &props,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = oxka(&[
        "topics",
        "list",
        "-b",
        &b.sasl_ssl,
        "--command-config",
        &props,
    ]);
    assert!(ok && out.contains("cli-sec"), "{out}{err}");

    let (ok, _, err) = oxka(&["users", "scram", "delete", "carol", "-b", &b.plaintext]);
    assert!(ok, "{err}");
    let (ok, _, err) = oxka(&[
        "topics",
        "list",
        "-b",
        &b.sasl_ssl,
        "--command-config",
        &props,
    ]);
    assert!(!ok && err.contains("authentication"), "{err}");
}

/// oxka-client over SASL/OAUTHBEARER with unsecured tokens (Kafka's
/// OAuthBearerLoginModule options, and librdkafka's
/// `sasl.oauthbearer.config`), and KIP-368 on the client side: with
/// `connections.max.reauth.ms` the broker closes a session that was not
/// authenticated again in time; the client re-authenticates on its own, so
/// one connection keeps serving across several session lifetimes.
#[test]
fn oxka_client_oauthbearer_and_reauthentication() {
    use oxka_client::security::ClientSecurity;
    use oxka_client::Connection;
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let sasl = format!("127.0.0.1:{}", ports[1]);
    let listeners = format!(
        "listeners=PLAINTEXT://127.0.0.1:{},SASL_PLAINTEXT://{sasl}",
        ports[0]
    );
    let _broker = TestBroker::start_on(
        ports[0],
        &[
            &listeners,
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=OAUTHBEARER",
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"kafka\";",
            "listener.name.sasl_plaintext.connections.max.reauth.ms=1000",
        ],
    );
    let mut cfg = ClientConfig::with_bootstrap(&sasl);
    cfg.set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginListClaim_scope=\",kafka\";",
        );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let producer = Producer::new(&cfg).unwrap();
        producer
            .send(ProducerRecord::new("sec-oauth").value("r0"))
            .await
            .unwrap();
        producer.close().await.unwrap();

        // one connection through at least three session lifetimes
        let security = ClientSecurity::from_config(&cfg).unwrap();
        let conn = Connection::connect_secure(
            &sasl,
            "reauth-test",
            &security,
            Duration::from_secs(10),
            Duration::from_secs(10),
            1 << 20,
        )
        .await
        .unwrap();
        let until = Instant::now() + Duration::from_millis(3500);
        let mut served = 0;
        while Instant::now() < until {
            let r: kafka_protocol::messages::MetadataResponse = conn
                .send(
                    kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![])),
                )
                .await
                .expect("served after the session's lifetime: re-authenticated");
            assert!(!r.brokers.is_empty());
            served += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(conn.is_alive() && served >= 10, "{served}");

        // librdkafka's unsecured-token config; without the scope the
        // broker's validator asks for, the token is refused
        let mut rd = ClientConfig::with_bootstrap(&sasl);
        rd.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("sasl.oauthbearer.config", "principal=bob")
            .set("request.timeout.ms", "5000");
        let err = Admin::new(&rd)
            .unwrap()
            .list_topics(false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("scope"), "{err}");
        rd.set("sasl.oauthbearer.config", "principal=bob scope=kafka");
        Admin::new(&rd).unwrap().list_topics(false).await.unwrap();
    });
}
