//! Client quota entities, filters and alterations as the Admin client
//! sends and receives them (Kafka's `ClientQuotaEntity`,
//! `ClientQuotaFilter`, `ClientQuotaAlteration`; KIP-546).

/// Kafka's entity type names.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// An entity: (type, name) pairs, a `None` name being the type's default
/// (`<default>` in kafka-configs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuotaEntity(pub Vec<(String, Option<String>)>);

impl QuotaEntity {
    /// A user (`None`: the default user) and/or a client id.
    pub fn new(user: Option<Option<&str>>, client_id: Option<Option<&str>>) -> QuotaEntity {
        let mut parts = Vec::new();
        if let Some(u) = user {
            parts.push((USER.to_string(), u.map(str::to_string)));
        }
        if let Some(c) = client_id {
            parts.push((CLIENT_ID.to_string(), c.map(str::to_string)));
        }
        QuotaEntity(parts)
    }

    /// From a response's (type, name) components.
    pub(crate) fn from_wire<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> QuotaEntity {
        QuotaEntity(
            components
                .into_iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect(),
        )
    }

    /// An IP address (`None`: the default IP), for
    /// `connection_creation_rate` (KIP-612).
    pub fn ip(ip: Option<&str>) -> QuotaEntity {
        QuotaEntity(vec![(IP.to_string(), ip.map(str::to_string))])
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(t, n)| match n {
                Some(n) => format!("{t}={n}"),
                None => format!("{t}=<default>"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One component of a describe filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaFilterComponent {
    /// The type with exactly this name.
    Exact(String, String),
    /// The type's default entity.
    Default(String),
    /// Any entity that has this type.
    Specified(String),
}

impl QuotaFilterComponent {
    /// Kafka's match type code and the match string.
    pub fn wire(&self) -> (&str, i8, Option<&str>) {
        match self {
            QuotaFilterComponent::Exact(t, n) => (t, 0, Some(n)),
            QuotaFilterComponent::Default(t) => (t, 1, None),
            QuotaFilterComponent::Specified(t) => (t, 2, None),
        }
    }
}

/// An entity's changes: each key set (`Some`) or removed (`None`).
pub type QuotaOps = Vec<(String, Option<f64>)>;
