//! SaslHandshake (17) and SaslAuthenticate (36) where no authentication
//! happens: on PLAINTEXT and SSL listeners Kafka answers them with
//! ILLEGAL_SASL_STATE. On SASL listeners they never get here: the
//! connection's authenticator (`network/sasl`) takes them, also for
//! re-authentication.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::s;
use crate::request::RequestContext;

pub async fn handshake(
    _ctx: &RequestContext<'_>,
    _req: SaslHandshakeRequest,
) -> Option<SaslHandshakeResponse> {
    Some(SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
}

pub async fn authenticate(
    ctx: &RequestContext<'_>,
    _req: SaslAuthenticateRequest,
) -> Option<SaslAuthenticateResponse> {
    Some(
        SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(s(format!(
                "SASL is not enabled on listener {}",
                ctx.conn.listener
            )))),
    )
}
