use kong_pdk_proto as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{empty, s};
use crate::error::Result;
use crate::kong::Kong;
use crate::value;

/// `kong.ctx.shared`: per-request values shared by all plugins and phases
/// of one request (including the `log` phase).
#[derive(Debug)]
pub struct Ctx<'a> {
    kong: &'a mut Kong,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Ctx { kong }
    }

    /// `kong.ctx.shared.set(key, value)`: stores any serde value (it goes
    /// through Kong as JSON-like data; numbers are doubles). All phases.
    pub async fn set_shared<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Result<()> {
        const METHOD: &str = "kong.ctx.shared.set";
        let args = pb::Kv {
            k: key.to_owned(),
            v: Some(value::serialize(METHOD, value)?),
        };
        empty(self.kong, METHOD, &args).await
    }

    /// `kong.ctx.shared.get(key)` deserialized into `T`. A missing key is
    /// JSON `null`: ask for an `Option<T>` to read it as `None`. All phases.
    pub async fn get_shared<T: DeserializeOwned>(self, key: &str) -> Result<T> {
        const METHOD: &str = "kong.ctx.shared.get";
        let v: pb::Value = self.kong.pdk_call(METHOD, &s(key)).await?;
        value::deserialize(METHOD, v)
    }
}
