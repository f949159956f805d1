use std::collections::BTreeMap;

use kong_pdk_proto as pb;

use super::content_encoding::DecodedBody;
use super::{DEFAULT_MAX, check_max, empty, kv_str, s, string, u16_of};
use crate::calls::{HeaderTarget, TableKind};
use crate::error::{Error, Result};
use crate::kong::Kong;
use crate::multimap::Headers;
use crate::value;

/// `kong.response`: the response sent to the client.
#[derive(Debug)]
pub struct Response<'a> {
    kong: &'a mut Kong,
}

impl<'a> Response<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Response { kong }
    }

    /// `kong.response.get_status()`: the status sent to the client.
    /// `response` and `log` (saved status); Kong rejects it in `access`.
    pub async fn get_status(self) -> Result<u16> {
        u16_of(self.kong, "kong.response.get_status", &()).await
    }

    /// `kong.response.get_header(name)`: the first value of a response
    /// header; `""` when missing. `response` and `log` (saved headers).
    pub async fn get_header(self, name: &str) -> Result<String> {
        self.kong
            .single_lookup(TableKind::ResponseHeaders, name)
            .await
    }

    /// `kong.response.get_headers()`: up to 100 response headers.
    /// `response` and `log`.
    pub async fn get_headers(self) -> Result<Headers> {
        self.get_headers_max(DEFAULT_MAX).await
    }

    /// `kong.response.get_headers(max)`: up to `max` (1..=1000) headers.
    pub async fn get_headers_max(self, max: u16) -> Result<Headers> {
        const METHOD: &str = "kong.response.get_headers";
        let args = check_max(METHOD, max)?;
        let st: pb::Struct = self.kong.pdk_call(METHOD, &args).await?;
        Ok(value::struct_multimap(st).into())
    }

    /// `kong.response.get_source()`: `"service"` (the upstream answered),
    /// `"exit"` (a plugin called `exit`) or `"error"`. `response` and `log`.
    pub async fn get_source(self) -> Result<String> {
        string(self.kong, "kong.response.get_source", &()).await
    }

    /// `kong.response.set_status(status)`: 100..=599. `rewrite`, `access`,
    /// `response`.
    pub async fn set_status(self, status: u16) -> Result<()> {
        let args = pb::Int { v: status.into() };
        empty(self.kong, "kong.response.set_status", &args).await
    }

    /// `kong.response.set_header(name, value)`: replaces a header.
    /// `rewrite`, `access`, `response`.
    pub async fn set_header(self, name: &str, value: &str) -> Result<()> {
        self.kong
            .set_header(HeaderTarget::Response, name, value)
            .await
    }

    /// `kong.response.add_header(name, value)`: adds a value to a header.
    /// `rewrite`, `access`, `response`.
    pub async fn add_header(self, name: &str, value: &str) -> Result<()> {
        empty(self.kong, "kong.response.add_header", &kv_str(name, value)).await
    }

    /// `kong.response.clear_header(name)`: removes a header. `rewrite`,
    /// `access`, `response`.
    pub async fn clear_header(self, name: &str) -> Result<()> {
        empty(self.kong, "kong.response.clear_header", &s(name)).await
    }

    /// `kong.response.set_headers(headers)`: sets several headers; a name
    /// with no values clears it. `rewrite`, `access`, `response`.
    pub async fn set_headers(self, headers: &Headers) -> Result<()> {
        let args = value::multimap_struct(headers.as_map());
        empty(self.kong, "kong.response.set_headers", &args).await
    }

    /// `kong.response.exit(status, body, headers)`: answers the client now
    /// and skips the rest of the request (later plugins and the upstream;
    /// `log` still runs).
    ///
    /// This call is terminal, as in Kong: Kong never answers it, so the
    /// handler stops here. Code after the `.await` does not run (values are
    /// still dropped). It only returns when sending failed. Repeated header
    /// names become multi-valued headers; Kong adds no `Content-Type` of its
    /// own. `rewrite`, `access`, `response`; Kong rejects it in `log`.
    ///
    /// `headers` is anything [`ExitHeaders`]: `[]` for none, an array of
    /// `(&str, &str)`, a `Vec` or slice of pairs, or a [`Headers`].
    ///
    /// ```no_run
    /// # async fn handler(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// kong.response().exit(403, "forbidden\n", []).await?;
    /// # Ok(()) }
    /// # async fn with_headers(kong: &mut kong_pdk::Kong, wait: u64) -> kong_pdk::PhaseResult {
    /// let wait = wait.to_string();
    /// kong.response()
    ///     .exit(429, "slow down\n", [("Retry-After", wait.as_str()), ("Content-Type", "text/plain")])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exit(
        self,
        status: u16,
        body: impl AsRef<[u8]>,
        headers: impl ExitHeaders,
    ) -> Result<()> {
        let mut grouped = BTreeMap::new();
        headers.add_to(&mut grouped);
        self.exit_grouped(status, body.as_ref(), &grouped).await
    }

    async fn exit_grouped(
        self,
        status: u16,
        body: &[u8],
        headers: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        let args = pb::ExitArgs {
            status: status.into(),
            body: body.to_vec(),
            headers: Some(value::multimap_struct(headers)),
        };
        self.kong.call_terminal("kong.response.exit", &args).await
    }

    /// Answers with an edited upstream body, encoded so the client can read
    /// it: in the upstream's coding (the client accepted it), or as
    /// [`DecodedBody::send_identity`] / [`DecodedBody::send_as`] chose.
    /// `Content-Encoding` is set to match (removed for identity, one more
    /// round trip when the upstream's body was encoded), `Content-Length`
    /// is the length of the encoded body (Kong's `exit` computes it; any
    /// `Content-Length`, `Content-Encoding` or `Transfer-Encoding` in
    /// `headers` is dropped) and the upstream's other headers stay. Terminal
    /// like [`exit`](Self::exit). `response` phase (also `rewrite`/`access`
    /// for a body built there).
    pub async fn replace_body(
        self,
        status: u16,
        body: DecodedBody,
        headers: impl ExitHeaders,
    ) -> Result<()> {
        let mut grouped = BTreeMap::new();
        headers.add_to(&mut grouped);
        grouped.retain(|name, _| {
            !["content-length", "content-encoding", "transfer-encoding"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        });
        let send_as = body.send_encoding().clone();
        if send_as.is_identity() {
            if !body.upstream_encoding().is_identity() {
                Response::new(self.kong)
                    .clear_header("Content-Encoding")
                    .await?;
            }
        } else {
            grouped.insert("Content-Encoding".into(), vec![send_as.header_value()]);
        }
        let encoded = send_as.encode(body.data);
        self.exit_grouped(status, &encoded, &grouped).await
    }

    /// `kong.response.exit(status)` without body or headers.
    pub async fn exit_status(self, status: u16) -> Result<()> {
        self.exit(status, b"", []).await
    }

    /// `kong.response.exit` with a JSON body and `Content-Type:
    /// application/json` (unless `headers` has a `Content-Type`), plus
    /// `headers`. Terminal like [`exit`](Self::exit).
    ///
    /// ```no_run
    /// # async fn handler(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// let body = serde_json::json!({"message": "API rate limit exceeded"});
    /// kong.response().exit_json(429, &body, []).await?;
    /// # Ok(()) }
    /// # async fn with_headers(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// # let body = serde_json::json!({});
    /// kong.response()
    ///     .exit_json(401, &body, [("WWW-Authenticate", r#"Key realm="kong""#)])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn exit_json<T>(self, status: u16, body: &T, headers: impl ExitHeaders) -> Result<()>
    where
        T: serde::Serialize + ?Sized,
    {
        let json = serde_json::to_vec(body).map_err(|e| Error::Value {
            method: "kong.response.exit",
            message: format!("cannot serialize the JSON body: {e}"),
        })?;
        let mut grouped = BTreeMap::new();
        headers.add_to(&mut grouped);
        if !grouped
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            grouped.insert("Content-Type".into(), vec!["application/json".into()]);
        }
        self.exit_grouped(status, &json, &grouped).await
    }
}

/// Headers for [`Response::exit`] and [`Response::exit_json`].
///
/// `[]` means none. Arrays take `(&str, &str)` pairs (write
/// `value.as_str()` for a `String`); a `Vec` or slice takes any string pairs;
/// a [`Headers`] is sent as it is. A repeated name sends several lines.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as exit headers",
    label = "not exit headers",
    note = "use `[]` for none, an array of `(&str, &str)` (`value.as_str()` for a String), a `Vec<(K, V)>` of strings, or `&Headers`"
)]
pub trait ExitHeaders {
    /// Adds the headers to `grouped` (name as written → values in order).
    #[doc(hidden)]
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>);
}

fn add_pairs<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
    grouped: &mut BTreeMap<String, Vec<String>>,
) {
    for (k, v) in pairs {
        grouped
            .entry(k.as_ref().to_owned())
            .or_default()
            .push(v.as_ref().to_owned());
    }
}

/// The one array impl, so that `[]` needs no type annotation.
impl<const N: usize> ExitHeaders for [(&str, &str); N] {
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>) {
        add_pairs(self, grouped);
    }
}

impl<K: AsRef<str>, V: AsRef<str>> ExitHeaders for Vec<(K, V)> {
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>) {
        add_pairs(self, grouped);
    }
}

impl<K: AsRef<str>, V: AsRef<str>> ExitHeaders for &[(K, V)] {
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>) {
        add_pairs(self.iter().map(|(k, v)| (k, v)), grouped);
    }
}

impl ExitHeaders for &Headers {
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>) {
        for (name, values) in self {
            grouped
                .entry(name.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
    }
}

impl ExitHeaders for Headers {
    fn add_to(self, grouped: &mut BTreeMap<String, Vec<String>>) {
        (&self).add_to(grouped);
    }
}
