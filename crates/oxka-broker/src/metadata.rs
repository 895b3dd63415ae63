//! The metadata image types (from `oxka-controller`, where the metadata
//! log is folded into them) and the single-node releases' metadata file,
//! read once to migrate it into the metadata log.

use std::io::Write;
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

    pub fn path(&self) -> &Path {
        &self.path
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;

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
                partition_epoch: 0,
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
