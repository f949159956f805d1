//! Reading `#[kong(...)]`, the `#[serde(...)]` attributes that change the schema, and doc
//! comments.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Lit, LitStr, Token};

use crate::case::RenameRule;

/// Collects errors so one expansion reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn into_result(self) -> syn::Result<()> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A literal in `#[kong(...)]`.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Str(String, Span),
    Int(i128, Span),
    Float(f64, Span),
    Bool(bool, Span),
    Array(Vec<Value>, Span),
}

impl Value {
    pub(crate) fn span(&self) -> Span {
        match self {
            Value::Str(_, s)
            | Value::Int(_, s)
            | Value::Float(_, s)
            | Value::Bool(_, s)
            | Value::Array(_, s) => *s,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Str(..) => "a string",
            Value::Int(..) => "an integer",
            Value::Float(..) => "a float",
            Value::Bool(..) => "a boolean",
            Value::Array(..) => "an array",
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i, _) => Some(*i as f64),
            Value::Float(f, _) => Some(*f),
            _ => None,
        }
    }

    /// Whether two scalars are equal the way Lua compares them.
    pub(crate) fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Str(a, _), Value::Str(b, _)) => a == b,
            (Value::Bool(a, _), Value::Bool(b, _)) => a == b,
            _ => match (self.as_f64(), other.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// The value as Rust code building a `serde_json::Value`.
    pub(crate) fn to_json_tokens(&self) -> TokenStream {
        match self {
            Value::Str(s, _) => quote!(__kong::Value::from(#s)),
            Value::Int(i, _) => int_tokens(*i, |n| quote!(__kong::Value::from(#n))),
            Value::Float(f, _) => quote!(__kong::Value::from(#f)),
            Value::Bool(b, _) => quote!(__kong::Value::Bool(#b)),
            Value::Array(items, _) => {
                let items = items.iter().map(Value::to_json_tokens);
                quote!(__kong::Value::Array(::std::vec![#(#items),*]))
            }
        }
    }

    /// A number as Rust code building a `serde_json::Number`.
    pub(crate) fn to_number_tokens(&self) -> TokenStream {
        match self {
            Value::Int(i, _) => int_tokens(*i, |n| n),
            Value::Float(f, _) => quote!(__kong::float(#f)),
            _ => unreachable!("checked to be a number"),
        }
    }

    fn display(&self) -> String {
        match self {
            Value::Str(s, _) => format!("{s:?}"),
            Value::Int(i, _) => i.to_string(),
            Value::Float(f, _) => f.to_string(),
            Value::Bool(b, _) => b.to_string(),
            Value::Array(..) => "[...]".to_owned(),
        }
    }
}

/// An integer literal typed `i64` (or `u64` above `i64::MAX`), wrapped by `wrap`.
fn int_tokens(i: i128, wrap: impl Fn(TokenStream) -> TokenStream) -> TokenStream {
    if let Ok(n) = i64::try_from(i) {
        wrap(n.into_token_stream())
    } else {
        let n = u64::try_from(i).expect("checked to fit in an i64 or u64");
        wrap(n.into_token_stream())
    }
}

/// Parses a literal: a string, integer, float, boolean, negative number, or `[...]`.
fn parse_value(input: ParseStream<'_>, allow_array: bool) -> syn::Result<Value> {
    if input.peek(syn::token::Bracket) {
        let content;
        let bracket = syn::bracketed!(content in input);
        if !allow_array {
            return Err(syn::Error::new(
                bracket.span.join(),
                "expected a literal, not an array",
            ));
        }
        let items = content.parse_terminated(|input| parse_value(input, false), Token![,])?;
        return Ok(Value::Array(
            items.into_iter().collect(),
            bracket.span.join(),
        ));
    }
    let negative: Option<Token![-]> = input.parse()?;
    let lit: Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a literal: a string, number, `true`/`false`, or an array `[...]`",
        )
    })?;
    let span = match &negative {
        Some(minus) => minus.span().join(lit.span()).unwrap_or_else(|| lit.span()),
        None => lit.span(),
    };
    let value = match lit {
        Lit::Str(s) => Value::Str(s.value(), span),
        Lit::Int(i) => {
            let n: i128 = i.base10_parse()?;
            let n = if negative.is_some() { -n } else { n };
            if n < i128::from(i64::MIN) || n > i128::from(u64::MAX) {
                return Err(syn::Error::new(
                    span,
                    "integer out of range for a Kong number",
                ));
            }
            return Ok(Value::Int(n, span));
        }
        Lit::Float(f) => {
            let n: f64 = f.base10_parse()?;
            return Ok(Value::Float(if negative.is_some() { -n } else { n }, span));
        }
        Lit::Bool(b) => Value::Bool(b.value, span),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "expected a string, number, `true`/`false`, or an array `[...]`",
            ));
        }
    };
    if negative.is_some() {
        return Err(syn::Error::new(span, "only numbers can be negative"));
    }
    Ok(value)
}

/// The keys `#[kong(...)]` accepts.
const KONG_KEYS: &str = "default, required, one_of, between, len_min, len_max, match, not_match, \
                         referenceable, encrypted, description, skip";

/// Everything `#[kong(...)]` says about one field.
#[derive(Default)]
pub(crate) struct KongAttrs {
    /// The span of the first `#[kong]`, if any.
    pub(crate) present: Option<Span>,
    pub(crate) default: Option<Value>,
    pub(crate) required: Option<(bool, Span)>,
    pub(crate) one_of: Option<(Vec<Value>, Span)>,
    pub(crate) between: Option<(Value, Value, Span)>,
    pub(crate) len_min: Option<(u64, Span)>,
    pub(crate) len_max: Option<(u64, Span)>,
    pub(crate) match_: Option<LitStr>,
    pub(crate) not_match: Option<LitStr>,
    pub(crate) referenceable: Option<Span>,
    pub(crate) encrypted: Option<Span>,
    /// `skip`: deserialized, but not part of the Kong schema.
    pub(crate) skip: Option<Span>,
    pub(crate) description: Option<LitStr>,
}

impl KongAttrs {
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> KongAttrs {
        let mut kong = KongAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("kong")) {
            kong.present.get_or_insert(attr.path().span());
            if let syn::Meta::Path(path) = &attr.meta {
                errors.at(
                    path.span(),
                    format_args!("write the properties inside: #[kong(...)], with {KONG_KEYS}"),
                );
                continue;
            }
            if let Err(e) = attr.parse_nested_meta(|meta| kong.parse_key(&meta, errors)) {
                errors.push(e);
            }
        }
        kong.check(errors);
        kong
    }

    fn parse_key(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let span = meta.path.span();
        let duplicate = |errors: &mut Errors| {
            errors.at(span, format_args!("duplicate #[kong] property `{key}`"));
        };
        match key.as_str() {
            "default" => {
                let value = parse_value(meta.value()?, true)?;
                if self.default.is_some() {
                    duplicate(errors);
                }
                self.default = Some(value);
            }
            "required" => {
                let value = parse_bool_flag(meta)?;
                if self.required.is_some() {
                    duplicate(errors);
                }
                self.required = Some((value, span));
            }
            "one_of" => {
                let value = parse_value(meta.value()?, true)?;
                let Value::Array(items, _) = value else {
                    errors.at(
                        value.span(),
                        "`one_of` takes an array of strings or numbers: one_of = [\"a\", \"b\"]",
                    );
                    return Ok(());
                };
                if self.one_of.is_some() {
                    duplicate(errors);
                }
                self.one_of = Some((items, span));
            }
            "between" => {
                let value = parse_value(meta.value()?, true)?;
                match value {
                    Value::Array(items, array_span) => match items.as_slice() {
                        [min, max] if min.as_f64().is_some() && max.as_f64().is_some() => {
                            if self.between.is_some() {
                                duplicate(errors);
                            }
                            self.between = Some((min.clone(), max.clone(), span));
                        }
                        _ => errors.at(
                            array_span,
                            "`between` takes two numbers: between = [min, max]",
                        ),
                    },
                    other => errors.at(
                        other.span(),
                        "`between` takes two numbers: between = [min, max]",
                    ),
                }
            }
            "len_min" | "len_max" => {
                let value = parse_value(meta.value()?, false)?;
                let Value::Int(n @ 0.., _) = value else {
                    errors.at(
                        value.span(),
                        format_args!("`{key}` takes a non-negative integer, not {}", value.kind()),
                    );
                    return Ok(());
                };
                let slot = if key == "len_min" {
                    &mut self.len_min
                } else {
                    &mut self.len_max
                };
                if slot.is_some() {
                    duplicate(errors);
                }
                *slot = Some((n as u64, value.span()));
            }
            "match" | "not_match" | "description" => {
                let lit: LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), format_args!("`{key}` takes a string literal"))
                })?;
                let slot = match key.as_str() {
                    "match" => &mut self.match_,
                    "not_match" => &mut self.not_match,
                    _ => &mut self.description,
                };
                if slot.is_some() {
                    duplicate(errors);
                }
                *slot = Some(lit);
            }
            "skip" => {
                let on = parse_bool_flag(meta)?;
                if self.skip.is_some() {
                    duplicate(errors);
                }
                self.skip = on.then_some(span);
            }
            "referenceable" | "encrypted" => {
                let on = parse_bool_flag(meta)?;
                let slot = if key == "referenceable" {
                    &mut self.referenceable
                } else {
                    &mut self.encrypted
                };
                if slot.is_some() {
                    duplicate(errors);
                }
                *slot = on.then_some(span);
            }
            _ => {
                errors.at(
                    span,
                    format_args!("unknown #[kong] property `{key}`; expected one of: {KONG_KEYS}"),
                );
                skip_value(meta)?;
            }
        }
        Ok(())
    }

    /// Whether any property other than `skip` is set.
    pub(crate) fn has_properties(&self) -> bool {
        self.default.is_some()
            || self.required.is_some()
            || self.one_of.is_some()
            || self.between.is_some()
            || self.len_min.is_some()
            || self.len_max.is_some()
            || self.match_.is_some()
            || self.not_match.is_some()
            || self.referenceable.is_some()
            || self.encrypted.is_some()
            || self.description.is_some()
    }

    /// Checks that need several properties together; the type-dependent checks happen in
    /// the generated code.
    fn check(&self, errors: &mut Errors) {
        if let Some((items, span)) = &self.one_of {
            if items.is_empty() {
                errors.at(*span, "`one_of` needs at least one value");
            }
            let strings = items.iter().filter(|v| matches!(v, Value::Str(..))).count();
            let numbers = items.iter().filter(|v| v.as_f64().is_some()).count();
            for item in items {
                if matches!(item, Value::Bool(..) | Value::Array(..)) {
                    errors.at(item.span(), "`one_of` takes strings or numbers");
                }
            }
            if strings > 0 && numbers > 0 {
                errors.at(*span, "`one_of` values must be all strings or all numbers");
            }
        }
        if let Some((min, max, span)) = &self.between {
            if min.as_f64() > max.as_f64() {
                errors.at(
                    *span,
                    format_args!(
                        "`between` needs min <= max, got [{}, {}]",
                        min.display(),
                        max.display()
                    ),
                );
            }
        }
        if let (Some((min, _)), Some((max, span))) = (self.len_min, self.len_max) {
            if min > max {
                errors.at(
                    span,
                    format_args!("len_max ({max}) is less than len_min ({min})"),
                );
            }
        }
        if let Some(description) = &self.description {
            let len = description.value().len();
            if !(10..=500).contains(&len) {
                errors.at(
                    description.span(),
                    format_args!(
                        "Kong requires a description of 10 to 500 bytes; this one has {len}"
                    ),
                );
            }
        }
        if let Some(default) = &self.default {
            self.check_default(default, errors);
        }
    }

    /// The default must pass the field's own validators, as Kong checks.
    fn check_default(&self, default: &Value, errors: &mut Errors) {
        let scalars: Vec<&Value> = match default {
            Value::Array(items, _) => {
                let kinds: Vec<&str> = items.iter().map(Value::kind).collect();
                let numeric = items.iter().all(|v| v.as_f64().is_some());
                if !numeric && kinds.windows(2).any(|w| w[0] != w[1]) {
                    errors.at(
                        default.span(),
                        "the values of an array `default` must be of one kind",
                    );
                }
                if let Some((n, _)) = self.len_min {
                    if (items.len() as u64) < n {
                        errors.at(
                            default.span(),
                            format_args!("the default has fewer than len_min ({n}) values"),
                        );
                    }
                }
                if let Some((n, _)) = self.len_max {
                    if items.len() as u64 > n {
                        errors.at(
                            default.span(),
                            format_args!("the default has more than len_max ({n}) values"),
                        );
                    }
                }
                items.iter().collect()
            }
            Value::Str(s, span) => {
                let len = s.len() as u64;
                match self.len_min {
                    None if s.is_empty() => errors.at(
                        *span,
                        "Kong rejects empty strings unless the field says `len_min = 0`",
                    ),
                    Some((min, _)) if len < min => errors.at(
                        *span,
                        format_args!("the default is shorter than len_min ({min} bytes)"),
                    ),
                    _ => {}
                }
                if let Some((max, _)) = self.len_max {
                    if len > max {
                        errors.at(
                            *span,
                            format_args!("the default is longer than len_max ({max})"),
                        );
                    }
                }
                vec![default]
            }
            _ => vec![default],
        };
        for value in scalars {
            if let Some((options, _)) = &self.one_of {
                if !options.iter().any(|o| o.same(value)) {
                    errors.at(
                        value.span(),
                        format_args!("the default {} is not one of `one_of`", value.display()),
                    );
                }
            }
            if let (Some((min, max, _)), Some(n)) = (&self.between, value.as_f64()) {
                if n < min.as_f64().unwrap_or(n) || n > max.as_f64().unwrap_or(n) {
                    errors.at(
                        value.span(),
                        format_args!(
                            "the default {} is not between {} and {}",
                            value.display(),
                            min.display(),
                            max.display()
                        ),
                    );
                }
            }
        }
    }

    /// Calls that make the compiler check each literal against the field type `ty`; an
    /// error points at the literal and names the field type.
    pub(crate) fn type_checks(&self, ty: &syn::Type) -> TokenStream {
        let mut checks = TokenStream::new();
        let mut check = |span: Span, function: &str| {
            let function = syn::Ident::new(function, span);
            let ty = respan(ty.to_token_stream(), span);
            checks.extend(quote_spanned!(span=> __kong::#function::<#ty>();));
        };
        if let Some(default) = &self.default {
            match default {
                Value::Array(items, span) => match items.first() {
                    Some(item) => check(*span, array_check(item)),
                    None => check(*span, "check_array"),
                },
                scalar => check(scalar.span(), scalar_check(scalar)),
            }
        }
        if let Some((items, span)) = &self.one_of {
            if let Some(kind) = values_check(items) {
                check(*span, kind);
            }
        }
        if let Some((min, max, span)) = &self.between {
            let kind = values_check(&[min.clone(), max.clone()]).unwrap_or("check_int_values");
            check(*span, kind);
        }
        for (_, span) in self.len_min.iter().chain(&self.len_max) {
            check(*span, "check_length");
        }
        for lit in self.match_.iter().chain(&self.not_match) {
            check(lit.span(), "check_str_values");
        }
        if let Some(span) = self.referenceable {
            check(span, "check_str_values");
        }
        checks
    }

    /// Builder calls setting every property except `required` and `description`.
    pub(crate) fn builder_calls(&self) -> TokenStream {
        let mut calls = TokenStream::new();
        if let Some(default) = &self.default {
            let value = default.to_json_tokens();
            calls.extend(quote!(.default_value(#value)));
        }
        if let Some((items, _)) = &self.one_of {
            let items = items.iter().map(Value::to_json_tokens);
            calls.extend(quote!(.one_of([#(#items),*])));
        }
        if let Some((min, max, _)) = &self.between {
            let (min, max) = (min.to_number_tokens(), max.to_number_tokens());
            calls.extend(quote!(.between(#min, #max)));
        }
        if let Some((n, _)) = self.len_min {
            calls.extend(quote!(.len_min(#n)));
        }
        if let Some((n, _)) = self.len_max {
            calls.extend(quote!(.len_max(#n)));
        }
        if let Some(pattern) = &self.match_ {
            calls.extend(quote!(.match_pattern(#pattern)));
        }
        if let Some(pattern) = &self.not_match {
            calls.extend(quote!(.not_match_pattern(#pattern)));
        }
        if self.referenceable.is_some() {
            calls.extend(quote!(.referenceable()));
        }
        if self.encrypted.is_some() {
            calls.extend(quote!(.encrypted()));
        }
        calls
    }
}

/// Gives every token the location `span` (keeping how it resolves).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut respanned =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(group.span().located_at(span));
                token = respanned.into();
            } else {
                token.set_span(token.span().located_at(span));
            }
            token
        })
        .collect()
}

fn array_check(first: &Value) -> &'static str {
    match first {
        Value::Str(..) => "check_array_of_str",
        Value::Int(..) => "check_array_of_int",
        Value::Float(..) => "check_array_of_float",
        Value::Bool(..) => "check_array_of_bool",
        Value::Array(..) => "check_array",
    }
}

fn scalar_check(value: &Value) -> &'static str {
    match value {
        Value::Str(..) => "check_str",
        Value::Int(..) => "check_int",
        Value::Float(..) => "check_float",
        Value::Bool(..) => "check_bool",
        Value::Array(..) => "check_array",
    }
}

/// Which `*_values` check a list of validator values needs.
fn values_check(items: &[Value]) -> Option<&'static str> {
    if items.iter().any(|v| matches!(v, Value::Str(..))) {
        Some("check_str_values")
    } else if items.iter().any(|v| matches!(v, Value::Float(..))) {
        Some("check_float_values")
    } else if items.iter().any(|v| matches!(v, Value::Int(..))) {
        Some("check_int_values")
    } else {
        None
    }
}

/// `key`, `key = true` or `key = false`.
fn parse_bool_flag(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    if !meta.input.peek(Token![=]) {
        return Ok(true);
    }
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    let lit: syn::LitBool = meta
        .value()?
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format_args!("`{key}` takes `true` or `false`")))?;
    Ok(lit.value)
}

/// Consumes the value of a key we do not interpret: `= expr` or `(...)`.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _: proc_macro2::TokenTree = meta.input.parse()?;
    }
    Ok(())
}

/// The parts of `#[serde(...)]` on a container that change the schema.
#[derive(Default)]
pub(crate) struct SerdeContainer {
    pub(crate) rename_all: Option<RenameRule>,
    pub(crate) default: bool,
    pub(crate) transparent: bool,
    /// `tag`, `content` or `untagged`: an enum representation other than plain strings.
    pub(crate) tagged: Option<Span>,
}

impl SerdeContainer {
    /// Reads the serde attributes leniently: serde's own derive reports malformed ones.
    pub(crate) fn parse(attrs: &[Attribute]) -> SerdeContainer {
        let mut serde = SerdeContainer::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    if let Some(name) = deserialize_name(&meta)? {
                        serde.rename_all = RenameRule::from_name(&name.value());
                    }
                } else if meta.path.is_ident("default") {
                    serde.default = true;
                    skip_value(&meta)?;
                } else if meta.path.is_ident("transparent") {
                    serde.transparent = true;
                } else if meta.path.is_ident("tag")
                    || meta.path.is_ident("content")
                    || meta.path.is_ident("untagged")
                {
                    serde.tagged = Some(meta.path.span());
                    skip_value(&meta)?;
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        serde
    }
}

/// The parts of `#[serde(...)]` on a field or variant that change the schema.
#[derive(Default)]
pub(crate) struct SerdeField {
    pub(crate) rename: Option<String>,
    pub(crate) skip: bool,
    pub(crate) default: bool,
    pub(crate) flatten: Option<Span>,
}

impl SerdeField {
    pub(crate) fn parse(attrs: &[Attribute]) -> SerdeField {
        let mut serde = SerdeField::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    if let Some(name) = deserialize_name(&meta)? {
                        serde.rename = Some(name.value());
                    }
                } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                    serde.skip = true;
                } else if meta.path.is_ident("default") {
                    serde.default = true;
                    skip_value(&meta)?;
                } else if meta.path.is_ident("flatten") {
                    serde.flatten = Some(meta.path.span());
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        serde
    }
}

/// The deserialization name of `rename = "x"` / `rename(deserialize = "x")` (and `rename_all`).
fn deserialize_name(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut name = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("deserialize") {
            name = Some(inner.value()?.parse()?);
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok(name)
}

/// The doc comment as a Kong description: lines trimmed and joined with spaces.
///
/// Kong accepts descriptions of 10 to 500 bytes: a shorter doc comment is left out, a
/// longer one is cut at a word boundary and ends with "...".
pub(crate) fn doc_description(attrs: &[Attribute]) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
            {
                for line in s.value().lines() {
                    let line = line.trim();
                    if !line.is_empty() {
                        words.push(line.to_owned());
                    }
                }
            }
        }
    }
    let mut text = words.join(" ");
    if text.len() < 10 {
        return None;
    }
    if text.len() > 500 {
        let mut cut = 497;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = text[..cut].rfind(' ') {
            cut = space;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    Some(text)
}
