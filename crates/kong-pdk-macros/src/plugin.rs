//! `#[kong_pdk::plugin]`: fills in `Plugin::PHASES` from the phase methods written.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, Item};

use crate::attr::Errors;

/// The phase methods, in the order Kong runs them, with their `Phase` variants.
const PHASES: [(&str, &str); 6] = [
    ("certificate", "Certificate"),
    ("rewrite", "Rewrite"),
    ("access", "Access"),
    ("response", "Response"),
    ("preread", "Preread"),
    ("log", "Log"),
];

const VALID_METHODS: &str = "certificate, rewrite, access, response, preread, log (the phases) \
                             and init (the per-instance setup hook)";

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.at(
            args.span(),
            "#[kong_pdk::plugin] takes no arguments: version and priority are passed to \
             kong_pdk::run(version, priority) in main()",
        );
    }
    let mut item_impl = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Impl(item_impl)) if item_impl.trait_.is_some() => item_impl,
        Ok(item) => {
            errors.at(
                item_span(&item),
                "#[kong_pdk::plugin] goes on an `impl Plugin for YourConfig { ... }` block",
            );
            return finish(errors, item.into_token_stream());
        }
        Err(e) => {
            errors.push(e);
            return finish(errors, input);
        }
    };
    let (trait_path, _) = item_impl.trait_.as_ref().expect("checked above");
    if trait_path
        .segments
        .last()
        .is_none_or(|s| s.ident != "Plugin")
    {
        errors.at(
            trait_path.span(),
            "#[kong_pdk::plugin] goes on an `impl Plugin for YourConfig { ... }` block",
        );
        return finish(errors, item_impl.into_token_stream());
    }

    let mut found = [false; PHASES.len()];
    item_impl.items.retain(|item| match item {
        ImplItem::Fn(method) => {
            let name = method.sig.ident.to_string();
            if let Some(index) = PHASES.iter().position(|(phase, _)| *phase == name) {
                found[index] = true;
                true
            } else if name == "init" {
                true
            } else {
                errors.at(
                    method.sig.ident.span(),
                    format_args!(
                        "`{name}` is not a method of kong_pdk::Plugin; a plugin's methods are \
                         {VALID_METHODS}"
                    ),
                );
                false
            }
        }
        ImplItem::Const(constant) if constant.ident == "PHASES" => {
            errors.at(
                constant.ident.span(),
                "#[kong_pdk::plugin] fills in `PHASES` from the phase methods you write; remove \
                 this constant",
            );
            false
        }
        _ => true,
    });
    if !found.contains(&true) {
        errors.at(
            item_impl.self_ty.span(),
            "a plugin must handle at least one phase: certificate, rewrite, access, response, \
             preread, log",
        );
    }

    let phases = PHASES
        .iter()
        .zip(found)
        .filter(|(_, present)| *present)
        .map(|((_, variant), _)| {
            let variant = format_ident!("{variant}");
            quote!(::kong_pdk::Phase::#variant)
        });
    let phases_const: ImplItem = syn::parse_quote! {
        const PHASES: &'static [::kong_pdk::Phase] = &[#(#phases),*];
    };
    item_impl.items.insert(0, phases_const);
    finish(errors, item_impl.into_token_stream())
}

/// The (possibly repaired) item, preceded by the errors: emitting the item keeps the
/// compiler from adding follow-on errors about a missing impl.
fn finish(errors: Errors, item: TokenStream) -> TokenStream {
    match errors.into_result() {
        Ok(()) => item,
        Err(e) => {
            let mut tokens = e.to_compile_error();
            tokens.extend(item);
            tokens
        }
    }
}

fn item_span(item: &Item) -> Span {
    match item {
        Item::Impl(item_impl) => item_impl.impl_token.span(),
        Item::Fn(f) => f.sig.ident.span(),
        Item::Struct(s) => s.ident.span(),
        Item::Enum(e) => e.ident.span(),
        Item::Trait(t) => t.ident.span(),
        other => other.span(),
    }
}
