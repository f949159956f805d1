use crate::error::Result;
use crate::kong::Kong;

/// `kong.client.tls`: the client's TLS connection (mutual TLS).
/// **Needs MsgPack:1**: none of these is in Kong's ProtoBuf service.
#[derive(Debug)]
pub struct ClientTls<'a> {
    kong: &'a mut Kong,
}

impl<'a> ClientTls<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        ClientTls { kong }
    }

    /// `kong.client.tls.request_client_certificate()`: asks the client for
    /// a certificate during the handshake. `certificate` phase. Returns
    /// `false` when Kong reports a failure (sent as nil by Kong 3.10).
    pub async fn request_client_certificate(self) -> Result<bool> {
        let ok: Option<bool> = self
            .kong
            .call("kong.client.tls.request_client_certificate", ())
            .await?;
        Ok(ok.unwrap_or(false))
    }

    /// `kong.client.tls.disable_session_reuse()`: no TLS session reuse for
    /// this connection, so the certificate is asked for again.
    /// `certificate` phase.
    pub async fn disable_session_reuse(self) -> Result<bool> {
        let ok: Option<bool> = self
            .kong
            .call("kong.client.tls.disable_session_reuse", ())
            .await?;
        Ok(ok.unwrap_or(false))
    }

    /// `kong.client.tls.get_full_client_certificate_chain()`: the client's
    /// certificate chain in PEM; `None` when the client sent none (or on
    /// failure: Kong 3.10 drops the error). `rewrite`, `access`, `balancer`,
    /// `header_filter`, `body_filter`, `log`.
    pub async fn get_full_client_certificate_chain(self) -> Result<Option<String>> {
        self.kong
            .call("kong.client.tls.get_full_client_certificate_chain", ())
            .await
    }

    /// `kong.client.tls.set_client_verify(v)`: the verification result
    /// Kong reports upstream (`X-Client-Verify`): `"SUCCESS"`, `"NONE"` or
    /// `"FAILED:<reason>"`. `rewrite`, `access`, `balancer`.
    pub async fn set_client_verify(self, verdict: &str) -> Result<()> {
        self.kong
            .call("kong.client.tls.set_client_verify", (verdict,))
            .await
    }
}
