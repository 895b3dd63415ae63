//! Client quotas as the metadata keeps them (KIP-55, KIP-124, KIP-599,
//! KIP-546): per entity — a user, a client id, or both, each named or the
//! default — the quota values by key (Kafka's ClientQuotaRecord and
//! ClientQuotasImage), and the precedence rule that picks, for a
//! connection's user and client id, the entity whose quota applies.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes per second a (user, client id) may produce (KIP-55).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes per second a (user, client id) may fetch as a consumer (KIP-55).
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one request handler thread's time (KIP-124).
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Partitions created or deleted per second (KIP-599).
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// Connections an IP address may open per second (KIP-612).
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// Kafka's entity type names on the wire.
pub const ENTITY_USER: &str = "user";
pub const ENTITY_CLIENT_ID: &str = "client-id";
pub const ENTITY_IP: &str = "ip";

/// The keys a user / client-id entity takes and whether each is integral
/// (Kafka's QuotaConfig: the byte rates are LONG, the others DOUBLE).
pub const USER_CLIENT_QUOTA_KEYS: &[(&str, bool)] = &[
    (PRODUCER_BYTE_RATE, true),
    (CONSUMER_BYTE_RATE, true),
    (REQUEST_PERCENTAGE, false),
    (CONTROLLER_MUTATION_RATE, false),
];

/// The keys an IP entity takes (Kafka's QuotaConfig.ipConfigs: an INT).
pub const IP_QUOTA_KEYS: &[(&str, bool)] = &[(CONNECTION_CREATION_RATE, true)];

/// One component of an entity: a name, or the default for its type
/// (a null entity name on the wire, `<default>` in kafka-configs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// From the wire's nullable entity name.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(n) => EntityName::Named(n.to_string()),
        }
    }

    /// The wire's nullable entity name.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

/// A quota entity: a user, a client id or both, or an IP address (at
/// least one; an IP never with the others).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientQuotaEntity {
    #[serde(default)]
    pub user: Option<EntityName>,
    #[serde(default)]
    pub client_id: Option<EntityName>,
    #[serde(default)]
    pub ip: Option<EntityName>,
}

impl ClientQuotaEntity {
    /// The (type, name) pairs the wire carries, user first.
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.user {
            out.push((ENTITY_USER, u.as_wire()));
        }
        if let Some(c) = &self.client_id {
            out.push((ENTITY_CLIENT_ID, c.as_wire()));
        }
        if let Some(ip) = &self.ip {
            out.push((ENTITY_IP, ip.as_wire()));
        }
        out
    }
}

impl std::fmt::Display for ClientQuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |n: &EntityName| match n {
            EntityName::Default => "<default>".to_string(),
            EntityName::Named(s) => format!("'{s}'"),
        };
        let mut parts = Vec::new();
        if let Some(u) = &self.user {
            parts.push(format!("user {}", part(u)));
        }
        if let Some(c) = &self.client_id {
            parts.push(format!("client-id {}", part(c)));
        }
        if let Some(ip) = &self.ip {
            parts.push(format!("ip {}", part(ip)));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Who a quota's usage is counted for: the user and client id of the
/// entity that matched (Kafka's quota metric tags), "" where the entity
/// has no such component. Every connection with the same tags shares one
/// rate: a client-id quota counts all users of that client id together, a
/// default applies to each user or client id separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaTags {
    pub user: String,
    pub client_id: String,
}

/// Every entity's quotas (Kafka's ClientQuotasImage).
#[derive(Debug, Clone, Default)]
pub struct ClientQuotas {
    entities: BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>,
    /// Per key, which of the eight precedence levels any entity sets it
    /// at (bit i: level i + 1): a lookup visits only those, and a key set
    /// nowhere costs one map probe.
    levels: BTreeMap<String, u8>,
    /// `connection_creation_rate` by address, and the default IP's.
    ip_rates: HashMap<IpAddr, f64>,
    ip_default: Option<f64>,
}

impl PartialEq for ClientQuotas {
    fn eq(&self, other: &Self) -> bool {
        self.entities == other.entities
    }
}

/// The precedence level (0 = most specific) of an entity's shape.
fn level(entity: &ClientQuotaEntity) -> Option<u8> {
    use EntityName::{Default, Named};
    if entity.ip.is_some() {
        return None;
    }
    Some(match (&entity.user, &entity.client_id) {
        (Some(Named(_)), Some(Named(_))) => 0,
        (Some(Named(_)), Some(Default)) => 1,
        (Some(Named(_)), None) => 2,
        (Some(Default), Some(Named(_))) => 3,
        (Some(Default), Some(Default)) => 4,
        (Some(Default), None) => 5,
        (None, Some(Named(_))) => 6,
        (None, Some(Default)) => 7,
        (None, None) => return None,
    })
}

impl ClientQuotas {
    fn from_entities(entities: BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>) -> Self {
        let mut q = ClientQuotas {
            entities,
            ..ClientQuotas::default()
        };
        q.reindex();
        q
    }

    fn reindex(&mut self) {
        self.levels.clear();
        self.ip_rates.clear();
        self.ip_default = None;
        for (entity, values) in &self.entities {
            if let Some(ip) = &entity.ip {
                let rate = values.get(CONNECTION_CREATION_RATE).copied();
                match (ip, rate) {
                    (EntityName::Default, Some(r)) => self.ip_default = Some(r),
                    (EntityName::Named(name), Some(r)) => {
                        // validated as an address when altered
                        if let Ok(addr) = name.parse::<IpAddr>() {
                            self.ip_rates.insert(addr, r);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if let Some(l) = level(entity) {
                for key in values.keys() {
                    *self.levels.entry(key.clone()).or_default() |= 1 << l;
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ClientQuotaEntity, &BTreeMap<String, f64>)> {
        self.entities.iter()
    }

    pub fn get(&self, entity: &ClientQuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.entities.get(entity)
    }

    /// Folds in one ClientQuotaRecord: `None` removes the key; an entity
    /// left without keys is gone.
    pub fn apply(&mut self, entity: &ClientQuotaEntity, key: &str, value: Option<f64>) {
        match value {
            Some(v) => {
                self.entities
                    .entry(entity.clone())
                    .or_default()
                    .insert(key.to_string(), v);
            }
            None => {
                if let Some(m) = self.entities.get_mut(entity) {
                    m.remove(key);
                    if m.is_empty() {
                        self.entities.remove(entity);
                    }
                }
            }
        }
        // changes are rare (an admin's), lookups are per request
        self.reindex();
    }

    /// The `connection_creation_rate` of connections from `ip`: its own
    /// entity's, else the default IP entity's (Kafka's
    /// `connectionRateForIp`); `None` is unlimited.
    pub fn connection_rate_for_ip(&self, ip: IpAddr) -> Option<f64> {
        self.ip_rates.get(&ip).copied().or(self.ip_default)
    }

    /// The quota `key` for a connection of `user` (the principal's name)
    /// with `client_id`, and whose usage it counts, by Kafka's precedence
    /// (most specific first):
    /// 1. /config/users/<user>/clients/<client-id>
    /// 2. /config/users/<user>/clients/<default>
    /// 3. /config/users/<user>
    /// 4. /config/users/<default>/clients/<client-id>
    /// 5. /config/users/<default>/clients/<default>
    /// 6. /config/users/<default>
    /// 7. /config/clients/<client-id>
    /// 8. /config/clients/<default>
    pub fn quota_for(&self, user: &str, client_id: &str, key: &str) -> Option<(f64, QuotaTags)> {
        let mask = *self.levels.get(key)?;
        use EntityName::{Default, Named};
        // level i: (user part, client part); whether the usage is counted
        // per user and per client id follows from the parts
        const SHAPES: [(Part, Part); 8] = [
            (Part::Named, Part::Named),
            (Part::Named, Part::Default),
            (Part::Named, Part::Absent),
            (Part::Default, Part::Named),
            (Part::Default, Part::Default),
            (Part::Default, Part::Absent),
            (Part::Absent, Part::Named),
            (Part::Absent, Part::Default),
        ];
        let part = |p: Part, name: &str| match p {
            Part::Named => Some(Named(name.to_string())),
            Part::Default => Some(Default),
            Part::Absent => None,
        };
        SHAPES.iter().enumerate().find_map(|(i, (up, cp))| {
            if mask & (1 << i) == 0 {
                return None;
            }
            let entity = ClientQuotaEntity {
                user: part(*up, user),
                client_id: part(*cp, client_id),
                ip: None,
            };
            let v = *self.entities.get(&entity)?.get(key)?;
            let tag = |p: Part, name: &str| match p {
                Part::Absent => String::new(),
                _ => name.to_string(),
            };
            Some((
                v,
                QuotaTags {
                    user: tag(*up, user),
                    client_id: tag(*cp, client_id),
                },
            ))
        })
    }
}

/// An entity component's shape in the precedence levels.
#[derive(Clone, Copy)]
enum Part {
    Named,
    Default,
    Absent,
}

/// As a list of (entity, values) pairs: JSON maps need string keys.
impl Serialize for ClientQuotas {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entities.iter())
    }
}

impl<'de> Deserialize<'de> for ClientQuotas {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs: Vec<(ClientQuotaEntity, BTreeMap<String, f64>)> = Vec::deserialize(d)?;
        Ok(ClientQuotas::from_entities(pairs.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> ClientQuotaEntity {
        ClientQuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
            ip: None,
        }
    }

    /// Kafka's eight levels: each one added, from least to most specific,
    /// takes over from the ones before it.
    #[test]
    fn precedence_is_kafkas_eight_levels() {
        let levels = [
            entity(None, Some(None)),
            entity(None, Some(Some("c"))),
            entity(Some(None), None),
            entity(Some(None), Some(None)),
            entity(Some(None), Some(Some("c"))),
            entity(Some(Some("u")), None),
            entity(Some(Some("u")), Some(None)),
            entity(Some(Some("u")), Some(Some("c"))),
        ];
        let tags = [
            ("", "c"),
            ("", "c"),
            ("u", ""),
            ("u", "c"),
            ("u", "c"),
            ("u", ""),
            ("u", "c"),
            ("u", "c"),
        ];
        let mut q = ClientQuotas::default();
        assert!(q.quota_for("u", "c", PRODUCER_BYTE_RATE).is_none());
        for (i, e) in levels.iter().enumerate() {
            q.apply(e, PRODUCER_BYTE_RATE, Some(i as f64 + 1.0));
            let (v, t) = q.quota_for("u", "c", PRODUCER_BYTE_RATE).unwrap();
            assert_eq!(v, i as f64 + 1.0, "level {e}");
            assert_eq!(
                (t.user.as_str(), t.client_id.as_str()),
                tags[i],
                "level {e}"
            );
        }
        // another key is looked up on its own
        assert!(q.quota_for("u", "c", CONSUMER_BYTE_RATE).is_none());
        // other users and client ids fall to the defaults
        assert_eq!(q.quota_for("v", "d", PRODUCER_BYTE_RATE).unwrap().0, 4.0);
        assert_eq!(q.quota_for("v", "c", PRODUCER_BYTE_RATE).unwrap().0, 5.0);
        assert_eq!(q.quota_for("u", "d", PRODUCER_BYTE_RATE).unwrap().0, 7.0);
        // removing the most specific one uncovers the next
        q.apply(&levels[7], PRODUCER_BYTE_RATE, None);
        assert_eq!(q.quota_for("u", "c", PRODUCER_BYTE_RATE).unwrap().0, 7.0);
        assert!(q.get(&levels[7]).is_none());
    }

    #[test]
    fn an_ips_own_rate_wins_over_the_default_ip() {
        let ip = |n: Option<&str>| ClientQuotaEntity {
            ip: Some(EntityName::from_wire(n)),
            ..ClientQuotaEntity::default()
        };
        let mut q = ClientQuotas::default();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(q.connection_rate_for_ip(local), None);
        q.apply(&ip(None), CONNECTION_CREATION_RATE, Some(10.0));
        q.apply(&ip(Some("::1")), CONNECTION_CREATION_RATE, Some(2.0));
        assert_eq!(q.connection_rate_for_ip(local), Some(10.0));
        assert_eq!(
            q.connection_rate_for_ip("0:0:0:0:0:0:0:1".parse().unwrap()),
            Some(2.0)
        );
        // IP entities are not users or client ids
        assert!(q.quota_for("u", "c", CONNECTION_CREATION_RATE).is_none());
    }

    #[test]
    fn serialises_as_a_list() {
        let mut q = ClientQuotas::default();
        q.apply(
            &entity(Some(None), Some(Some("c"))),
            REQUEST_PERCENTAGE,
            Some(12.5),
        );
        let json = serde_json::to_string(&q).unwrap();
        let back: ClientQuotas = serde_json::from_str(&json).unwrap();
        assert_eq!(back, q);
        // the lookup index is rebuilt with it
        assert_eq!(
            back.quota_for("anyone", "c", REQUEST_PERCENTAGE)
                .map(|q| q.0),
            Some(12.5)
        );
    }
}
