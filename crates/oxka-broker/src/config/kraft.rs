//! The KRaft settings: which roles this process plays, the static voter
//! set, the controller listener and the quorum's timings, with Kafka's
//! start-up checks (KafkaConfig.validateValues in Kafka 4.x): each
//! misconfiguration names its key and stops start-up before anything is
//! written.
//!
//! No settings at all give a single node that is broker and controller,
//! with a quorum of one that needs no controller listener.

use std::path::PathBuf;

use super::{invalid, ConfigError, KafkaConfig, Listener};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct KraftConfig {
    pub broker: bool,
    pub controller: bool,
    /// From `controller.quorum.voters`; empty for the default quorum of
    /// one (this node, reached in-process).
    pub voters: Vec<Voter>,
    /// This node's listener for the quorum (a controller's), if any.
    pub controller_listener: Option<Listener>,
    pub controller_listener_names: Vec<String>,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub fetch_timeout_ms: u64,
    pub metadata_log_dir: PathBuf,
    pub snapshot_bytes: u64,
    pub controlled_shutdown: bool,
}

impl KraftConfig {
    /// The voter ids, this node alone for the default quorum of one.
    pub fn voter_ids(&self, node_id: i32) -> Vec<i32> {
        if self.voters.is_empty() {
            vec![node_id]
        } else {
            self.voters.iter().map(|v| v.id).collect()
        }
    }

    pub fn is_voter(&self, node_id: i32) -> bool {
        self.controller && self.voter_ids(node_id).contains(&node_id)
    }

    /// More than this node takes part: the controller listener and the
    /// connections to the voters are needed.
    pub fn is_multi_node(&self, node_id: i32) -> bool {
        !(self.voters.is_empty()
            || self.voters.len() == 1 && self.voters[0].id == node_id && self.broker)
    }
}

/// `1@host:port,2@host:port,...` (Kafka's QuorumConfig.parseVoterConnections).
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut out: Vec<Voter> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| {
            invalid(
                KEY,
                value,
                format!("'{part}': {why}; expected ID@HOST:PORT"),
            )
        };
        let (id, addr) = part.split_once('@').ok_or_else(|| bad("no '@'"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| bad("the id is not a number"))?;
        if id < 0 {
            return Err(bad("negative id"));
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if out.iter().any(|v| v.id == id) {
            return Err(invalid(
                KEY,
                value,
                format!("duplicate voter id {id}: every voter needs an id of its own"),
            ));
        }
        out.push(Voter { id, host, port });
    }
    Ok(out)
}

impl KafkaConfig {
    /// Reads and checks the KRaft settings; `all_listeners` is `listeners`
    /// before controller listeners were taken out.
    pub(super) fn kraft_from(
        &self,
        all_listeners: &[Listener],
        controller_names: &[String],
    ) -> Result<KraftConfig, ConfigError> {
        let roles_value = self.value("process.roles").unwrap_or_default();
        let roles: Vec<String> = roles_value
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let broker = roles.iter().any(|r| r == "broker");
        let controller = roles.iter().any(|r| r == "controller");
        if !broker && !controller {
            return Err(invalid(
                "process.roles",
                &roles_value,
                "at least one of broker, controller",
            ));
        }
        let voters_value = self.value("controller.quorum.voters").unwrap_or_default();
        let voters = parse_voters(&voters_value)?;
        let node = self.node_id;
        let in_voters = voters.iter().any(|v| v.id == node);
        if controller && !voters.is_empty() && !in_voters {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                format!("process.roles contains 'controller' but node.id {node} is not one of the voters"),
            ));
        }
        if !controller && in_voters {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                format!("node.id {node} is a voter but process.roles has no 'controller' role"),
            ));
        }
        if !controller && voters.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                "a node without the 'controller' role needs the voters to reach the quorum",
            ));
        }
        let controller_listener = all_listeners
            .iter()
            .find(|l| controller_names.contains(&l.name))
            .cloned();
        let needs_listener = controller && !voters.is_empty() && !(voters.len() == 1 && broker);
        if needs_listener && controller_listener.is_none() {
            return Err(invalid(
                "controller.listener.names",
                &self.value("controller.listener.names").unwrap_or_default(),
                "a controller of a quorum needs one of these names among 'listeners' (e.g. CONTROLLER://:9093)",
            ));
        }
        if let Some(adv) = self.value("advertised.listeners") {
            if let Some(name) = adv
                .split(',')
                .filter_map(|s| {
                    s.split_once("://")
                        .map(|(n, _)| n.trim().to_ascii_uppercase())
                })
                .find(|n| controller_names.contains(n))
            {
                return Err(invalid(
                    "advertised.listeners",
                    &adv,
                    format!("the controller listener {name} must not be advertised to clients"),
                ));
            }
        }
        if let Some(ib) = self.value("inter.broker.listener.name") {
            if controller_names.contains(&ib.to_ascii_uppercase()) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    &ib,
                    "the inter-broker listener cannot be a controller listener",
                ));
            }
        }
        let ms = |key: &str| -> Result<u64, ConfigError> { Ok(self.int(key)?.max(0) as u64) };
        let metadata_log_dir = match self.value("metadata.log.dir") {
            Some(d) if !d.trim().is_empty() => PathBuf::from(d.trim()),
            _ => self
                .log_dirs
                .first()
                .cloned()
                .ok_or_else(|| invalid("log.dirs", "", "no directory given"))?,
        };
        Ok(KraftConfig {
            broker,
            controller,
            voters,
            controller_listener,
            controller_listener_names: controller_names.to_vec(),
            session_timeout_ms: ms("broker.session.timeout.ms")?.max(1),
            heartbeat_interval_ms: ms("broker.heartbeat.interval.ms")?.max(1),
            election_timeout_ms: ms("controller.quorum.election.timeout.ms")?,
            fetch_timeout_ms: ms("controller.quorum.fetch.timeout.ms")?,
            metadata_log_dir,
            snapshot_bytes: ms("metadata.log.max.record.bytes.between.snapshots")?.max(1),
            controlled_shutdown: self.bool("controlled.shutdown.enable"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn start(kv: &[(&str, &str)]) -> Result<KafkaConfig, ConfigError> {
        let props: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaConfig::from_props(props).map(|(c, _)| c)
    }

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("{other}"),
        }
    }

    const LISTENERS: (&str, &str) = (
        "listeners",
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    );
    const NAMES: (&str, &str) = ("controller.listener.names", "CONTROLLER");

    #[test]
    fn no_settings_is_a_quorum_of_one() {
        let c = start(&[]).unwrap();
        let k = &c.kraft;
        assert!(k.broker && k.controller && k.voters.is_empty());
        assert_eq!(k.voter_ids(c.node_id), vec![c.node_id]);
        assert!(!k.is_multi_node(c.node_id));
        assert_eq!(
            (k.session_timeout_ms, k.heartbeat_interval_ms),
            (9000, 2000)
        );
    }

    #[test]
    fn a_three_node_combined_cluster() {
        let c = start(&[
            ("node.id", "2"),
            LISTENERS,
            NAMES,
            (
                "controller.quorum.voters",
                "1@h1:9093,2@h2:9093,3@[::1]:9093",
            ),
            ("broker.rack", "r1"),
        ])
        .unwrap();
        assert!(c.kraft.is_voter(2) && c.kraft.is_multi_node(2));
        assert_eq!(c.kraft.voters[2].addr(), "[::1]:9093");
        assert_eq!(c.kraft.controller_listener.as_ref().unwrap().port, 9093);
        assert_eq!(
            c.listeners.len(),
            1,
            "the controller listener is not a client one"
        );
    }

    #[test]
    fn misconfigurations_name_their_key() {
        let voters = ("controller.quorum.voters", "1@h:1,2@h:2,3@h:3");
        assert_eq!(
            key_of(start(&[("node.id", "4"), LISTENERS, NAMES, voters]).unwrap_err()),
            "controller.quorum.voters"
        );
        assert_eq!(
            key_of(
                start(&[
                    ("controller.quorum.voters", "1@h:1,1@h:2"),
                    LISTENERS,
                    NAMES
                ])
                .unwrap_err()
            ),
            "controller.quorum.voters"
        );
        assert_eq!(
            key_of(start(&[("controller.quorum.voters", "x@h:1")]).unwrap_err()),
            "controller.quorum.voters"
        );
        assert_eq!(
            key_of(start(&[("node.id", "1"), voters]).unwrap_err()),
            "controller.listener.names"
        );
        assert_eq!(
            key_of(
                start(&[
                    ("node.id", "1"),
                    LISTENERS,
                    NAMES,
                    voters,
                    (
                        "advertised.listeners",
                        "PLAINTEXT://h:9092,CONTROLLER://h:9093"
                    ),
                ])
                .unwrap_err()
            ),
            "advertised.listeners"
        );
        assert_eq!(
            key_of(start(&[("process.roles", "broker"), ("node.id", "1"), voters]).unwrap_err()),
            "controller.quorum.voters"
        );
        assert_eq!(
            key_of(start(&[("process.roles", "broker")]).unwrap_err()),
            "controller.quorum.voters"
        );
        // a broker-only node of a separate-roles cluster
        let b = start(&[("process.roles", "broker"), ("node.id", "7"), voters]).unwrap();
        assert!(!b.kraft.is_voter(7) && b.kraft.is_multi_node(7));
    }
}
