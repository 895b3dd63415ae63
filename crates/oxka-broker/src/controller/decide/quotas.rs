//! AlterClientQuotas as the active controller decides it (Kafka's
//! ClientQuotaControlManager, KIP-546): each entry's entity and keys are
//! validated on their own (INVALID_REQUEST with Kafka's messages), the
//! valid entries' changes become ClientQuotaRecords, one per key that
//! actually changes, and the whole decision commits as one batch.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use oxka_controller::image::MetadataImage;
use oxka_controller::quota::{
    ClientQuotaEntity, EntityName, ENTITY_CLIENT_ID, ENTITY_IP, ENTITY_USER, IP_QUOTA_KEYS,
    USER_CLIENT_QUOTA_KEYS,
};
use oxka_controller::records::MetadataRecord;

use super::{wire, Decision};
use crate::quorum::protocol::{CommandOutcome, QuotaAlteration, WireError};

fn invalid(message: String) -> WireError {
    wire(ResponseError::InvalidRequest, &message)
}

/// The entity an entry names, checked as Kafka checks it.
pub fn validate_entity(
    components: &[(String, Option<String>)],
) -> Result<ClientQuotaEntity, WireError> {
    if components.is_empty() {
        return Err(invalid("Invalid empty client quota entity".into()));
    }
    let mut entity = ClientQuotaEntity::default();
    let mut seen: Vec<&str> = Vec::new();
    for (entity_type, name) in components {
        if seen.contains(&entity_type.as_str()) {
            return Err(invalid(format!(
                "Invalid client quota entity, duplicate entity entry {entity_type}"
            )));
        }
        seen.push(entity_type);
        let slot = match entity_type.as_str() {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            ENTITY_IP => &mut entity.ip,
            other => {
                return Err(invalid(format!(
                    "Unhandled client quota entity type: {other}"
                )))
            }
        };
        if name.as_deref() == Some("") {
            return Err(invalid(format!("Empty {entity_type} not supported")));
        }
        *slot = Some(EntityName::from_wire(name.as_deref()));
    }
    if let Some(ip) = &entity.ip {
        if entity.user.is_some() || entity.client_id.is_some() {
            return Err(invalid(
                "Invalid quota entity combination, IP entity should not be combined with User or ClientId".into(),
            ));
        }
        // Kafka also resolves host names here; the metadata must not
        // depend on DNS, so only addresses are taken
        if let EntityName::Named(name) = ip {
            if name.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(format!(
                    "{name} is not a valid IP or resolvable host."
                )));
            }
        }
    }
    Ok(entity)
}

/// A key's new value for `entity`, checked as Kafka's
/// `validateQuotaKeyValue` (an IP takes only connection_creation_rate, an
/// INT; users and client ids the others).
fn validate_value(entity: &ClientQuotaEntity, key: &str, value: f64) -> Result<(), WireError> {
    let keys = if entity.ip.is_some() {
        IP_QUOTA_KEYS
    } else {
        USER_CLIENT_QUOTA_KEYS
    };
    let Some((_, integral)) = keys.iter().find(|(k, _)| *k == key) else {
        return Err(invalid(format!("Invalid configuration key {key}")));
    };
    // NaN is not greater than 0 either
    if value.is_nan() || value <= 0.0 {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    if *integral {
        let (max, kind) = if entity.ip.is_some() {
            (f64::from(i32::MAX), "an INT")
        } else {
            (i64::MAX as f64, "a LONG")
        };
        if value > max {
            return Err(invalid(format!(
                "Proposed value for {key} is too large for {kind}."
            )));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(invalid(format!("{key} cannot be a fractional value.")));
        }
    } else if !value.is_finite() {
        return Err(invalid(format!("Invalid value for {key}")));
    }
    Ok(())
}

/// One entry's records against the current quotas, or its error.
fn entry_records(
    image: &MetadataImage,
    entity: &ClientQuotaEntity,
    ops: &[(String, Option<f64>)],
) -> Result<Vec<MetadataRecord>, WireError> {
    let mut changes: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (key, value) in ops {
        if changes.insert(key, *value).is_some() {
            return Err(invalid(format!(
                "Duplicate quota key {key} not updating quota for this entity {entity}"
            )));
        }
    }
    let current = image.client_quotas.get(entity);
    let mut records = Vec::new();
    for (key, value) in changes {
        let now = current.and_then(|m| m.get(key)).copied();
        match value {
            None if now.is_some() => records.push(MetadataRecord::ClientQuota {
                entity: entity.clone(),
                key: key.to_string(),
                value: None,
            }),
            None => {}
            Some(v) => {
                validate_value(entity, key, v)?;
                if now != Some(v) {
                    records.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.to_string(),
                        value: Some(v),
                    });
                }
            }
        }
    }
    Ok(records)
}

pub fn alter_client_quotas(
    image: &MetadataImage,
    entries: &[QuotaAlteration],
    validate_only: bool,
) -> Decision {
    let entities: Vec<Result<ClientQuotaEntity, WireError>> =
        entries.iter().map(|e| validate_entity(&e.entity)).collect();
    let mut count: HashMap<&ClientQuotaEntity, usize> = HashMap::new();
    for e in entities.iter().flatten() {
        *count.entry(e).or_default() += 1;
    }
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(entries.len());
    for (entry, entity) in entries.iter().zip(&entities) {
        let result = entity.clone().and_then(|entity| {
            if count.get(&entity).copied().unwrap_or(0) > 1 {
                return Err(invalid(format!("Ignoring duplicate entity {entity}")));
            }
            entry_records(image, &entity, &entry.ops)
        });
        results.push(result.map(|r| {
            if !validate_only {
                records.extend(r);
            }
        }));
    }
    Decision {
        records,
        outcome: Ok(CommandOutcome::Partitions(results)),
    }
}

#[cfg(test)]
mod tests {
    use oxka_controller::quota::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE};

    use super::*;

    fn alter(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
        QuotaAlteration {
            entity: entity
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect(),
            ops: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn codes(d: &Decision) -> Vec<i16> {
        let Ok(CommandOutcome::Partitions(r)) = &d.outcome else {
            panic!("no per-entry results");
        };
        r.iter()
            .map(|r| r.as_ref().err().map_or(0, |e| e.code))
            .collect()
    }

    #[test]
    fn kafkas_validation_per_entry() {
        let image = MetadataImage::default();
        let bad = ResponseError::InvalidRequest.code();
        let d = alter_client_quotas(
            &image,
            &[
                alter(
                    &[("user", Some("alice"))],
                    &[(PRODUCER_BYTE_RATE, Some(1024.0))],
                ),
                alter(&[], &[(PRODUCER_BYTE_RATE, Some(1.0))]),
                alter(&[("user", None), ("user", None)], &[]),
                alter(&[("group", Some("g"))], &[]),
                alter(&[("client-id", Some(""))], &[]),
                alter(&[("client-id", None)], &[("nope", Some(1.0))]),
                alter(
                    &[("client-id", Some("c"))],
                    &[(CONSUMER_BYTE_RATE, Some(0.0))],
                ),
                alter(
                    &[("client-id", Some("d"))],
                    &[(CONSUMER_BYTE_RATE, Some(1.5))],
                ),
                alter(
                    &[("client-id", Some("e"))],
                    &[(REQUEST_PERCENTAGE, Some(1.5))],
                ),
                alter(
                    &[("ip", Some("1.2.3.4"))],
                    &[("connection_creation_rate", Some(5.0))],
                ),
                alter(
                    &[("client-id", Some("f"))],
                    &[(REQUEST_PERCENTAGE, Some(1.0)), (REQUEST_PERCENTAGE, None)],
                ),
            ],
            false,
        );
        assert_eq!(
            codes(&d),
            vec![0, bad, bad, bad, bad, bad, bad, bad, 0, 0, bad]
        );
        assert_eq!(d.records.len(), 3);
        // an IP: an address, alone, with its one key
        let d = alter_client_quotas(
            &image,
            &[
                alter(&[("ip", Some("not-an-ip"))], &[]),
                alter(&[("ip", None), ("user", None)], &[]),
                alter(&[("ip", None)], &[(PRODUCER_BYTE_RATE, Some(1.0))]),
                alter(
                    &[("user", None)],
                    &[("connection_creation_rate", Some(1.0))],
                ),
                alter(&[("ip", None)], &[("connection_creation_rate", Some(3e9))]),
                alter(
                    &[("ip", Some("::1"))],
                    &[("connection_creation_rate", Some(2.0))],
                ),
            ],
            false,
        );
        assert_eq!(codes(&d), vec![bad, bad, bad, bad, bad, 0]);
    }

    #[test]
    fn only_changes_are_recorded_and_validate_only_records_nothing() {
        let mut image = MetadataImage::default();
        let set = alter(
            &[("user", None), ("client-id", Some("c"))],
            &[
                (PRODUCER_BYTE_RATE, Some(1024.0)),
                (CONSUMER_BYTE_RATE, None),
            ],
        );
        let d = alter_client_quotas(&image, std::slice::from_ref(&set), true);
        assert_eq!(codes(&d), vec![0]);
        assert!(d.records.is_empty());
        let d = alter_client_quotas(&image, std::slice::from_ref(&set), false);
        assert_eq!(d.records.len(), 1, "removing an absent key writes nothing");
        for r in &d.records {
            image.apply(r);
        }
        assert_eq!(
            image
                .client_quotas
                .quota_for("anyone", "c", PRODUCER_BYTE_RATE)
                .map(|q| q.0),
            Some(1024.0)
        );
        let d = alter_client_quotas(&image, std::slice::from_ref(&set), false);
        assert!(d.records.is_empty(), "an unchanged value writes nothing");
        // the same entity twice fails both
        let d = alter_client_quotas(&image, &[set.clone(), set], false);
        assert_eq!(codes(&d), vec![ResponseError::InvalidRequest.code(); 2]);
        let remove = alter(
            &[("client-id", Some("c")), ("user", None)],
            &[(PRODUCER_BYTE_RATE, None)],
        );
        let d = alter_client_quotas(&image, &[remove], false);
        for r in &d.records {
            image.apply(r);
        }
        assert!(image.client_quotas.is_empty());
    }
}
