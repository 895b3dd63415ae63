//! The cluster metadata image: brokers, topics, partitions and topic configs,
//! plus its persistence.
//!
//! Today the image is owned by the single node and persisted as an atomically
//! replaced JSON snapshot in the first log dir. The multi-broker issue moves
//! authority to the Raft-replicated metadata log (crate `oxka-controller`);
//! the image's shape (topic ids, replica lists, ISR, leader epochs) is already
//! the one that log will carry, so handlers do not change.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const METADATA_FILE: &str = "oxka-metadata.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionInfo {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionInfo>,
    /// Topic-level overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map(|p| p.replicas.len() as i16)
            .unwrap_or(0)
    }

    pub fn is_internal(&self) -> bool {
        self.name == "__consumer_offsets" || self.name == "__transaction_state"
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, TopicInfo>,
    /// First producer id not yet handed out in a block (Kafka's
    /// ProducerIdsRecord): ids below it may be in use, so a restart
    /// continues above it and never reuses one.
    #[serde(default)]
    pub next_producer_id_block: i64,
    /// Dynamic broker configs (AlterConfigs on resource type BROKER) by
    /// resource name: a node id, or "" for the cluster-wide default
    /// (Kafka's ConfigRecords for brokers). Topic overrides live in
    /// [`TopicInfo::configs`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Group config overrides (KIP-848, resource type GROUP) by group id
    /// (Kafka's ConfigRecords for groups); a group need not exist.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip)]
    by_id: HashMap<Uuid, String>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicInfo> {
        self.by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn upsert(&mut self, t: TopicInfo) {
        self.by_id.insert(t.id, t.name.clone());
        self.topics.insert(t.name.clone(), t);
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicInfo> {
        let t = self.topics.remove(name)?;
        self.by_id.remove(&t.id);
        Some(t)
    }

    fn reindex(&mut self) {
        self.by_id = self
            .topics
            .values()
            .map(|t| (t.id, t.name.clone()))
            .collect();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metadata file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Persists the image with the write-temp, fsync, rename, fsync-dir dance, so
/// that a crash leaves either the old or the new file, never a mix.
pub struct MetadataStore {
    path: PathBuf,
}

impl MetadataStore {
    pub fn new(dir: &Path) -> Self {
        MetadataStore {
            path: dir.join(METADATA_FILE),
        }
    }

    pub fn load(&self) -> Result<MetadataImage, MetadataError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(MetadataImage::default())
            }
            Err(source) => {
                return Err(MetadataError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut image: MetadataImage =
            serde_json::from_slice(&bytes).map_err(|e| MetadataError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        image.reindex();
        Ok(image)
    }

    pub fn save(&self, image: &MetadataImage) -> Result<(), MetadataError> {
        let io = |source| MetadataError::Io {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(image).map_err(|e| MetadataError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&json).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topics whose names differ only by '.' versus '_' collide in metric names,
/// so Kafka refuses to create the second one.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
    }

    #[test]
    fn store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::new(dir.path());
        assert!(store.load().unwrap().topics.is_empty());
        let mut image = MetadataImage::default();
        let id = Uuid::new_v4();
        image.upsert(TopicInfo {
            name: "t".into(),
            id,
            partitions: vec![PartitionInfo {
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }],
            configs: BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
        });
        store.save(&image).unwrap();
        let back = store.load().unwrap();
        assert_eq!(back.topic_by_id(&id).map(|t| t.name.as_str()), Some("t"));
        assert_eq!(back.topic("t"), image.topic("t"));
        std::fs::write(dir.path().join(METADATA_FILE), b"{garbage").unwrap();
        assert!(matches!(store.load(), Err(MetadataError::Corrupt { .. })));
    }
}
