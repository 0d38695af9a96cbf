//! `--version`: the version, and the head migration each app carries.

use migration::App;

pub const SHORT: &str = env!("CARGO_PKG_VERSION");

pub fn long() -> String {
    let mut s = format!("{SHORT}\nmigrations:");
    for app in App::REAL {
        let steps = app.steps();
        let head = steps
            .last()
            .map(|h| match h.alias {
                Some(a) => format!("{} ({a})", h.name),
                None => h.name.to_owned(),
            })
            .unwrap_or_else(|| "none".into());
        s.push_str(&format!(
            "\n  {app}: {} migrations, head {head}",
            steps.len()
        ));
    }
    s
}

/// `long()` computed once, for clap.
pub fn long_static() -> &'static str {
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LONG.get_or_init(long)
}
