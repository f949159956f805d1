//! `#[derive(Schema)]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Generics, Ident};

use crate::attr::{Errors, KongAttrs, SerdeContainer, SerdeField, doc_description};

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    match expand(&input) {
        Ok(tokens) => tokens,
        Err(e) => {
            // Keep the type implementing `Schema` so the errors above are the only ones.
            let fallback = wrap(
                &input.ident,
                &input.generics,
                quote!(
                    fn field() -> __kong::Field {
                        ::core::unreachable!()
                    }
                ),
            );
            let mut tokens = e.to_compile_error();
            tokens.extend(fallback);
            tokens
        }
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    if let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("kong")) {
        errors.at(
            attr.span(),
            "#[kong(...)] goes on the fields of the struct, not on the struct itself",
        );
    }
    let serde = SerdeContainer::parse(&input.attrs);
    let tokens = match &input.data {
        Data::Struct(data) if serde.transparent => transparent(input, &data.fields, &mut errors),
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => record(input, &serde, fields, &mut errors),
            Fields::Unnamed(_) | Fields::Unit => {
                errors.at(
                    input.ident.span(),
                    "#[derive(Schema)] needs a struct with named fields: Kong configs are records \
                     of named fields (a newtype can use #[serde(transparent)])",
                );
                TokenStream::new()
            }
        },
        Data::Enum(data) => unit_enum(input, &serde, data, &mut errors),
        Data::Union(data) => {
            errors.at(
                data.union_token.span(),
                "#[derive(Schema)] does not support unions: Kong configs are records of named \
                 fields; use a struct",
            );
            TokenStream::new()
        }
    };
    errors.into_result()?;
    Ok(tokens)
}

/// A struct with named fields: a Kong `record`.
fn record(
    input: &DeriveInput,
    serde: &SerdeContainer,
    fields: &syn::FieldsNamed,
    errors: &mut Errors,
) -> TokenStream {
    let mut names: Vec<(String, Span)> = Vec::new();
    let mut body = quote!(__kong::Field::record());
    for field in &fields.named {
        let ident = field.ident.as_ref().expect("named field");
        let field_serde = SerdeField::parse(&field.attrs);
        let kong = KongAttrs::parse(&field.attrs, errors);
        if field_serde.skip {
            if let Some(span) = kong.present {
                errors.at(
                    span,
                    "this field is skipped by serde, so it is not in the Kong schema; remove #[kong(...)]",
                );
            }
            continue;
        }
        if let Some(span) = kong.skip {
            if kong.has_properties() {
                errors.at(
                    span,
                    "a field with #[kong(skip)] is not in the Kong schema, so it takes no other \
                     #[kong] properties",
                );
            }
            continue;
        }
        if let Some(span) = field_serde.flatten {
            errors.at(
                span,
                "#[derive(Schema)] does not support #[serde(flatten)]: Kong needs every config \
                 field listed; nest the struct as a record field or write its fields out",
            );
            continue;
        }
        let name = match (&field_serde.rename, serde.rename_all) {
            (Some(name), _) => name.clone(),
            (None, Some(rule)) => rule.apply_to_field(&ident.unraw().to_string()),
            (None, None) => ident.unraw().to_string(),
        };
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
            let mut error =
                syn::Error::new(ident.span(), format!("duplicate Kong field name `{name}`"));
            error.combine(syn::Error::new(
                *first,
                format!("`{name}` is first used here"),
            ));
            errors.push(error);
            continue;
        }
        names.push((name.clone(), ident.span()));

        let ty = &field.ty;
        let checks = kong.type_checks(ty);
        let calls = kong.builder_calls();
        let required = match kong.required {
            Some((required, _)) => quote!(__field = __field.required(#required);),
            // A serde default fills in what Kong leaves out (or sends as null).
            None if field_serde.default || serde.default => TokenStream::new(),
            // Not an Option: a missing or null value cannot be deserialized, so Kong must
            // reject it. With a Kong default Kong fills in a missing value, but an explicit
            // null must still be rejected.
            None => quote_spanned!(ty.span()=>
                if !<#ty as __kong::Schema>::OPTIONAL {
                    __field = __field.required(true);
                }
            ),
        };
        let description = kong
            .description
            .as_ref()
            .map(syn::LitStr::value)
            .or_else(|| doc_description(&field.attrs))
            .map(|d| quote!(.description(#d)));
        let field_ty = quote_spanned!(ty.span()=> <#ty as __kong::Schema>::field());
        body.extend(quote! {
            .field(#name, {
                #checks
                let mut __field = #field_ty #calls #description;
                #required
                __field
            })
        });
    }
    wrap(
        &input.ident,
        &input.generics,
        quote!(fn field() -> __kong::Field { #body }),
    )
}

/// `#[serde(transparent)]`: the single non-skipped field's schema, with its #[kong] properties.
fn transparent(input: &DeriveInput, fields: &Fields, errors: &mut Errors) -> TokenStream {
    let mut inner = None;
    for field in fields {
        if SerdeField::parse(&field.attrs).skip {
            continue;
        }
        if inner.is_some() {
            errors.at(
                field.span(),
                "#[serde(transparent)] needs exactly one field that is not #[serde(skip)]",
            );
            return TokenStream::new();
        }
        inner = Some(field);
    }
    let Some(field) = inner else {
        errors.at(
            input.ident.span(),
            "#[serde(transparent)] needs exactly one field that is not #[serde(skip)]",
        );
        return TokenStream::new();
    };
    let kong = KongAttrs::parse(&field.attrs, errors);
    if let Some(span) = kong.skip {
        errors.at(
            span,
            "#[kong(skip)] has no meaning on the field of a transparent type",
        );
    }
    if let Some((_, span)) = kong.required {
        errors.at(
            span,
            "`required` belongs on the field that uses this type, not inside a transparent type",
        );
    }
    let ty = &field.ty;
    let checks = kong.type_checks(ty);
    let calls = kong.builder_calls();
    let description = kong
        .description
        .as_ref()
        .map(syn::LitStr::value)
        .or_else(|| doc_description(&field.attrs))
        .map(|d| quote!(.description(#d)));
    let schema_impl = wrap(
        &input.ident,
        &input.generics,
        quote! {
            const OPTIONAL: bool = <#ty as __kong::Schema>::OPTIONAL;
            fn field() -> __kong::Field {
                #checks
                <#ty as __kong::Schema>::field() #calls #description
            }
        },
    );
    let markers = transparent_markers(input, ty);
    quote!(#schema_impl #markers)
}

/// The literal-kind markers of the inner type, forwarded to a transparent wrapper.
fn transparent_markers(input: &DeriveInput, inner: &syn::Type) -> TokenStream {
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    // The lifetime keeps the forwarded bounds from being "trivial" (type-parameter free),
    // which the compiler would reject when the inner type does not have the marker.
    generics.params.insert(0, syn::parse_quote!('__kong_bound));
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    let predicates = where_clause.map(|w| &w.predicates);
    let mut tokens = TokenStream::new();
    for marker in [
        "AcceptsStr",
        "AcceptsInt",
        "AcceptsFloat",
        "AcceptsBool",
        "StrValues",
        "IntValues",
        "FloatValues",
        "HasLength",
    ] {
        let marker = Ident::new(marker, Span::call_site());
        tokens.extend(quote! {
            #[automatically_derived]
            impl #impl_generics __kong::#marker for #ident #ty_generics
            where
                __kong::Bound<'__kong_bound, #inner>: __kong::#marker,
                #predicates
            {}
        });
    }
    quote!(const _: () = { use ::kong_pdk::schema::__private as __kong; #tokens };)
}

/// An enum of unit variants: a Kong `string` with `one_of` the variant names.
fn unit_enum(
    input: &DeriveInput,
    serde: &SerdeContainer,
    data: &syn::DataEnum,
    errors: &mut Errors,
) -> TokenStream {
    const NOT_UNIT: &str = "#[derive(Schema)] supports enums whose variants are all unit \
                            variants (Kong sees a string with `one_of`); Kong configs are records, \
                            so use a struct with named fields";
    if let Some(span) = serde.tagged {
        errors.at(
            span,
            "#[derive(Schema)] supports enums only in serde's default representation (a unit \
             variant is its name as a string)",
        );
    }
    let mut names: Vec<String> = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.at(variant.ident.span(), NOT_UNIT);
            continue;
        }
        if let Some(attr) = variant.attrs.iter().find(|a| a.path().is_ident("kong")) {
            errors.at(
                attr.span(),
                "#[kong(...)] goes on struct fields, not on enum variants",
            );
        }
        let variant_serde = SerdeField::parse(&variant.attrs);
        if variant_serde.skip {
            continue;
        }
        let name = match (&variant_serde.rename, serde.rename_all) {
            (Some(name), _) => name.clone(),
            (None, Some(rule)) => rule.apply_to_variant(&variant.ident.unraw().to_string()),
            (None, None) => variant.ident.unraw().to_string(),
        };
        if names.contains(&name) {
            errors.at(
                variant.ident.span(),
                format!("duplicate variant name `{name}`"),
            );
        }
        names.push(name);
    }
    if data.variants.is_empty() {
        errors.at(
            input.ident.span(),
            "an enum without variants has no Kong schema",
        );
    }
    let schema_impl = wrap(
        &input.ident,
        &input.generics,
        quote!(fn field() -> __kong::Field {
            __kong::Field::string().one_of([#(#names),*])
        }),
    );
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #schema_impl
        const _: () = {
            use ::kong_pdk::schema::__private as __kong;
            #[automatically_derived]
            impl #impl_generics __kong::AcceptsStr for #ident #ty_generics #where_clause {}
            #[automatically_derived]
            impl #impl_generics __kong::StrValues for #ident #ty_generics #where_clause {}
        };
    }
}

/// `impl Schema for Type { body }` with `T: Schema` bounds, inside `const _: () = { ... };`.
fn wrap(ident: &Ident, generics: &Generics, body: TokenStream) -> TokenStream {
    let mut generics = generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(syn::parse_quote!(__kong::Schema));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            use ::kong_pdk::schema::__private as __kong;
            #[automatically_derived]
            impl #impl_generics __kong::Schema for #ident #ty_generics #where_clause {
                #body
            }
        };
    }
}
