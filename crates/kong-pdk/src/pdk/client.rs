use kong_pdk_proto as pb;

use super::{empty, string, u16_of};
use crate::entities::{AuthenticatedCredential, Consumer};
use crate::error::{Error, Result};
use crate::kong::Kong;

/// `kong.client`: who is calling.
#[derive(Debug)]
pub struct Client<'a> {
    kong: &'a mut Kong,
}

impl<'a> Client<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Client { kong }
    }

    /// `kong.client.tls`: the client's TLS connection (mutual TLS).
    /// **Needs MsgPack:1**.
    pub fn tls(self) -> super::ClientTls<'a> {
        super::ClientTls::new(self.kong)
    }

    /// `kong.client.get_ip()`: the address of the peer that connected to Kong
    /// (not `X-Forwarded-For`). All phases; In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: `client_ip`, the address after nginx's realip
    /// module: the peer's own address unless the peer is in `trusted_ips`
    /// and sent the real-IP header.
    pub async fn get_ip(self) -> Result<String> {
        const METHOD: &str = "kong.client.get_ip";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.client_ip(METHOD);
        }
        string(self.kong, METHOD, &()).await
    }

    /// `kong.client.get_forwarded_ip()`: the client address, honouring
    /// `trusted_ips` and `real_ip_header`. All phases; In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: `client_ip`, the same value.
    pub async fn get_forwarded_ip(self) -> Result<String> {
        const METHOD: &str = "kong.client.get_forwarded_ip";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.client_ip(METHOD);
        }
        string(self.kong, METHOD, &()).await
    }

    /// `kong.client.get_port()`: the peer's port. All phases but `log`.
    /// Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_port(self) -> Result<u16> {
        const METHOD: &str = "kong.client.get_port";
        u16_of(self.kong, METHOD, &()).await
    }

    /// `kong.client.get_forwarded_port()`: the client port, honouring
    /// `trusted_ips`. All phases but `log`.
    /// Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_forwarded_port(self) -> Result<u16> {
        const METHOD: &str = "kong.client.get_forwarded_port";
        u16_of(self.kong, METHOD, &()).await
    }

    /// `kong.client.get_credential()`: the credential of the authenticated
    /// consumer; an empty `id` when none. `access`, `response`, `log`.
    pub async fn get_credential(self) -> Result<AuthenticatedCredential> {
        let c: pb::AuthenticatedCredential = self
            .kong
            .pdk_call("kong.client.get_credential", &())
            .await?;
        Ok(c.into())
    }

    /// `kong.client.load_consumer(id, by_username)`: reads a consumer from
    /// Kong's database (not its cache) by id, or by username when
    /// `by_username`. An empty `id` when not found. `access`, `response`,
    /// `log`; a non-UUID id without `by_username` makes Kong fail the call.
    pub async fn load_consumer(self, id: &str, by_username: bool) -> Result<Consumer> {
        let args = pb::ConsumerSpec {
            id: id.to_owned(),
            by_username,
        };
        let c: pb::Consumer = self
            .kong
            .pdk_call("kong.client.load_consumer", &args)
            .await?;
        Ok(c.into())
    }

    /// `kong.client.get_consumer()`: the authenticated consumer; an empty
    /// `id` when none. `access`, `response`, `log`.
    pub async fn get_consumer(self) -> Result<Consumer> {
        let c: pb::Consumer = self.kong.pdk_call("kong.client.get_consumer", &()).await?;
        Ok(c.into())
    }

    /// `kong.client.authenticate(consumer, credential)`: sets the
    /// authenticated consumer and/or credential for this request (at least
    /// one is required; Kong rejects neither). `access` only.
    pub async fn authenticate(
        self,
        consumer: Option<&Consumer>,
        credential: Option<&AuthenticatedCredential>,
    ) -> Result<()> {
        const METHOD: &str = "kong.client.authenticate";
        if consumer.is_none() && credential.is_none() {
            return Err(Error::Value {
                method: METHOD,
                message: "give a consumer, a credential or both".into(),
            });
        }
        let args = pb::AuthenticateArgs {
            consumer: consumer.map(Into::into),
            credential: credential.map(Into::into),
        };
        empty(self.kong, METHOD, &args).await
    }

    /// `kong.client.get_protocol(allow_terminated)`: `http`, `https`,
    /// `grpc`, `tcp`, … of the matched route; with `allow_terminated`,
    /// `X-Forwarded-Proto` from a trusted TLS terminator counts. `access`,
    /// `response`, `log`; in `log` Kong answers for a route with one
    /// protocol and refuses the call for a route with several (choosing
    /// needs the live request).
    pub async fn get_protocol(self, allow_terminated: bool) -> Result<String> {
        const METHOD: &str = "kong.client.get_protocol";
        let args = pb::Bool {
            v: allow_terminated,
        };
        string(self.kong, METHOD, &args).await
    }
}
