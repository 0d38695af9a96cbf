//! Migration targets as typed values: parsed at the command-line boundary, resolved
//! against an application's migration list in the service.

use std::fmt;
use std::str::FromStr;

/// Where a command should move the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// After the last migration.
    Head,
    /// Before the first migration.
    Base,
    /// A migration's name or Alembic alias, or a unique prefix (≥ 4 characters) of either.
    Name(String),
    /// `+N` / `-N` steps from the current position.
    Relative(i32),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let s = s.trim();
        match s {
            "" => {
                return Err(
                    "the target is empty; give head, base, a migration name, or +N/-N".into(),
                )
            }
            "head" | "heads" => return Ok(Target::Head),
            "base" => return Ok(Target::Base),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) {
            let n: i32 = rest.parse().map_err(|_| {
                if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()) {
                    format!("'{s}' is out of range: +N / -N counts migration steps, and no app has that many")
                } else {
                    format!("'{s}' is not a relative target: use +N or -N with a whole number, e.g. -1")
                }
            })?;
            if n == 0 {
                return Err(format!(
                    "'{s}' moves nowhere: use a non-zero number of steps"
                ));
            }
            return Ok(Target::Relative(if s.starts_with('-') { -n } else { n }));
        }
        if s.chars().all(|c| c.is_ascii_digit()) && s.len() < 12 {
            return Err(bare_number(s));
        }
        Ok(Target::Name(s.to_owned()))
    }
}

/// A bare number could be steps or the start of a revision: the error names the
/// revisions it starts (of any app, since the app is not known while parsing).
fn bare_number(s: &str) -> String {
    if s.chars().all(|c| c == '0') {
        // `+0` and `-0` move nowhere, so they are no way out.
        return format!(
            "'{s}' is not a target: give +N or -N steps (not zero), head, base, or a migration name or revision"
        );
    }
    #[cfg(not(feature = "fixtures"))]
    let apps = crate::engine::app::App::REAL.to_vec();
    #[cfg(feature = "fixtures")]
    let apps = [
        crate::engine::app::App::REAL.as_slice(),
        &[crate::engine::app::App::Fixture],
    ]
    .concat();
    let mut matches: Vec<&str> = apps
        .iter()
        .flat_map(|a| a.steps())
        .flat_map(|step| [Some(step.name), step.alias])
        .flatten()
        .filter(|id| id.starts_with(s))
        .collect();
    matches.sort();
    matches.dedup();
    let revision = match matches.as_slice() {
        [] => "a migration name or revision".to_owned(),
        [one] => format!("{one} for the revision"),
        many => format!("one of {} for a revision", many.join(", ")),
    };
    format!("'{s}' is ambiguous: write +{s} or -{s} for steps, or {revision}")
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Head => f.write_str("head"),
            Target::Base => f.write_str("base"),
            Target::Name(n) => f.write_str(n),
            Target::Relative(n) => write!(f, "{n:+}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("head".parse::<Target>().unwrap(), Target::Head);
        assert_eq!("base".parse::<Target>().unwrap(), Target::Base);
        assert_eq!("+2".parse::<Target>().unwrap(), Target::Relative(2));
        assert_eq!("-1".parse::<Target>().unwrap(), Target::Relative(-1));
        assert_eq!(
            "d8cf".parse::<Target>().unwrap(),
            Target::Name("d8cf".into())
        );
    }

    #[test]
    fn rejects_bare_numbers_and_zero() {
        assert!("1".parse::<Target>().unwrap_err().contains("ambiguous"));
        assert_eq!(
            "25698".parse::<Target>().unwrap_err(),
            "'25698' is ambiguous: write +25698 or -25698 for steps, or 25698f3f906f for the revision"
        );
        assert!("+0".parse::<Target>().is_err());
        let zero = "0".parse::<Target>().unwrap_err();
        assert!(!zero.contains("+0") && zero.contains("not zero"), "{zero}");
        let big = "+99999999999999999999".parse::<Target>().unwrap_err();
        assert!(big.contains("out of range"), "{big}");
        assert!("-x".parse::<Target>().is_err());
        assert!("".parse::<Target>().is_err());
    }
}
