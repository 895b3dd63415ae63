//! The metadata image types (from `oxka-controller`, where the metadata
//! log is folded into them) and the single-node releases' metadata file,
//! read once to migrate it into the metadata log.

use std::path::{Path, PathBuf};

pub use oxka_controller::image::{
    collision_key, validate_topic_name, BrokerRegistration, MetadataImage, PartitionInfo, TopicInfo,
};

/// The metadata file of oxka releases before the metadata quorum: a JSON
/// image in the first log dir. Renamed with this suffix once migrated.
pub const METADATA_FILE: &str = "oxka-metadata.json";
pub const MIGRATED_SUFFIX: &str = ".migrated";

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

/// The single-node releases' metadata file, read once for the migration
/// (those releases replaced it atomically: it is whole or missing).
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

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_old_file_is_read() {
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
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
            configs: BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
        });
        std::fs::write(store.path(), serde_json::to_vec(&image).unwrap()).unwrap();
        let back = store.load().unwrap();
        assert_eq!(back.topic_by_id(&id).map(|t| t.name.as_str()), Some("t"));
        assert_eq!(back.topic("t"), image.topic("t"));
        std::fs::write(dir.path().join(METADATA_FILE), b"{garbage").unwrap();
        assert!(matches!(store.load(), Err(MetadataError::Corrupt { .. })));
    }
}
