//! ApiVersions: the version ranges of every implemented API (KIP-511 and
//! the v0 fallback for clients newer than us).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::request::{encode_response, supported_versions, RequestContext, SUPPORTED_APIS};

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

/// No supported/finalized features are sent: they are tagged fields, and
/// librdkafka before 2.2 (Debian's kcat) mis-parses tagged fields here.
pub fn handle(_ctx: &RequestContext<'_>, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_list())
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
