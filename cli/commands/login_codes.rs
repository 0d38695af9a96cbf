//! `dbtool login-codes`: NeuraChar housekeeping of the one-time email login codes. Used and
//! expired codes are useless to the app, so `purge` removes them without asking.

use crate::commands::connect_admin;
use crate::context::Access;
use crate::exit::{coded, Exit};
use crate::service::neurachar::{self as svc, PurgeCount};
use crate::Ctx;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use migration::App;
use serde::Serialize;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dbtool --app neurachar login-codes purge                   delete every used or expired code
  dbtool --app neurachar login-codes purge --older-than 7d   only those created over a week ago
  dbtool --app neurachar login-codes purge --dry-run         count them, delete nothing")]
pub struct LoginCodesArgs {
    #[command(subcommand)]
    pub command: LoginCodesCommand,
}

#[derive(Debug, Subcommand)]
pub enum LoginCodesCommand {
    /// Delete login codes that were used or have expired, and say how many went
    #[command(after_help = "\
Examples:
  dbtool --app neurachar login-codes purge
  dbtool --app neurachar login-codes purge --older-than 24h --dry-run

A code counts as used when used_at is set and as expired when expires_at has passed (times
in UTC). --older-than keeps spent codes younger than AGE by created_at, e.g. for audits.")]
    Purge {
        /// Only codes created longer ago than this: a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d, 1d12h
        // A negative age (`-1d`) reaches the parser, which names it, instead of reading as
        // an unknown flag `-1`.
        #[arg(long, value_name = "AGE", allow_hyphen_values = true)]
        older_than: Option<Age>,
        /// Count what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// A span of time given as `<number><unit>` pieces, e.g. `7d` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age {
    pub seconds: i64,
}

impl std::str::FromStr for Age {
    type Err = String;
    fn from_str(s: &str) -> Result<Age, String> {
        let usage = || {
            format!(
                "invalid age '{s}': use a number with a unit (s, m, h, d or w), e.g. 30m, 24h, 7d"
            )
        };
        let mut total: i64 = 0;
        let mut digits = String::new();
        if s.trim().is_empty() {
            return Err(usage());
        }
        if s.trim().starts_with('-') {
            return Err(format!(
                "invalid age '{s}': an age cannot be negative; give how long ago, e.g. 7d"
            ));
        }
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: i64 = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(usage()),
            };
            if digits.is_empty() {
                return Err(usage());
            }
            let too_large = || format!("age '{s}' is too large (at most 100 years)");
            let n: i64 = digits.parse().map_err(|_| too_large())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .filter(|v| *v <= 100 * 365 * 86_400)
                .ok_or_else(too_large)?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(usage());
        }
        if total == 0 {
            return Err(format!(
                "age '{s}' is zero; leave --older-than out to purge regardless of age"
            ));
        }
        Ok(Age { seconds: total })
    }
}

pub async fn run(ctx: &Ctx, args: LoginCodesArgs) -> Result<Exit> {
    if ctx.app_given().is_some_and(|a| a != App::Neurachar) {
        // The command line contradicts itself (no database is asked): a usage error.
        return Err(coded(
            Exit::Usage,
            format!(
                "`dbtool login-codes` is for NeuraChar: the {} schema has no email login codes; use --app neurachar",
                ctx.app
            ),
        ));
    }
    match args.command {
        LoginCodesCommand::Purge {
            older_than,
            dry_run,
        } => purge(ctx, older_than, dry_run).await,
    }
}

#[derive(Serialize)]
struct PurgeView {
    dry_run: bool,
    #[serde(flatten)]
    count: PurgeCount,
    /// Only codes created before this time were considered (from --older-than).
    created_before: Option<DateTime<Utc>>,
}

async fn purge(ctx: &Ctx, older_than: Option<Age>, dry_run: bool) -> Result<Exit> {
    // A dry run only counts, so it works on a read-only standby too.
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::Write
    };
    let db = connect_admin(ctx, access, "email_login_codes").await?;
    let now = Utc::now();
    let created_before = older_than.map(|a| now - chrono::Duration::seconds(a.seconds));
    let count = svc::purge_login_codes(
        &db,
        now.naive_utc(),
        created_before.map(|t| t.naive_utc()),
        dry_run,
    )
    .await
    .context("purging login codes")?;
    let view = PurgeView {
        dry_run,
        count,
        created_before,
    };
    ctx.out.emit(&view, |o| {
        let age = created_before
            .map(|t| format!(", created before {}", crate::output::human_time(&t)))
            .unwrap_or_default();
        let detail = format!("{} used, {} expired{age}", count.used, count.expired);
        let codes = crate::output::count(count.purged, "login code", "login codes");
        if dry_run {
            o.line(&format!(
                "would purge {codes} ({detail}); dry run: nothing was deleted"
            ))
        } else {
            o.done(&format!("purged {codes} ({detail})"))
        }
    });
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!("7d".parse::<Age>().unwrap().seconds, 7 * 86_400);
        assert_eq!("24h".parse::<Age>().unwrap().seconds, 86_400);
        assert_eq!("30m".parse::<Age>().unwrap().seconds, 1_800);
        assert_eq!("1d12h".parse::<Age>().unwrap().seconds, 129_600);
        assert_eq!("2w".parse::<Age>().unwrap().seconds, 1_209_600);
        for bad in ["", "7", "d", "7x", "-7d", "0d", "1.5h", "99999999999w"] {
            assert!(bad.parse::<Age>().is_err(), "{bad:?}");
        }
    }
}
