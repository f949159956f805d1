use std::future::Future;

use kong_pdk_proto as pb;
use serde::Serialize;

use super::{empty, string};
use crate::error::Result;
use crate::kong::Kong;
use crate::value;

/// Arguments of a `kong.log.*` call. Kong writes them one after the other
/// with no separator, as Lua's `kong.log.err(a, b, c)` does.
///
/// A string (`"text"`, `format!(…)`) is one argument; a tuple of serde
/// values (`("status=", 403, true)`) is several.
pub trait LogArgs {
    /// The arguments as Kong's `ListValue`.
    #[doc(hidden)]
    fn into_list(self, method: &'static str) -> Result<pb::ListValue>;
}

impl LogArgs for &str {
    fn into_list(self, _: &'static str) -> Result<pb::ListValue> {
        Ok(pb::ListValue {
            values: vec![value::string(self)],
        })
    }
}

impl LogArgs for String {
    fn into_list(self, method: &'static str) -> Result<pb::ListValue> {
        self.as_str().into_list(method)
    }
}

impl LogArgs for &String {
    fn into_list(self, method: &'static str) -> Result<pb::ListValue> {
        self.as_str().into_list(method)
    }
}

impl LogArgs for &[serde_json::Value] {
    fn into_list(self, _: &'static str) -> Result<pb::ListValue> {
        Ok(pb::ListValue {
            values: self.iter().cloned().map(value::from_json).collect(),
        })
    }
}

macro_rules! tuple_args {
    ($($t:ident),+) => {
        impl<$($t: Serialize),+> LogArgs for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_list(self, method: &'static str) -> Result<pb::ListValue> {
                let ($($t,)+) = self;
                Ok(pb::ListValue {
                    values: vec![$(value::serialize(method, &$t)?),+],
                })
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

/// How [`Log::set_serialize_value_with_mode`] treats an existing key
/// (Kong's `mode` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeMode {
    /// `"set"`: set the value whether or not the key exists.
    #[default]
    Set,
    /// `"add"`: set it only if the key does not exist yet.
    Add,
    /// `"replace"`: set it only if the key exists.
    Replace,
}

impl SerializeMode {
    /// Kong's name for the mode.
    pub const fn as_str(self) -> &'static str {
        match self {
            SerializeMode::Set => "set",
            SerializeMode::Add => "add",
            SerializeMode::Replace => "replace",
        }
    }
}

/// `kong.log`: write to Kong's error log at a level; Kong prefixes each
/// line with the plugin name. Every phase.
#[derive(Debug)]
pub struct Log<'a> {
    kong: &'a mut Kong,
}

macro_rules! levels {
    ($($(#[$doc:meta])* $name:ident => $method:literal,)*) => {$(
        $(#[$doc])*
        // Not `async fn`: the arguments are converted before the future is
        // built, so the future does not hold them.
        pub fn $name(self, args: impl LogArgs) -> impl Future<Output = Result<()>> + Send + 'a {
            let list = args.into_list($method);
            async move { empty(self.kong, $method, &list?).await }
        }
    )*};
}

impl<'a> Log<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Log { kong }
    }

    levels! {
        /// `kong.log.alert(…)`.
        alert => "kong.log.alert",
        /// `kong.log.crit(…)`.
        crit => "kong.log.crit",
        /// `kong.log.err(…)`.
        err => "kong.log.err",
        /// `kong.log.warn(…)`.
        warn => "kong.log.warn",
        /// `kong.log.notice(…)`.
        notice => "kong.log.notice",
        /// `kong.log.info(…)`.
        info => "kong.log.info",
        /// `kong.log.debug(…)`: shown only with Kong's `log_level = debug`.
        debug => "kong.log.debug",
    }

    /// `kong.log.set_serialize_value(key, value)`: adds or replaces `key`
    /// (dots reach into nested objects, e.g. `"request.extra"`) in the record
    /// that `kong.log.serialize()` and logging plugins produce. Every phase
    /// from `certificate` to `log`.
    pub async fn set_serialize_value<T: Serialize + ?Sized>(
        self,
        key: &str,
        value: &T,
    ) -> Result<()> {
        const METHOD: &str = "kong.log.set_serialize_value";
        let args = pb::Kv {
            k: key.to_owned(),
            v: Some(value::serialize(METHOD, value)?),
        };
        empty(self.kong, METHOD, &args).await
    }

    /// `kong.log.set_serialize_value(key, value, {mode = …})`: like
    /// [`set_serialize_value`](Self::set_serialize_value) with Kong's
    /// `mode`: [`SerializeMode::Set`] (the default: set, replacing),
    /// [`SerializeMode::Add`] (only if absent) or
    /// [`SerializeMode::Replace`] (only if present). **Needs MsgPack:1**
    /// (the ProtoBuf service has no mode).
    pub async fn set_serialize_value_with_mode<T: Serialize + ?Sized>(
        self,
        key: &str,
        value: &T,
        mode: SerializeMode,
    ) -> Result<()> {
        let options = serde_json::json!({ "mode": mode.as_str() });
        self.kong
            .call("kong.log.set_serialize_value", (key, value, options))
            .await
    }

    /// `kong.log.serialize()`: Kong's standard log record of the request (the
    /// JSON logging plugins send), as a JSON string. `log` phase only.
    pub async fn serialize(self) -> Result<String> {
        string(self.kong, "kong.log.serialize", &()).await
    }
}
