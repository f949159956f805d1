use kong_pdk_proto as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{number, s, string};
use crate::error::Result;
use crate::kong::Kong;
use crate::value;

/// `kong.nginx`: nginx variables and the per-request `ngx.ctx`.
#[derive(Debug)]
pub struct Nginx<'a> {
    kong: &'a mut Kong,
}

impl<'a> Nginx<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Nginx { kong }
    }

    /// `ngx.var[name]`: an nginx variable (`request_uri`, `upstream_addr`,
    /// …); `""` when unknown or unset. Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_var(self, name: &str) -> Result<String> {
        const METHOD: &str = "kong.nginx.get_var";
        string(self.kong, METHOD, &s(name)).await
    }

    /// `ngx.ssl.get_tls1_version_str()`: `TLSv1.2`, `TLSv1.3`, … of the
    /// client connection; `""` without TLS. In `log`, where Kong refuses it,
    /// the call layer answers from `kong.log.serialize()`'s
    /// `request.tls.version`, the same value.
    pub async fn get_tls1_version_str(self) -> Result<String> {
        const METHOD: &str = "kong.nginx.get_tls1_version_str";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.tls_version(METHOD);
        }
        string(self.kong, METHOD, &()).await
    }

    /// `ngx.ctx[key] = value`: a per-request value also visible to Lua
    /// plugins. Every phase (the `log` phase writes a saved copy).
    pub async fn set_ctx<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Result<()> {
        const METHOD: &str = "kong.nginx.set_ctx";
        let args = pb::Kv {
            k: key.to_owned(),
            v: Some(value::serialize(METHOD, value)?),
        };
        // Declared to return a String; Kong always sends nil.
        let _: pb::Str = self.kong.pdk_call(METHOD, &args).await?;
        Ok(())
    }

    /// `ngx.ctx[key]` deserialized into `T` (`Option<T>` reads a missing key
    /// as `None`). Kong's own values work too, e.g. `KONG_ACCESS_START` (ms).
    /// Every phase (the `log` phase reads a saved copy). Values Kong cannot
    /// encode (functions, cdata) make Kong fail the call.
    pub async fn get_ctx<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        const METHOD: &str = "kong.nginx.get_ctx";
        let v: pb::Value = self.kong.pdk_call(METHOD, &s(key)).await?;
        value::deserialize(METHOD, v)
    }

    /// The request's start time, in seconds since the Unix epoch (with
    /// milliseconds). Every phase, including `log`.
    pub async fn req_start_time(self) -> Result<f64> {
        number(self.kong, "kong.nginx.req_start_time", &()).await
    }

    /// `"http"` or `"stream"`. Every phase.
    pub async fn get_subsystem(self) -> Result<String> {
        string(self.kong, "kong.nginx.get_subsystem", &()).await
    }
}
