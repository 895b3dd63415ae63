//! The tables of known configs: names, types, defaults and validators, as
//! Kafka defines them, so that DescribeConfigs, CreateTopics validation and
//! `server.properties` parsing all agree on one source of truth.

/// Kafka's `ConfigDef.Type`, with the wire codes DescribeConfigs v3+ sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    pub fn wire_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// Extra constraints beyond the type, mirroring Kafka's validators.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    None,
    AtLeast(i64),
    Between(i64, i64),
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose every item is one of these.
    ListOf(&'static [&'static str]),
    RatioBetween(f64, f64),
    /// Kafka's non-empty string / list validators.
    NonEmpty,
    /// `max.connections.per.ip.overrides`: `host:count,...`.
    HostCounts,
    /// `leader/follower.replication.throttled.replicas`: `*` or
    /// `partition:broker,...`.
    ThrottledReplicas,
}

/// Kafka's dynamic update modes (`DynamicBrokerConfig`): read-only configs
/// need a restart; per-broker ones may be set for one node only;
/// cluster-wide ones for one node or as the cluster default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    ReadOnly,
    PerBroker,
    ClusterWide,
}

/// A Kafka broker config oxka stores and describes but does not act on.
#[derive(Debug, Clone, Copy)]
pub struct InertConfig {
    pub def: ConfigDef,
    pub mode: UpdateMode,
}

mod inert;
pub use inert::INERT_BROKER_CONFIGS;

#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// `None` is Kafka's `null` default.
    pub default: Option<&'static str>,
    pub validator: Validator,
    pub doc: &'static str,
}

impl ConfigDef {
    /// Checks one value against the type and validator; the error says why
    /// in words a user can act on.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        let as_int = |v: &str| -> Result<i64, String> {
            v.parse::<i64>()
                .map_err(|_| format!("value '{value}' for '{}' is not a number", self.name))
        };
        let n = match self.ty {
            ConfigType::Boolean => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err(format!(
                        "value '{value}' for '{}' must be true or false",
                        self.name
                    ));
                }
                None
            }
            ConfigType::Int => {
                let n = as_int(v)?;
                if i32::try_from(n).is_err() {
                    return Err(format!(
                        "value '{value}' for '{}' is out of range",
                        self.name
                    ));
                }
                Some(n)
            }
            ConfigType::Short => {
                let n = as_int(v)?;
                if i16::try_from(n).is_err() {
                    return Err(format!(
                        "value '{value}' for '{}' is out of range",
                        self.name
                    ));
                }
                Some(n)
            }
            ConfigType::Long => Some(as_int(v)?),
            ConfigType::Double => {
                let d = v
                    .parse::<f64>()
                    .map_err(|_| format!("value '{value}' for '{}' is not a number", self.name))?;
                if let Validator::RatioBetween(lo, hi) = self.validator {
                    if d < lo || d > hi {
                        return Err(format!(
                            "value '{value}' for '{}' must be between {lo} and {hi}",
                            self.name
                        ));
                    }
                }
                None
            }
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                None
            }
        };
        match (self.validator, n) {
            (Validator::AtLeast(min), Some(n)) if n < min => Err(format!(
                "value '{value}' for '{}' must be at least {min}",
                self.name
            )),
            (Validator::Between(lo, hi), Some(n)) if n < lo || n > hi => Err(format!(
                "value '{value}' for '{}' must be between {lo} and {hi}",
                self.name
            )),
            (Validator::OneOf(allowed), _)
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) =>
            {
                Err(format!(
                    "value '{value}' for '{}' must be one of {}",
                    self.name,
                    allowed.join(", ")
                ))
            }
            (Validator::NonEmpty, _) if v.is_empty() => {
                Err(format!("value for '{}' must not be empty", self.name))
            }
            (Validator::HostCounts, _) => {
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let ok = item.rsplit_once(':').is_some_and(|(h, n)| {
                        !h.trim().is_empty() && n.trim().parse::<u32>().is_ok()
                    });
                    if !ok {
                        return Err(format!(
                            "value '{value}' for '{}': '{item}' is not of the form host:count",
                            self.name
                        ));
                    }
                }
                Ok(())
            }
            (Validator::ThrottledReplicas, _) => {
                if v == "*" {
                    return Ok(());
                }
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let ok = item.split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    });
                    if !ok {
                        return Err(format!(
                            "value '{value}' for '{}' must be '*' or a list of partitionId:brokerId",
                            self.name
                        ));
                    }
                }
                Ok(())
            }
            (Validator::ListOf(allowed), _) => {
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(item)) {
                        return Err(format!(
                            "value '{value}' for '{}' may only contain {}",
                            self.name,
                            allowed.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];

macro_rules! def {
    ($name:expr, $ty:ident, $default:expr, $validator:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            validator: $validator,
            doc: $doc,
        }
    };
}

/// Broker configs oxka reads or reports. Keys not listed here are accepted
/// with a warning (Kafka has hundreds; unknown ones must not stop a broker
/// started from an existing `server.properties`).
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    def!(
        "node.id",
        Int,
        Some("1"),
        Validator::AtLeast(0),
        "The node id of this server."
    ),
    def!(
        "process.roles",
        List,
        Some("broker,controller"),
        Validator::ListOf(&["broker", "controller"]),
        "The roles this process plays."
    ),
    def!(
        "listeners",
        List,
        Some("PLAINTEXT://:9092"),
        Validator::None,
        "Listener URIs to bind."
    ),
    def!(
        "advertised.listeners",
        List,
        None,
        Validator::None,
        "Listener URIs given to clients; defaults to the address each client connected to."
    ),
    def!(
        "log.dirs",
        List,
        None,
        Validator::None,
        "Directories holding the log data."
    ),
    def!(
        "log.dir",
        String,
        None,
        Validator::None,
        "Single log directory, used when log.dirs is unset."
    ),
    def!(
        "controller.listener.names",
        List,
        None,
        Validator::None,
        "Listeners used by the controller quorum; not served to clients."
    ),
    def!(
        "listener.security.protocol.map",
        String,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        Validator::None,
        "Security protocol of each listener name: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    ),
    def!(
        "security.inter.broker.protocol",
        String,
        Some("PLAINTEXT"),
        Validator::OneOf(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        "Protocol between brokers when inter.broker.listener.name is not set: the listener of that name is the inter-broker one."
    ),
    def!(
        "authorizer.class.name",
        String,
        Some(""),
        Validator::None,
        "Authorizer: org.apache.kafka.metadata.authorizer.StandardAuthorizer (or its alias oxka) enforces the ACLs of the cluster metadata; empty: none. Any other class stops start-up."
    ),
    def!(
        "super.users",
        String,
        Some(""),
        Validator::None,
        "Principals allowed every operation whatever the ACLs, separated by semicolons (User:admin;User:ANONYMOUS)."
    ),
    def!(
        "allow.everyone.if.no.acl.found",
        Boolean,
        Some("false"),
        Validator::None,
        "With an authorizer: whether a resource that no ACL names is open to every principal."
    ),
    def!(
        "max.connections",
        Int,
        Some("2147483647"),
        Validator::AtLeast(0),
        "Connections the broker serves at once; at the limit it stops accepting until one closes."
    ),
    def!(
        "max.connections.per.ip",
        Int,
        Some("2147483647"),
        Validator::AtLeast(0),
        "Connections one address may hold; a connection over it is closed at once."
    ),
    def!(
        "max.connections.per.ip.overrides",
        String,
        Some(""),
        Validator::HostCounts,
        "Per-address exceptions to max.connections.per.ip: host:count,..."
    ),
    def!(
        "max.connection.creation.rate",
        Int,
        Some("2147483647"),
        Validator::AtLeast(0),
        "New connections per second the broker accepts (KIP-612); beyond it the acceptor delays connections."
    ),
    def!(
        "quota.window.num",
        Int,
        Some("11"),
        Validator::AtLeast(1),
        "Samples a quota's rate is measured over (connection creation rates, client quotas)."
    ),
    def!(
        "quota.window.size.seconds",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Length of each sample of a quota's rate; also the longest delay of a throttled connection."
    ),
    def!(
        "controller.quota.window.num",
        Int,
        Some("11"),
        Validator::AtLeast(1),
        "Samples kept in memory for controller mutation quotas (the token bucket's burst)."
    ),
    def!(
        "controller.quota.window.size.seconds",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Time span of each controller mutation quota sample."
    ),
    def!(
        "queued.max.request.bytes",
        Long,
        Some("-1"),
        Validator::None,
        "Bytes of requests read and held at once across connections; -1 means oxka's bound (see README)."
    ),
    def!(
        "max.decompressed.message.bytes",
        Int,
        Some("2147483639"),
        Validator::Between(1, 2147483639),
        "Largest decompressed record a compressed batch may hold (INVALID_RECORD above it)."
    ),
    def!(
        "inter.broker.listener.name",
        String,
        None,
        Validator::None,
        "Listener brokers use among themselves."
    ),
    // TLS and SASL (docs/security.md); every one of them may also be set
    // per listener as `listener.name.<listener>.<key>`
    def!(
        "ssl.keystore.type",
        String,
        Some("JKS"),
        Validator::None,
        "Keystore format; oxka reads PEM (set it to PEM on TLS listeners)."
    ),
    def!(
        "ssl.keystore.location",
        String,
        None,
        Validator::None,
        "PEM file with the private key and the certificate chain."
    ),
    def!(
        "ssl.keystore.certificate.chain",
        Password,
        None,
        Validator::None,
        "The certificate chain in PEM, inline (instead of ssl.keystore.location)."
    ),
    def!(
        "ssl.keystore.key",
        Password,
        None,
        Validator::None,
        "The private key in PEM, inline (instead of ssl.keystore.location)."
    ),
    def!(
        "ssl.keystore.password",
        Password,
        None,
        Validator::None,
        "Keystore password; not used by PEM keystores."
    ),
    def!(
        "ssl.key.password",
        Password,
        None,
        Validator::None,
        "Password of an encrypted PKCS#8 private key."
    ),
    def!(
        "ssl.truststore.type",
        String,
        Some("JKS"),
        Validator::None,
        "Truststore format; oxka reads PEM."
    ),
    def!(
        "ssl.truststore.location",
        String,
        None,
        Validator::None,
        "PEM file of the CA certificates trusted for client certificates."
    ),
    def!(
        "ssl.truststore.certificates",
        Password,
        None,
        Validator::None,
        "Trusted CA certificates in PEM, inline."
    ),
    def!(
        "ssl.truststore.password",
        Password,
        None,
        Validator::None,
        "Truststore password; not used by PEM truststores."
    ),
    def!(
        "ssl.enabled.protocols",
        List,
        Some("TLSv1.2,TLSv1.3"),
        Validator::None,
        "TLS versions accepted: TLSv1.2 and/or TLSv1.3."
    ),
    def!(
        "ssl.client.auth",
        String,
        Some("none"),
        Validator::OneOf(&["required", "requested", "none"]),
        "Client certificates: required, requested or none."
    ),
    def!(
        "ssl.principal.mapping.rules",
        String,
        Some("DEFAULT"),
        Validator::None,
        "Rules mapping a client certificate's distinguished name to a user name."
    ),
    def!(
        "sasl.enabled.mechanisms",
        List,
        Some("GSSAPI"),
        Validator::None,
        "SASL mechanisms served: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER."
    ),
    def!(
        "sasl.mechanism.inter.broker.protocol",
        String,
        Some("GSSAPI"),
        Validator::None,
        "SASL mechanism of the replica fetchers and transaction markers on a SASL inter-broker listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    ),
    def!(
        "connections.max.reauth.ms",
        Long,
        Some("0"),
        Validator::None,
        "SASL session lifetime (KIP-368); 0 for sessions that never expire."
    ),
    def!(
        "connection.failed.authentication.delay.ms",
        Int,
        Some("100"),
        Validator::AtLeast(0),
        "Delay before a failed authentication is answered and the connection closed."
    ),
    def!(
        "controller.quorum.voters",
        List,
        Some(""),
        Validator::None,
        "Static controller quorum."
    ),
    def!(
        "controller.quorum.bootstrap.servers",
        List,
        Some(""),
        Validator::None,
        "Controller quorum bootstrap endpoints."
    ),
    def!(
        "broker.session.timeout.ms",
        Int,
        Some("9000"),
        Validator::AtLeast(1),
        "Without a heartbeat for this long the active controller fences a broker."
    ),
    def!(
        "broker.heartbeat.interval.ms",
        Int,
        Some("2000"),
        Validator::AtLeast(1),
        "How often a broker heartbeats to the active controller."
    ),
    def!(
        "controller.quorum.election.timeout.ms",
        Int,
        Some("1000"),
        Validator::AtLeast(0),
        "Without a leader for this long a voter starts an election (randomised up to twice it)."
    ),
    def!(
        "controller.quorum.fetch.timeout.ms",
        Int,
        Some("2000"),
        Validator::AtLeast(0),
        "Without contact with the leader for this long a voter gives it up (check-quorum window)."
    ),
    def!(
        "metadata.log.dir",
        String,
        None,
        Validator::None,
        "Directory of the metadata log (__cluster_metadata-0); the first log dir when unset."
    ),
    def!(
        "metadata.log.max.record.bytes.between.snapshots",
        Long,
        Some("20971520"),
        Validator::AtLeast(1),
        "Bytes of metadata records after which the image is snapshotted and the log before it deleted."
    ),
    def!(
        "controlled.shutdown.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "On SIGTERM a broker asks the controller to move its leaderships away before it stops."
    ),
    def!(
        "broker.rack",
        String,
        None,
        Validator::None,
        "Rack of this broker."
    ),
    def!(
        "num.partitions",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Default partition count of new topics."
    ),
    def!(
        "default.replication.factor",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Default replication factor of new topics."
    ),
    def!(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "Create a topic when a client asks for an unknown one."
    ),
    def!(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "Allow DeleteTopics."
    ),
    def!(
        "message.max.bytes",
        Int,
        Some("1048588"),
        Validator::AtLeast(0),
        "Largest record batch size allowed."
    ),
    def!(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        Validator::AtLeast(14),
        "Size of a single log segment file."
    ),
    def!(
        "log.roll.ms",
        Long,
        None,
        Validator::AtLeast(1),
        "Maximum age of a segment before it rolls."
    ),
    def!(
        "log.roll.hours",
        Int,
        Some("168"),
        Validator::AtLeast(1),
        "Maximum age of a segment before it rolls (hours)."
    ),
    def!(
        "log.roll.jitter.ms",
        Long,
        None,
        Validator::AtLeast(0),
        "Jitter subtracted from the roll time."
    ),
    def!(
        "log.roll.jitter.hours",
        Int,
        Some("0"),
        Validator::AtLeast(0),
        "Jitter subtracted from the roll time (hours)."
    ),
    def!(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        Validator::AtLeast(0),
        "Bytes between offset index entries."
    ),
    def!(
        "log.index.size.max.bytes",
        Int,
        Some("10485760"),
        Validator::AtLeast(4),
        "Maximum size of an offset index file."
    ),
    def!(
        "log.flush.interval.messages",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(1),
        "Messages accumulated before a forced fsync."
    ),
    def!(
        "log.flush.interval.ms",
        Long,
        None,
        Validator::None,
        "Milliseconds before a forced fsync."
    ),
    def!(
        "http.console.actions.enable",
        Boolean,
        Some("false"),
        Validator::None,
        "oxka: the web console's changes (create/delete topics, add partitions, change topic configs, reset group offsets); off, they are refused with 403 and not offered."
    ),
    def!(
        "http.console.allowed.hosts",
        List,
        Some(""),
        Validator::None,
        "oxka: host names (besides IP addresses, localhost and the host of http.listeners) the web console answers for; other Host headers get 403 (a guard against DNS rebinding)."
    ),
    def!(
        "log.flush.scheduler.interval.ms",
        Long,
        Some(LONG_MAX),
        Validator::None,
        "How often the flusher checks logs."
    ),
    def!(
        "log.dir.min.free.bytes",
        Long,
        Some("67108864"),
        Validator::AtLeast(0),
        "oxka: a log dir with less free space takes no writes (KAFKA_STORAGE_ERROR, retriable) and keeps serving reads, until space is freed; 0 disables the check."
    ),
    def!(
        "http.listeners",
        List,
        Some("http://127.0.0.1:9644"),
        Validator::None,
        "oxka: the HTTP listener for /metrics, /health and the console, as http://HOST:PORT (one); empty turns it off. Left at its default, a port already in use is logged and the broker runs without it; a value that is set must bind."
    ),
    def!(
        "http.max.connections",
        Int,
        Some("64"),
        Validator::AtLeast(1),
        "oxka: HTTP connections served at once; further ones wait in the accept queue."
    ),
    def!(
        "http.request.max.bytes",
        Int,
        Some("1048576"),
        Validator::AtLeast(0),
        "oxka: the largest HTTP request body accepted (413 beyond)."
    ),
    def!(
        "metrics.instrumentation.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "oxka: false stops counting request, topic and connection metrics on the request path (they stay 0 in /metrics; state such as log sizes is still read at scrape time). For measuring their cost."
    ),
    def!(
        "log.flush.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        Validator::AtLeast(0),
        "How often recovery points are checkpointed."
    ),
    def!(
        "log.message.timestamp.type",
        String,
        Some("CreateTime"),
        Validator::OneOf(TIMESTAMP_TYPES),
        "Timestamp kept in batches."
    ),
    def!(
        "log.message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(0),
        "Allowed age of a record timestamp."
    ),
    def!(
        "log.message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        Validator::AtLeast(0),
        "Allowed future skew of a record timestamp."
    ),
    def!(
        "log.retention.hours",
        Int,
        Some("168"),
        Validator::None,
        "Hours to keep a log segment."
    ),
    def!(
        "log.retention.minutes",
        Int,
        None,
        Validator::None,
        "Minutes to keep a log segment."
    ),
    def!(
        "log.retention.ms",
        Long,
        None,
        Validator::None,
        "Milliseconds to keep a log segment."
    ),
    def!(
        "log.retention.bytes",
        Long,
        Some("-1"),
        Validator::None,
        "Maximum size of a partition before old segments go."
    ),
    def!(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        Validator::AtLeast(1),
        "How often retention is checked."
    ),
    def!(
        "log.segment.delete.delay.ms",
        Long,
        Some("60000"),
        Validator::AtLeast(0),
        "Delay before a deleted segment's file goes."
    ),
    def!(
        "log.cleanup.policy",
        List,
        Some("delete"),
        Validator::ListOf(CLEANUP_POLICIES),
        "Default cleanup policy."
    ),
    def!(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "Run the log cleaner."
    ),
    def!(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        Validator::RatioBetween(0.0, 1.0),
        "Dirty ratio that triggers cleaning."
    ),
    def!(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        Validator::AtLeast(0),
        "How long tombstones are kept."
    ),
    def!(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        Validator::AtLeast(0),
        "Minimum age before a record may be compacted."
    ),
    def!(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(1),
        "Maximum age before a record must be compacted."
    ),
    def!(
        "log.preallocate",
        Boolean,
        Some("false"),
        Validator::None,
        "Preallocate segment files."
    ),
    def!(
        "compression.type",
        String,
        Some("producer"),
        Validator::OneOf(COMPRESSION_TYPES),
        "Codec the broker stores batches in."
    ),
    def!(
        "compression.gzip.level",
        Int,
        Some("-1"),
        Validator::Between(-1, 9),
        "gzip level."
    ),
    def!(
        "compression.lz4.level",
        Int,
        Some("9"),
        Validator::Between(1, 17),
        "lz4 level."
    ),
    def!(
        "compression.zstd.level",
        Int,
        Some("3"),
        Validator::Between(-131072, 22),
        "zstd level."
    ),
    def!(
        "min.insync.replicas",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Replicas that must acknowledge an acks=all write."
    ),
    def!(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        Validator::None,
        "Move leaderships back to preferred replicas periodically."
    ),
    def!(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        Validator::AtLeast(1),
        "How often the controller checks for partitions off their preferred leader."
    ),
    def!(
        "replica.selector.class",
        String,
        None,
        Validator::None,
        "KIP-392: org.apache.kafka.common.replica.RackAwareReplicaSelector (or rack-aware) sends consumers with client.rack to an in-sync replica in their rack."
    ),
    def!(
        "num.replica.fetchers",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        "Fetcher tasks per leader broker that replicate its partitions here."
    ),
    def!(
        "replica.fetch.backoff.ms",
        Int,
        Some("1000"),
        Validator::AtLeast(0),
        "Pause after a replica fetch failed."
    ),
    def!(
        "replica.fetch.max.bytes",
        Int,
        Some("1048576"),
        Validator::AtLeast(0),
        "Bytes a follower asks for per partition in one fetch."
    ),
    def!(
        "replica.fetch.min.bytes",
        Int,
        Some("1"),
        Validator::None,
        "Bytes a follower's fetch waits for at the leader."
    ),
    def!(
        "replica.fetch.response.max.bytes",
        Int,
        Some("10485760"),
        Validator::AtLeast(0),
        "Bytes a follower asks for in one fetch over all partitions."
    ),
    def!(
        "replica.fetch.wait.max.ms",
        Int,
        Some("500"),
        Validator::None,
        "How long a follower's fetch may wait at the leader for data."
    ),
    def!(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        Validator::None,
        "A follower that has not caught up for this long leaves the ISR."
    ),
    def!(
        "replica.socket.timeout.ms",
        Int,
        Some("30000"),
        Validator::None,
        "How long a follower waits for a fetch answer."
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Validator::None,
        "Allow out-of-sync replicas to become leader."
    ),
    def!(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        Validator::AtLeast(1),
        "Largest request frame accepted."
    ),
    def!(
        "socket.send.buffer.bytes",
        Int,
        Some("102400"),
        Validator::None,
        "SO_SNDBUF of sockets."
    ),
    def!(
        "socket.receive.buffer.bytes",
        Int,
        Some("102400"),
        Validator::None,
        "SO_RCVBUF of sockets."
    ),
    def!(
        "fetch.max.bytes",
        Int,
        Some("57671680"),
        Validator::AtLeast(1024),
        "Largest Fetch response the broker builds, whatever the client asks."
    ),
    def!(
        "queued.max.requests",
        Int,
        Some("500"),
        Validator::AtLeast(1),
        "Requests being handled at once before reads pause."
    ),
    def!(
        "num.network.threads",
        Int,
        Some("3"),
        Validator::AtLeast(1),
        "Kept for compatibility; oxka sizes its runtime itself."
    ),
    def!(
        "num.io.threads",
        Int,
        Some("8"),
        Validator::AtLeast(1),
        "Kept for compatibility; oxka sizes its runtime itself."
    ),
    def!(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        Validator::None,
        "Idle connections are closed after this."
    ),
    def!(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        Validator::AtLeast(1),
        "Partitions of __consumer_offsets."
    ),
    def!(
        "offsets.topic.replication.factor",
        Short,
        Some("3"),
        Validator::AtLeast(1),
        "Replication factor of __consumer_offsets."
    ),
    def!(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        Validator::None,
        "Delay of a new group's first rebalance."
    ),
    def!(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        Validator::None,
        "Smallest session.timeout.ms a group member may ask for."
    ),
    def!(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        Validator::None,
        "Largest session.timeout.ms a group member may ask for."
    ),
    def!(
        "group.max.size",
        Int,
        Some("2147483647"),
        Validator::AtLeast(1),
        "Members a classic group may have."
    ),
    def!(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        Validator::AtLeast(1),
        "Committed offsets of an empty group expire after this."
    ),
    def!(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        Validator::AtLeast(1),
        "How often expired offsets are looked for."
    ),
    def!(
        "offset.metadata.max.bytes",
        Int,
        Some("4096"),
        Validator::None,
        "Largest metadata string an offset commit may carry."
    ),
    def!(
        "offsets.topic.segment.bytes",
        Int,
        Some("104857600"),
        Validator::AtLeast(1),
        "Segment size of __consumer_offsets."
    ),
    def!(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        Validator::AtLeast(1),
        "Partitions of __transaction_state."
    ),
    def!(
        "group.consumer.heartbeat.interval.ms",
        Int,
        Some("5000"),
        Validator::AtLeast(1),
        "Heartbeat interval given to KIP-848 consumer group members."
    ),
    def!(
        "group.consumer.session.timeout.ms",
        Int,
        Some("45000"),
        Validator::AtLeast(1),
        "A KIP-848 member that does not heartbeat for this long is fenced."
    ),
    def!(
        "group.consumer.assignors",
        List,
        Some("uniform,range"),
        Validator::None,
        "Server-side assignors of KIP-848 groups; the first is the default."
    ),
    def!(
        "group.consumer.max.size",
        Int,
        Some("2147483647"),
        Validator::AtLeast(1),
        "Members a KIP-848 consumer group may have."
    ),
    def!(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        Validator::AtLeast(0),
        "Sleep of the log cleaner when no log needs cleaning."
    ),
    def!(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        Validator::None,
        "Memory for the cleaner's key -> offset map."
    ),
    def!(
        "log.cleaner.io.buffer.size",
        Int,
        Some("524288"),
        Validator::AtLeast(0),
        "Bytes the cleaner writes to a cleaned segment at a time."
    ),
    def!(
        "log.cleaner.io.buffer.load.factor",
        Double,
        Some("0.9"),
        Validator::None,
        "How full the cleaner's offset map may get."
    ),
    def!(
        "log.cleaner.io.max.bytes.per.second",
        Double,
        Some("1.7976931348623157E308"),
        Validator::None,
        "Read plus write rate limit of the log cleaner."
    ),
    def!(
        "log.cleaner.threads",
        Int,
        Some("1"),
        Validator::AtLeast(0),
        "Cleaner threads (oxka runs one)."
    ),
    // exactly-once (coordinator/txn, oxka-log producer_state)
    def!(
        "transaction.max.timeout.ms",
        Int,
        Some("900000"),
        Validator::AtLeast(1),
        "Largest transaction.timeout.ms a producer may ask for."
    ),
    def!(
        "transactional.id.expiration.ms",
        Int,
        Some("604800000"),
        Validator::AtLeast(1),
        "A transactional id idle this long (no transaction open) is forgotten."
    ),
    def!(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Int,
        Some("10000"),
        Validator::AtLeast(1),
        "How often transactions past their timeout are looked for and aborted."
    ),
    def!(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Int,
        Some("3600000"),
        Validator::AtLeast(1),
        "How often expired transactional ids are removed."
    ),
    def!(
        "transaction.state.log.segment.bytes",
        Int,
        Some("104857600"),
        Validator::AtLeast(1),
        "Segment size of __transaction_state."
    ),
    def!(
        "transaction.state.log.replication.factor",
        Short,
        Some("3"),
        Validator::AtLeast(1),
        "Replication factor of __transaction_state (capped by live brokers)."
    ),
    def!(
        "transaction.state.log.min.isr",
        Int,
        Some("2"),
        Validator::AtLeast(1),
        "min.insync.replicas of __transaction_state."
    ),
    def!(
        "producer.id.expiration.ms",
        Int,
        Some("86400000"),
        Validator::AtLeast(1),
        "Producer state of an idle producer id is dropped after this."
    ),
    def!(
        "producer.id.expiration.check.interval.ms",
        Int,
        Some("600000"),
        Validator::AtLeast(1),
        "How often idle producer ids are looked for."
    ),
];

/// Topic-level configs with the broker config each one falls back to, as in
/// Kafka's `LogConfig` / `ServerTopicConfigSynonyms`.
pub struct TopicConfigDef {
    pub def: ConfigDef,
    pub broker_synonym: Option<&'static str>,
}

macro_rules! tdef {
    ($name:expr, $ty:ident, $default:expr, $validator:expr, $synonym:expr) => {
        TopicConfigDef {
            def: def!($name, $ty, $default, $validator, ""),
            broker_synonym: $synonym,
        }
    };
}

pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    tdef!(
        "cleanup.policy",
        List,
        Some("delete"),
        Validator::ListOf(CLEANUP_POLICIES),
        Some("log.cleanup.policy")
    ),
    tdef!(
        "compression.type",
        String,
        Some("producer"),
        Validator::OneOf(COMPRESSION_TYPES),
        Some("compression.type")
    ),
    tdef!(
        "compression.gzip.level",
        Int,
        Some("-1"),
        Validator::Between(-1, 9),
        Some("compression.gzip.level")
    ),
    tdef!(
        "compression.lz4.level",
        Int,
        Some("9"),
        Validator::Between(1, 17),
        Some("compression.lz4.level")
    ),
    tdef!(
        "compression.zstd.level",
        Int,
        Some("3"),
        Validator::Between(-131072, 22),
        Some("compression.zstd.level")
    ),
    tdef!(
        "delete.retention.ms",
        Long,
        Some("86400000"),
        Validator::AtLeast(0),
        Some("log.cleaner.delete.retention.ms")
    ),
    tdef!(
        "file.delete.delay.ms",
        Long,
        Some("60000"),
        Validator::AtLeast(0),
        Some("log.segment.delete.delay.ms")
    ),
    tdef!(
        "flush.messages",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(1),
        Some("log.flush.interval.messages")
    ),
    tdef!(
        "flush.ms",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(0),
        Some("log.flush.interval.ms")
    ),
    tdef!(
        "index.interval.bytes",
        Int,
        Some("4096"),
        Validator::AtLeast(0),
        Some("log.index.interval.bytes")
    ),
    tdef!(
        "max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(1),
        Some("log.cleaner.max.compaction.lag.ms")
    ),
    tdef!(
        "max.message.bytes",
        Int,
        Some("1048588"),
        Validator::AtLeast(0),
        Some("message.max.bytes")
    ),
    tdef!(
        "message.timestamp.type",
        String,
        Some("CreateTime"),
        Validator::OneOf(TIMESTAMP_TYPES),
        Some("log.message.timestamp.type")
    ),
    tdef!(
        "message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        Validator::AtLeast(0),
        Some("log.message.timestamp.before.max.ms")
    ),
    tdef!(
        "message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        Validator::AtLeast(0),
        Some("log.message.timestamp.after.max.ms")
    ),
    tdef!(
        "min.cleanable.dirty.ratio",
        Double,
        Some("0.5"),
        Validator::RatioBetween(0.0, 1.0),
        Some("log.cleaner.min.cleanable.ratio")
    ),
    tdef!(
        "min.compaction.lag.ms",
        Long,
        Some("0"),
        Validator::AtLeast(0),
        Some("log.cleaner.min.compaction.lag.ms")
    ),
    tdef!(
        "min.insync.replicas",
        Int,
        Some("1"),
        Validator::AtLeast(1),
        Some("min.insync.replicas")
    ),
    tdef!(
        "preallocate",
        Boolean,
        Some("false"),
        Validator::None,
        Some("log.preallocate")
    ),
    tdef!(
        "retention.bytes",
        Long,
        Some("-1"),
        Validator::None,
        Some("log.retention.bytes")
    ),
    tdef!(
        "retention.ms",
        Long,
        Some("604800000"),
        Validator::AtLeast(-1),
        Some("log.retention.ms")
    ),
    tdef!(
        "segment.bytes",
        Int,
        Some("1073741824"),
        Validator::AtLeast(14),
        Some("log.segment.bytes")
    ),
    tdef!(
        "segment.index.bytes",
        Int,
        Some("10485760"),
        Validator::AtLeast(4),
        Some("log.index.size.max.bytes")
    ),
    tdef!(
        "segment.jitter.ms",
        Long,
        Some("0"),
        Validator::AtLeast(0),
        Some("log.roll.jitter.ms")
    ),
    tdef!(
        "segment.ms",
        Long,
        Some("604800000"),
        Validator::AtLeast(1),
        Some("log.roll.ms")
    ),
    tdef!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Validator::None,
        Some("unclean.leader.election.enable")
    ),
    tdef!(
        "max.decompressed.message.bytes",
        Int,
        Some("2147483639"),
        Validator::Between(1, 2147483639),
        Some("max.decompressed.message.bytes")
    ),
    // Kafka 4.x topic configs for features oxka does not have (tiered
    // storage, replication throttling, the dead-letter queue of KIP-1191):
    // accepted, stored and described with Kafka's defaults so that tools
    // copying a topic's whole config work; only `remote.storage.enable=true`
    // is refused (see `KafkaConfig::validate_topic_configs`).
    tdef!(
        "errors.deadletterqueue.group.enable",
        Boolean,
        Some("false"),
        Validator::None,
        None
    ),
    tdef!(
        "follower.replication.throttled.replicas",
        List,
        Some(""),
        Validator::ThrottledReplicas,
        None
    ),
    tdef!(
        "leader.replication.throttled.replicas",
        List,
        Some(""),
        Validator::ThrottledReplicas,
        None
    ),
    tdef!(
        "local.retention.bytes",
        Long,
        Some("-2"),
        Validator::AtLeast(-2),
        Some("log.local.retention.bytes")
    ),
    tdef!(
        "local.retention.ms",
        Long,
        Some("-2"),
        Validator::AtLeast(-2),
        Some("log.local.retention.ms")
    ),
    tdef!(
        "remote.copy.lag.bytes",
        Long,
        Some("-1"),
        Validator::AtLeast(-1),
        Some("log.remote.copy.lag.bytes")
    ),
    tdef!(
        "remote.copy.lag.ms",
        Long,
        Some("0"),
        Validator::AtLeast(-1),
        Some("log.remote.copy.lag.ms")
    ),
    tdef!(
        "remote.log.copy.disable",
        Boolean,
        Some("false"),
        Validator::None,
        None
    ),
    tdef!(
        "remote.log.delete.on.disable",
        Boolean,
        Some("false"),
        Validator::None,
        None
    ),
    tdef!(
        "remote.storage.enable",
        Boolean,
        Some("false"),
        Validator::None,
        None
    ),
];

/// A broker config of Kafka's table: one oxka acts on, or an inert one.
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS
        .iter()
        .find(|d| d.name == name)
        .or_else(|| inert_def(name).map(|i| &i.def))
}

/// A Kafka broker config oxka does not act on.
pub fn inert_def(name: &str) -> Option<&'static InertConfig> {
    INERT_BROKER_CONFIGS.iter().find(|d| d.def.name == name)
}

/// Every broker config of Kafka's table, the ones oxka acts on first.
pub fn all_broker_defs() -> impl Iterator<Item = &'static ConfigDef> {
    // the two tables never share a key (`no_key_is_both_used_and_inert`)
    BROKER_CONFIGS
        .iter()
        .chain(INERT_BROKER_CONFIGS.iter().map(|i| &i.def))
}

pub fn topic_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.def.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_reject_bad_values() {
        let retention = &topic_def("retention.ms").unwrap().def;
        assert!(retention.validate("not-a-number").is_err());
        assert!(retention.validate("-2").is_err());
        assert!(retention.validate("1000").is_ok());
        let policy = &topic_def("cleanup.policy").unwrap().def;
        assert!(policy.validate("compact,delete").is_ok());
        assert!(policy.validate("compact,bogus").is_err());
        let ts = &topic_def("message.timestamp.type").unwrap().def;
        assert!(ts.validate("LogAppendTime").is_ok());
        assert!(ts.validate("Sometime").is_err());
        let ratio = &topic_def("min.cleanable.dirty.ratio").unwrap().def;
        assert!(ratio.validate("1.5").is_err());
        assert!(ratio.validate("0.1").is_ok());
        let b = broker_def("auto.create.topics.enable").unwrap();
        assert!(b.validate("yes").is_err());
        let n = broker_def("node.id").unwrap();
        assert!(n.validate("99999999999").is_err());
    }

    /// A key oxka starts acting on moves into `BROKER_CONFIGS`; the
    /// generated table must then be regenerated without it
    /// (`scripts/kafka-configs/gen_inert.py`).
    #[test]
    fn no_key_is_both_used_and_inert() {
        for d in BROKER_CONFIGS {
            assert!(
                inert_def(d.name).is_none(),
                "{} is in BROKER_CONFIGS and in the generated inert table: run scripts/kafka-configs/gen_inert.py",
                d.name
            );
        }
    }

    #[test]
    fn every_default_is_valid() {
        for d in all_broker_defs() {
            if let Some(v) = d.default {
                d.validate(v).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        for d in TOPIC_CONFIGS {
            if let Some(v) = d.def.default {
                d.def.validate(v).unwrap_or_else(|e| panic!("{e}"));
            }
            if let Some(s) = d.broker_synonym {
                assert!(
                    broker_def(s).is_some(),
                    "synonym {s} of {} unknown",
                    d.def.name
                );
            }
        }
    }
}
