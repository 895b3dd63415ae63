//! CreateAcls and DeleteAcls as the active controller decides them
//! (Kafka's AclControlManager): a valid new binding gets an id and an
//! AccessControlEntryRecord unless the same binding exists already (then
//! it succeeds without a record); a deletion filter removes every binding
//! it matches, each once even when several filters match it.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use oxka_controller::acl::{validate_new, AclBinding, AclBindingFilter};
use oxka_controller::image::MetadataImage;
use oxka_controller::records::MetadataRecord;
use rand::Rng;
use uuid::Uuid;

use super::{wire, Decision};
use crate::quorum::protocol::CommandOutcome;

/// Kafka's `MAX_RECORDS_PER_USER_OP`: one request's ACL records.
const MAX_ACLS_PER_OPERATION: usize = 10_000;

pub fn create_acls(image: &MetadataImage, acls: &[AclBinding], rng: &mut impl Rng) -> Decision {
    let existing: HashSet<&AclBinding> = image.acls.values().collect();
    let mut added: HashSet<&AclBinding> = HashSet::new();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(acls.len());
    for acl in acls {
        if let Err(reason) = validate_new(acl) {
            results.push(Err(wire(ResponseError::InvalidRequest, &reason)));
            continue;
        }
        if records.len() >= MAX_ACLS_PER_OPERATION {
            results.push(Err(wire(
                ResponseError::PolicyViolation,
                "too many ACLs in one request",
            )));
            continue;
        }
        if !existing.contains(acl) && added.insert(acl) {
            records.push(MetadataRecord::AccessControlEntry {
                id: Uuid::from_u128(rng.gen()),
                acl: acl.clone(),
            });
        }
        results.push(Ok(()));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Partitions(results)),
    }
}

pub fn delete_acls(image: &MetadataImage, filters: &[AclBindingFilter]) -> Decision {
    let mut removed: HashSet<Uuid> = HashSet::new();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(filters.len());
    for f in filters {
        if let Err(reason) = f.validate() {
            results.push(Err(wire(ResponseError::InvalidRequest, &reason)));
            continue;
        }
        let mut matched = Vec::new();
        for (id, acl) in &image.acls {
            if f.matches(acl) && removed.insert(*id) {
                records.push(MetadataRecord::RemoveAccessControlEntry { id: *id });
                matched.push(acl.clone());
            }
        }
        results.push(Ok(matched));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::AclsDeleted(results)),
    }
}

#[cfg(test)]
mod tests {
    use oxka_controller::acl::{pattern_type, permission_type, resource_type, AclOperation};
    use rand::SeedableRng;

    use super::*;

    fn binding(name: &str) -> AclBinding {
        AclBinding {
            resource_type: resource_type::TOPIC,
            resource_name: name.into(),
            pattern_type: pattern_type::LITERAL,
            principal: "User:a".into(),
            host: "*".into(),
            operation: AclOperation::Read.code(),
            permission_type: permission_type::ALLOW,
        }
    }

    #[test]
    fn create_is_idempotent_and_delete_matches_once() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut image = MetadataImage::default();
        let mut bad = binding("t");
        bad.pattern_type = pattern_type::MATCH;
        let d = create_acls(&image, &[binding("t"), binding("t"), bad], &mut rng);
        assert_eq!(d.records.len(), 1);
        let Ok(CommandOutcome::Partitions(r)) = &d.outcome else {
            panic!()
        };
        assert!(r[0].is_ok() && r[1].is_ok());
        assert_eq!(
            r[2].as_ref().map_err(|e| e.code),
            Err(ResponseError::InvalidRequest.code())
        );
        for rec in &d.records {
            image.apply(rec);
        }
        let d = create_acls(&image, &[binding("t"), binding("u")], &mut rng);
        assert_eq!(d.records.len(), 1);
        for rec in &d.records {
            image.apply(rec);
        }
        assert_eq!(image.acls.len(), 2);
        let all = AclBindingFilter {
            resource_type: resource_type::ANY,
            resource_name: None,
            pattern_type: pattern_type::ANY,
            principal: None,
            host: None,
            operation: AclOperation::Any.code(),
            permission_type: permission_type::ANY,
        };
        let d = delete_acls(&image, &[all.clone(), all]);
        assert_eq!(d.records.len(), 2);
        let Ok(CommandOutcome::AclsDeleted(r)) = &d.outcome else {
            panic!()
        };
        assert_eq!(r[0].as_ref().map(Vec::len).ok(), Some(2));
        assert_eq!(r[1].as_ref().map(Vec::len).ok(), Some(0));
        for rec in &d.records {
            image.apply(rec);
        }
        assert!(image.acls.is_empty());
    }
}
