//! ApiVersions: the version ranges of every implemented API (KIP-511 and
//! the v0 fallback for clients newer than us), and from v3 the features
//! (KIP-584): `transaction.version` supported 0–2 and finalized at 2, which
//! is how a client learns it may use transaction version 2 (KIP-890 part
//! 2: EndTxn v5, Produce v12, TxnOffsetCommit v5). The features are tagged
//! fields, left out for the one client known to mis-skip them.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::txn::{TRANSACTION_VERSION_FEATURE, TRANSACTION_VERSION_LEVEL};
use crate::request::{encode_response, supported_versions, RequestContext, SUPPORTED_APIS};

/// The first version with the feature fields (tagged, KIP-584).
const FIRST_FEATURES_VERSION: i16 = 3;
/// The first version whose clients accept a supported feature with a
/// minimum version of 0 (KAFKA-17011: older Java clients reject it, so
/// Kafka leaves such features out of v3 answers).
const FIRST_MIN_ZERO_FEATURE_VERSION: i16 = 4;
/// The epoch of the finalized features. They never change while a broker
/// runs (one node, fixed at start-up), and clients only need it to be
/// valid (>= 0) to take the finalized levels.
const FINALIZED_FEATURES_EPOCH: i64 = 0;

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .filter_map(|k| {
            supported_versions(*k).map(|(min, max)| {
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
        })
        .collect()
}

/// Whether the client runs on a librdkafka older than 2.2.0, which skips
/// one byte too few of every tagged field it does not know (fixed by
/// librdkafka PR #4278, released in 2.2.0): the feature tags would leave
/// its parser a byte behind per tag. It reads no features and implements
/// no transaction version 2, so such a client gets the answer without
/// them. It is known by the KIP-511 software name and version it sends:
/// `librdkafka` with its version (e.g. Debian's kcat 1.7.1 with 2.0.2), or
/// a wrapper's own name with a version ending in `-rdkafka-<version>`
/// (confluent-kafka-python, -go, -dotnet). An unparsable librdkafka
/// version counts as old: leaving the tags out is always safe.
fn skips_tags_wrongly(req: &ApiVersionsRequest) -> bool {
    let version = req.client_software_version.as_str();
    let rdkafka_version = match version.rsplit_once("rdkafka-") {
        Some((_, v)) => v,
        None if req.client_software_name.as_str() == "librdkafka" => version,
        None => return false,
    };
    let mut parts = rdkafka_version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (2, 2),
        _ => true,
    }
}

pub fn handle(ctx: &RequestContext<'_>, req: ApiVersionsRequest) -> ApiVersionsResponse {
    let resp = ApiVersionsResponse::default().with_api_keys(api_list());
    if ctx.version < FIRST_FEATURES_VERSION || skips_tags_wrongly(&req) {
        return resp;
    }
    let name = StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE);
    let supported = if ctx.version >= FIRST_MIN_ZERO_FEATURE_VERSION {
        vec![SupportedFeatureKey::default()
            .with_name(name.clone())
            .with_min_version(0)
            .with_max_version(TRANSACTION_VERSION_LEVEL)]
    } else {
        Vec::new()
    };
    resp.with_supported_features(supported)
        .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(name)
            .with_min_version_level(TRANSACTION_VERSION_LEVEL)
            .with_max_version_level(TRANSACTION_VERSION_LEVEL)])
}

/// The answer to an ApiVersions version we do not know: UNSUPPORTED_VERSION
/// in the v0 format, which every client can read, with our ranges so it can
/// retry with one we support.
pub fn unsupported_version(correlation_id: i32) -> Bytes {
    let resp = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &resp)
        .unwrap_or_else(|e| unreachable!("the v0 ApiVersions response always encodes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &'static str, version: &'static str) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str(version))
    }

    #[test]
    fn old_librdkafka_is_recognised() {
        assert!(skips_tags_wrongly(&req("librdkafka", "2.0.2")));
        assert!(skips_tags_wrongly(&req("librdkafka", "1.9.2")));
        assert!(skips_tags_wrongly(&req("librdkafka", "2.1.1-RC1")));
        assert!(skips_tags_wrongly(&req("librdkafka", "garbage")));
        assert!(!skips_tags_wrongly(&req("librdkafka", "2.2.0")));
        assert!(!skips_tags_wrongly(&req("librdkafka", "2.12.1")));
        assert!(!skips_tags_wrongly(&req("librdkafka", "10.0.0")));
        assert!(!skips_tags_wrongly(&req("apache-kafka-java", "4.0.0")));
        assert!(!skips_tags_wrongly(&req("", "")));
        // wrappers name themselves and append the librdkafka version
        assert!(skips_tags_wrongly(&req(
            "confluent-kafka-python",
            "1.9.2-rdkafka-1.9.2"
        )));
        assert!(skips_tags_wrongly(&req(
            "confluent-kafka-go",
            "v2.1.1-rdkafka-2.1.1"
        )));
        assert!(!skips_tags_wrongly(&req(
            "confluent-kafka-python",
            "2.16.1-rdkafka-2.12.1"
        )));
    }
}
