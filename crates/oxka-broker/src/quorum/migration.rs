//! A data dir written by a single-node release (before the metadata
//! quorum) keeps its topics, configs and producer-id block in
//! `oxka-metadata.json`. On the first start with the metadata log, the
//! node, leading its quorum of one, commits those as records (one batch),
//! then renames the file with a `.migrated` suffix so it is never read
//! again.

use std::path::{Path, PathBuf};

use oxka_controller::records::MetadataRecord;

use crate::metadata::{MetadataStore, MIGRATED_SUFFIX};

pub struct LegacyMetadata {
    pub path: PathBuf,
    pub records: Vec<MetadataRecord>,
    pub topics: usize,
}

/// The legacy file's contents as records, if the dir has one.
pub fn find(
    first_log_dir: &Path,
) -> Result<Option<LegacyMetadata>, crate::metadata::MetadataError> {
    let store = MetadataStore::new(first_log_dir);
    if !store.path().exists() {
        return Ok(None);
    }
    let image = store.load()?;
    Ok(Some(LegacyMetadata {
        path: store.path().to_path_buf(),
        topics: image.topics.len(),
        records: image.to_records(),
    }))
}

/// Done: the file is kept, renamed, for the operator's reference.
pub fn mark_migrated(legacy: &LegacyMetadata) -> std::io::Result<()> {
    let mut to = legacy.path.clone().into_os_string();
    to.push(MIGRATED_SUFFIX);
    std::fs::rename(&legacy.path, &to)?;
    if let Some(dir) = legacy.path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
