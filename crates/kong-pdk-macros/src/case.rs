//! serde's `rename_all` rules, applied the way serde applies them.

/// A `#[serde(rename_all = "...")]` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    /// The rule serde calls `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<RenameRule> {
        Some(match name {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// Renames a struct field (written in snake_case).
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut pascal = String::new();
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply_to_field(field);
                lower_first(&pascal)
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }

    /// Renames an enum variant (written in PascalCase).
    pub(crate) fn apply_to_variant(self, variant: &str) -> String {
        match self {
            RenameRule::Pascal => variant.to_owned(),
            RenameRule::Lower => variant.to_ascii_lowercase(),
            RenameRule::Upper => variant.to_ascii_uppercase(),
            RenameRule::Camel => lower_first(variant),
            RenameRule::Snake => {
                let mut snake = String::new();
                for (i, ch) in variant.char_indices() {
                    if i > 0 && ch.is_uppercase() {
                        snake.push('_');
                    }
                    snake.push(ch.to_ascii_lowercase());
                }
                snake
            }
            RenameRule::ScreamingSnake => RenameRule::Snake
                .apply_to_variant(variant)
                .to_ascii_uppercase(),
            RenameRule::Kebab => RenameRule::Snake
                .apply_to_variant(variant)
                .replace('_', "-"),
            RenameRule::ScreamingKebab => RenameRule::ScreamingSnake
                .apply_to_variant(variant)
                .replace('_', "-"),
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule::{self, *};

    #[test]
    fn fields() {
        let cases: &[(RenameRule, &str)] = &[
            (Lower, "outcome_wrapper"),
            (Upper, "OUTCOME_WRAPPER"),
            (Pascal, "OutcomeWrapper"),
            (Camel, "outcomeWrapper"),
            (Snake, "outcome_wrapper"),
            (ScreamingSnake, "OUTCOME_WRAPPER"),
            (Kebab, "outcome-wrapper"),
            (ScreamingKebab, "OUTCOME-WRAPPER"),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                rule.apply_to_field("outcome_wrapper"),
                *expected,
                "{rule:?}"
            );
        }
    }

    #[test]
    fn variants() {
        let cases: &[(RenameRule, &str)] = &[
            (Lower, "outcomewrapper"),
            (Upper, "OUTCOMEWRAPPER"),
            (Pascal, "OutcomeWrapper"),
            (Camel, "outcomeWrapper"),
            (Snake, "outcome_wrapper"),
            (ScreamingSnake, "OUTCOME_WRAPPER"),
            (Kebab, "outcome-wrapper"),
            (ScreamingKebab, "OUTCOME-WRAPPER"),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                rule.apply_to_variant("OutcomeWrapper"),
                *expected,
                "{rule:?}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(RenameRule::from_name("kebab-case"), Some(Kebab));
        assert_eq!(RenameRule::from_name("Kebab"), None);
    }
}
