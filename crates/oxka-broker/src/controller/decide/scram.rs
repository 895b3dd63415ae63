//! AlterUserScramCredentials as the active controller decides it (Kafka's
//! ScramControlManager): upserted credentials replace the user's earlier
//! one for the mechanism, a deletion must name an existing credential, and
//! a user's alterations are committed all together or not at all.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use oxka_controller::image::MetadataImage;
use oxka_controller::records::MetadataRecord;

use super::{wire, Decision};
use crate::quorum::protocol::{CommandOutcome, ScramAlteration, WireError};

pub fn alter_scram_credentials(image: &MetadataImage, items: &[ScramAlteration]) -> Decision {
    let mut user_error: BTreeMap<&str, WireError> = BTreeMap::new();
    for item in items {
        let exists = image
            .scram_credentials
            .get(&item.name)
            .is_some_and(|m| m.contains_key(&item.mechanism));
        if item.credential.is_none() && !exists {
            user_error.entry(item.name.as_str()).or_insert_with(|| {
                wire(
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist",
                )
            });
        }
    }
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        if let Some(e) = user_error.get(item.name.as_str()) {
            results.push(Err(e.clone()));
            continue;
        }
        records.push(match &item.credential {
            Some(credential) => MetadataRecord::UserScramCredential {
                name: item.name.clone(),
                mechanism: item.mechanism,
                credential: credential.clone(),
            },
            None => MetadataRecord::RemoveUserScramCredential {
                name: item.name.clone(),
                mechanism: item.mechanism,
            },
        });
        results.push(Ok(()));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Partitions(results)),
    }
}

#[cfg(test)]
mod tests {
    use oxka_controller::records::{ScramCredential, Secret};

    use super::*;

    fn cred() -> ScramCredential {
        ScramCredential {
            salt: vec![1; 16],
            stored_key: Secret(vec![2; 32]),
            server_key: Secret(vec![3; 32]),
            iterations: 4096,
        }
    }

    #[test]
    fn a_users_alterations_commit_together() {
        let mut image = MetadataImage::default();
        let set = |name: &str, credential| ScramAlteration {
            name: name.into(),
            mechanism: 1,
            credential,
        };
        let d = alter_scram_credentials(&image, &[set("alice", Some(cred()))]);
        assert_eq!(d.records.len(), 1);
        for r in &d.records {
            image.apply(r);
        }
        assert!(image.scram_credentials["alice"].contains_key(&1));
        // bob's deletion of a missing credential fails his upsert too
        let d = alter_scram_credentials(
            &image,
            &[
                set("bob", Some(cred())),
                set("bob", None),
                set("alice", None),
            ],
        );
        let Ok(CommandOutcome::Partitions(results)) = d.outcome else {
            panic!("no per-item results");
        };
        assert_eq!(
            results[0].as_ref().map_err(|e| e.code),
            Err(ResponseError::ResourceNotFound.code())
        );
        assert!(results[1].is_err());
        assert!(results[2].is_ok());
        for r in &d.records {
            image.apply(r);
        }
        assert!(image.scram_credentials.is_empty());
        // the keys never show in a log line
        assert!(!format!("{:?}", cred()).contains("2, 2"));
    }
}
