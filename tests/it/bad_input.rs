//! The bad-input suite (issue 12): hundreds of bad or unusual inputs over every command and
//! all three backends, each answered with one clean error line, the documented exit code,
//! no password anywhere, and nothing changed (see `common::badinput`). The cases are
//! grouped by the state of the database they run against.

use crate::common::badinput::{case, run_cases, Case, Fixture, SECRET};
use crate::common::pgrole::PgRole;
use crate::common::{Backend, TestDb};
use crate::on_all_backends;
use chrono::{SubsecRound, Utc};
use entity::neurachar::{character, chat, email_login_code, message, user};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};
use uuid::Uuid;

const PG: Backend = Backend::Postgres;
const LITE: Backend = Backend::Sqlite;
const MY: Backend = Backend::MySql;

on_all_backends!(
    avatar_database,
    neurachar_database,
    empty_database,
    foreign_tracking_table,
    restricted_access,
);

/// Existing rows the cases refer to.
const CHAT: &str = "7d1c0e5e-5a0b-4d5e-9f55-0a1b2c3d4e5f";
const CHARACTER: &str = "0b7e3a52-8f0a-4c47-9a0e-5c8f1d2e3a4b";
const NO_ID: &str = "00000000-0000-0000-0000-000000000000";

/// A `postgres://` / `mysql://` URL to a server that is not there.
const CLOSED: &str = "postgres://postgres:Pw-S3cret@127.0.0.1:1/nothing";

/// Cases that fail before any database is touched: the command line, the configuration
/// sources, and URLs that are refused up front or cannot connect.
fn configuration_cases() -> Vec<Case> {
    vec![
        // Explicit empty URLs name where they came from.
        case("empty --database-url", &["--database-url", "", "status"]).names(&["--database-url", "empty"]),
        case("blank --database-url", &["--database-url", "   ", "upgrade"]).names(&["--database-url"]),
        case("empty DATABASE_URL in env", &["upgrade"]).url("").names(&["DATABASE_URL (environment)", "empty"]),
        case("empty DATABASE_URL in .env", &["settings", "list"]).no_url().file(".env", "DATABASE_URL=\n").names(&["DATABASE_URL in ./.env (line 1)"]),
        case("empty DATABASE_URL quoted in .env", &["users", "list"]).no_url().file(".env", "OTHER=1\nDATABASE_URL=''\n").names(&["line 2"]),
        case("empty database_url in dbtool.toml", &["history"]).no_url().file("dbtool.toml", "database_url = \"\"\n").names(&["database_url in ./dbtool.toml"]),
        // URLs that do not parse or name nothing usable.
        case("bare file name as URL", &["--database-url", "x.db", "status"]).names(&["sqlite://x.db"]),
        case("unknown scheme", &["--database-url", "oracle://h/db", "status"]).names(&["oracle"]),
        case("password with #", &["status"]).url("postgres://postgres:Pw-S3cret#1@127.0.0.1:5432/db").names(&["%23"]),
        case("password with ?", &["upgrade"]).url("postgres://postgres:Pw-S3cret?1@127.0.0.1:5432/db").names(&["%3F"]),
        case("password with /", &["settings", "list"]).url("postgres://postgres:Pw/S3cret@127.0.0.1:5432/db").names(&["%2F"]).secret("Pw/S3cret"),
        case("password with @, login fails", &["status"]).url("postgres://nosuchrole_at:Pw@S3cret@127.0.0.1:5432/postgres").code(6).names(&["%40", "nosuchrole_at"]).secret("Pw@S3cret").only(&[PG]),
        case("password with @ for MySQL, login fails", &["status"]).url("mysql://root:Pw@S3cret@127.0.0.1:3306/mysql").code(6).names(&["%40", "Access denied"]).secret("Pw@S3cret").only(&[MY]),
        case("fragment in URL", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/db#x").names(&["fragment"]),
        case("mysql without database", &["status"]).url("mysql://root:Pw-S3cret@127.0.0.1:3306").names(&["names no database"]),
        case("mysql with / only", &["upgrade"]).url("mysql://root@127.0.0.1:3306/").names(&["names no database"]),
        case("mariadb without database", &["settings", "list"]).url("mariadb://root@127.0.0.1:3306").names(&["names no database"]),
        case("bad sslmode value", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/{db}?sslmode=bogus").names(&["bogus"]).only(&[PG]),
        // TLS parameters in the backend's own names (edges #16).
        case("MySQL with PostgreSQL's sslrootcert", &["status"]).url("mysql://root@127.0.0.1:3306/mysql?ssl-mode=VERIFY_CA&sslrootcert={dir}/nonexist.pem").names(&["sslrootcert", "ssl-ca=", "nonexist.pem"]),
        case("MySQL with sslmode=require", &["status"]).url("mysql://root@127.0.0.1:3306/mysql?sslmode=require").names(&["sslmode=require", "ssl-mode=REQUIRED"]),
        case("MySQL with sslmode=verify-full", &["upgrade"]).url("mysql://root@127.0.0.1:3306/mysql?sslmode=verify-full").names(&["ssl-mode=VERIFY_IDENTITY"]),
        case("MySQL with ssl-mode=bogus", &["status"]).url("mysql://root@127.0.0.1:3306/mysql?ssl-mode=bogus").names(&["ssl-mode=bogus", "VERIFY_IDENTITY"]),
        case("PostgreSQL sslmode=bogus names sslmode", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/db?sslmode=bogus").names(&["sslmode=bogus", "verify-full"]),
        case("PostgreSQL with MySQL's mode name", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/db?sslmode=REQUIRED").names(&["sslmode=require"]),
        case("unknown SQLite parameter", &["status"]).url("sqlite://{dir}/x.db?password=Pw-S3cret").names(&["password"]),
        case("bad SQLite mode", &["status"]).url("sqlite://{dir}/x.db?mode=bogus").names(&["mode=bogus"]),
        // Odd URL forms (issue 12, edges #1, #7, #17, #18): refused before connecting, the password masked.
        case("URL with one slash, --json", &["--json", "status"]).url("postgres:/postgres:Pw-S3cret@127.0.0.1:5432/db").names(&["'postgres:' must be followed by '//'", "postgres:/postgres:***@"]),
        case("URL without slashes, config", &["config"]).url("postgresql:postgres:Pw-S3cret@127.0.0.1:5432/db").names(&["postgresql://user:***@host"]),
        case("URL without slashes, config --json", &["--json", "config"]).url("postgresql:postgres:Pw-S3cret@127.0.0.1:5432/db").names(&["must be followed by '//'"]),
        case("URL without slashes, -v", &["-v", "status"]).url("postgres:postgres:Pw-S3cret@127.0.0.1:5432/db").names(&["must be followed by '//'"]),
        case("MySQL URL with one slash", &["upgrade"]).url("mysql:/root:Pw-S3cret@127.0.0.1:3306/db").names(&["mysql://user:***@host:3306/dbname"]),
        case("URL with three slashes", &["status"]).url("postgres:///postgres:Pw-S3cret@127.0.0.1:5432/db").names(&["more than two slashes", "postgres:///postgres:***@"]),
        case("URL with four slashes, MySQL", &["upgrade"]).url("mysql:////root:Pw-S3cret@127.0.0.1:3306/db").names(&["more than two slashes"]),
        case("NUL byte in the PostgreSQL database name", &["upgrade"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/atk%00a").names(&["the database name", "%00"]),
        case("NUL byte in the MySQL database name", &["status"]).url("mysql://root:Pw-S3cret@127.0.0.1:3306/atk%00a").names(&["the database name", "%00"]),
        case("NUL byte in the user name", &["status"]).url("postgres://post%00gres:Pw-S3cret@127.0.0.1:5432/db").names(&["the user name"]),
        case("control byte in a parameter", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/db?application_name=a%0Ab").names(&["application_name"]),
        case("mysql without database, with parameters", &["status"]).url("mysql://root@127.0.0.1:3306/?ssl-mode=disabled").names(&["mysql://root@127.0.0.1:3306/avatar?ssl-mode=disabled"]),
        case("SQLite vfs=memdb", &["upgrade"]).url("sqlite://{dir}/y.db?vfs=memdb").code(17).names(&["in-memory", "vfs=memdb"]),
        case("SQLite immutable=1, upgrade", &["upgrade"]).url("sqlite://{dir}/y.db?immutable=1").code(17).names(&["immutable=1"]),
        case("SQLite immutable=true, settings set", &["settings", "set", "bio_prompt_x", "v"]).url("sqlite://{file}?immutable=true").code(17).only(&[LITE]).names(&["immutable=1"]),
        case("SQLite immutable=maybe", &["status"]).url("sqlite://{dir}/y.db?immutable=maybe").names(&["immutable=maybe"]),
        case("SQLite cache=bogus", &["status"]).url("sqlite://{dir}/y.db?cache=bogus").names(&["cache=bogus"]),
        case("SQLite #fragment", &["upgrade"]).url("sqlite://{dir}/f.db#section").names(&["#fragment", "#section"]),
        case("SQLite NUL byte in the file name", &["upgrade"]).url("sqlite://{dir}/a%00b.db").names(&["a%00b.db", "control character"]),
        case("SQLite invalid UTF-8 file name", &["stamp", "head"]).url("sqlite://{dir}/a%FFb.db").names(&["UTF-8"]),
        case("SQLite file: form", &["upgrade"]).url("sqlite://file:x.db").names(&["sqlite://file:x.db", "%3A"]),
        case("SQLite file: form without slashes", &["upgrade"]).url("sqlite:file:x.db").names(&["'file:'", "sqlite://x.db"]),
        case("SQLite file: form encoded", &["stamp", "head", "--force"]).url("sqlite://file%3Ax.db").names(&["'file:'"]),
        // Writes to in-memory or read-only SQLite are refused (17), nothing is created.
        case("upgrade sqlite::memory:", &["upgrade"]).url("sqlite::memory:").code(17).names(&["in-memory"]),
        case("upgrade sqlite://", &["upgrade"]).url("sqlite://").code(17).names(&["in-memory"]),
        case("stamp sqlite://:memory:", &["stamp", "head"]).url("sqlite://:memory:").code(17).names(&["in-memory"]),
        case("settings set in memory", &["settings", "set", "bio_prompt_x", "v"]).url("sqlite::memory:").code(17).names(&["in-memory"]),
        case("downgrade mode=memory", &["downgrade", "--yes"]).url("sqlite://{dir}/m.db?mode=memory").code(17).names(&["in-memory"]),
        case("upgrade mode=ro, no file", &["upgrade"]).url("sqlite://{dir}/new.db?mode=ro").code(17).names(&["mode=ro", "new.db"]),
        case("upgrade mode=rw, no file", &["upgrade"]).url("sqlite://{dir}/new.db?mode=rw").code(6).names(&["mode=rw", "new.db"]),
        case("upgrade into a missing directory", &["upgrade"]).url("sqlite://{dir}/nodir/x.db").code(6).names(&["nodir"]),
        case("a directory as SQLite file", &["upgrade"]).url("sqlite://{dir}/sub").file("sub/keep", "").code(6).names(&["directory"]),
        case("a text file as SQLite file", &["status"]).url("sqlite://{dir}/notes.db").file("notes.db", "these are notes, not a database\n").code(6).names(&["not a SQLite database"]),
        // Missing SQLite files: every command that needs the database says 6 and creates nothing.
        case("settings get, no file", &["settings", "get", "bio_prompt_x"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("settings set, no file", &["settings", "set", "bio_prompt_x", "v"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("settings export, no file", &["settings", "export"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("settings import, no file", &["settings", "import", "s.json"]).url("sqlite://{dir}/missing.db").file("s.json", "{\"settings\": []}").code(6).names(&["missing.db"]),
        case("check, no file", &["check"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("docs, no file", &["docs"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("downgrade, no file", &["downgrade", "--yes"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("stamp unknown target, no file", &["stamp", "nosuch"]).url("sqlite://{dir}/missing.db").names(&["nosuch"]),
        case("users list, no file", &["users", "list"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("characters, no file", &["--app", "neurachar", "characters", "list"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db", "--app neurachar upgrade"]),
        case("chats delete, no file", &["--app", "neurachar", "chats", "delete", NO_ID, "--yes"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("login-codes, no file", &["--app", "neurachar", "login-codes", "purge"]).url("sqlite://{dir}/missing.db").code(6).names(&["missing.db"]),
        case("default ./dbtool.db missing", &["settings", "get", "bio_prompt_x"]).no_url().code(6).names(&["./dbtool.db"]),
        // Servers that are not there, or not what the URL says.
        case("missing PostgreSQL database", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/nosuchdb_x").code(6).names(&["nosuchdb_x", "SQLSTATE 3D000"]),
        case("missing database, password as parameter", &["--json", "status"]).url("postgres://postgres@127.0.0.1:5432/nosuchdb_y?password=Pw-S3cret").code(6).names(&["password=***"]),
        case("missing database, sslpassword parameter", &["-v", "status"]).url("postgres://postgres@127.0.0.1:5432/nosuchdb_y?sslpassword=Pw-S3cret").code(6).names(&["sslpassword=***"]),
        case("missing database, encoded password", &["-vv", "upgrade"]).url("postgres://postgres:Pw%2DS3cret@127.0.0.1:5432/nosuchdb_z").code(6).names(&["nosuchdb_z"]).secret("Pw%2DS3cret"),
        case("missing MySQL database", &["status"]).url("mysql://root@127.0.0.1:3306/nosuchdb_x").code(6).names(&["nosuchdb_x", "1049"]),
        case("unknown PostgreSQL role", &["settings", "list"]).url("postgres://nosuchrole_x:Pw-S3cret@127.0.0.1:5432/postgres").code(6).names(&["nosuchrole_x"]),
        case("wrong MariaDB password", &["status"]).url("mysql://root:Pw-S3cret@127.0.0.1:3306/mysql").code(6).names(&["Access denied", "password"]),
        case("wrong MariaDB password, --json", &["--json", "upgrade"]).url("mysql://root:Pw-S3cret@127.0.0.1:3306/mysql").code(6).names(&["Access denied"]),
        case("postgres URL on the MySQL port", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:3306/db").code(6).names(&["MySQL/MariaDB", "3306"]),
        case("mysql URL on the PostgreSQL port", &["status"]).url("mysql://root:Pw-S3cret@127.0.0.1:5432/db").code(6).names(&["PostgreSQL", "5432"]),
        case("nothing listens", &["upgrade"]).url(CLOSED).code(6).names(&["127.0.0.1:1", "--wait"]),
        case("nothing listens, --wait-timeout 1", &["--wait", "--wait-timeout", "1", "status"]).url(CLOSED).code(6).names(&["--wait-timeout (1s)"]),
        case("unknown host", &["status"]).url("postgres://postgres:Pw-S3cret@no-such-host.invalid:5432/db").code(6).names(&["no-such-host.invalid"]),
        case("missing sslrootcert", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert={dir}/ca.pem").code(6).names(&["ca.pem", "sslrootcert"]),
        case("missing PGSSLROOTCERT", &["status"]).url("postgres://postgres:Pw-S3cret@127.0.0.1:5432/postgres?sslmode=verify-ca").env("PGSSLROOTCERT", "{dir}/env-ca.pem").code(6).names(&["env-ca.pem", "PGSSLROOTCERT"]),
        case("missing ssl-ca for MySQL", &["status"]).url("mysql://root@127.0.0.1:3306/mysql?ssl-mode=VERIFY_CA&ssl-ca={dir}/ca.pem").code(6).names(&["ca.pem", "ssl-ca"]),
        case("MySQL TLS required, none offered", &["status"]).url("mysql://root@127.0.0.1:3306/mysql?ssl-mode=REQUIRED").code(6).names(&["ssl-mode"]),
        // DATABASE_URL_FILE.
        case("DATABASE_URL_FILE missing", &["status"]).no_url().env("DATABASE_URL_FILE", "{dir}/secret-url").code(2).names(&["DATABASE_URL_FILE", "secret-url"]),
        case("DATABASE_URL_FILE empty", &["upgrade"]).no_url().env("DATABASE_URL_FILE", "{dir}/url").file("url", "\n").names(&["url", "empty"]),
        case("DATABASE_URL_FILE two lines", &["upgrade"]).no_url().env("DATABASE_URL_FILE", "{dir}/url").file("url", "postgres://postgres:Pw-S3cret@h/a\npostgres://b\n").names(&["more than one line"]),
        case("DATABASE_URL_FILE in .env, missing", &["settings", "list"]).no_url().file(".env", "DATABASE_URL_FILE=gone.txt\n").names(&["./.env (line 1)", "gone.txt"]),
        case("DATABASE_URL_FILE is /dev/zero", &["config"]).no_url().env("DATABASE_URL_FILE", "/dev/zero").names(&["/dev/zero", "not a regular file"]),
        case("DATABASE_URL_FILE is a directory", &["status"]).no_url().env("DATABASE_URL_FILE", "{dir}/sub").file("sub/x", "").names(&["sub", "a directory"]),
        case("DATABASE_URL_FILE over 64 KiB", &["upgrade"]).no_url().env("DATABASE_URL_FILE", "{dir}/big").file("big", "postgres://postgres:Pw-S3cret@h/".repeat(3000)).names(&["big", "64 KiB"]),
        case("DATABASE_URL_FILE in .env is a device", &["settings", "list"]).no_url().file(".env", "DATABASE_URL_FILE=/dev/urandom\n").names(&["./.env (line 1)", "/dev/urandom", "a device"]),
        case("DATABASE_URL_FILE empty value", &["status"]).no_url().env("DATABASE_URL_FILE", "").names(&["DATABASE_URL_FILE (environment)", "empty"]),
        case("DATABASE_URL_FILE names a missing database", &["status"]).no_url().env("DATABASE_URL_FILE", "{dir}/url").file("url", "postgres://postgres:Pw-S3cret@127.0.0.1:5432/nosuchdb_f\n").code(6).names(&["nosuchdb_f"]),
        // libpq's variables.
        case("PGSERVICE not defined", &["status"]).no_url().env("PGSERVICE", "nosvc").env("HOME", "{dir}").names(&["nosvc", "PGSERVICE"]),
        case("service= in the URL not defined", &["status"]).url("postgres://?service=nosvc2").env("HOME", "{dir}").names(&["nosvc2", "service="]),
        case("PGPORT not a number", &["status"]).no_url().env("PGHOST", "127.0.0.1").env("PGPORT", "abc").names(&["abc", "PGPORT"]),
        case("PGDATABASE missing database", &["status"]).no_url().env("PGHOST", "127.0.0.1").env("PGUSER", "postgres").env("PGDATABASE", "nosuchdb_pg").env("PGPASSWORD", SECRET).code(6).names(&["nosuchdb_pg"]),
        case("PGPASSWORD with a URL lacking one", &["-v", "status"]).url("postgres://postgres@127.0.0.1:5432/nosuchdb_pw").env("PGPASSWORD", SECRET).code(6).names(&["nosuchdb_pw", "postgres:***@"]),
        case("password from .pgpass", &["--json", "status"]).url("postgres://postgres@127.0.0.1:5432/nosuchdb_pp").env("HOME", "{dir}").file(".pgpass", "*:*:*:postgres:Pw-S3cret\n").mode(".pgpass", 0o600).code(6).names(&["postgres:***@"]),
        case("service file with a password", &["status"]).no_url().env("HOME", "{dir}").env("PGSERVICE", "svc").file(".pg_service.conf", "[svc]\nhost=127.0.0.1\nport=5432\nuser=postgres\ndbname=nosuchdb_svc\npassword=Pw-S3cret\n").code(6).names(&["nosuchdb_svc"]),
        // Configuration files.
        case("--config missing", &["--config", "nope.toml", "status"]).names(&["nope.toml"]),
        case("DBTOOL_CONFIG missing", &["upgrade"]).env("DBTOOL_CONFIG", "gone.toml").names(&["gone.toml"]),
        case("DBTOOL_CONFIG in .env missing", &["users", "list"]).file(".env", "DBTOOL_CONFIG=gone2.toml\n").names(&["gone2.toml", "DBTOOL_CONFIG in ./.env (line 1)"]),
        case("DBTOOL_CONFIG empty", &["status"]).env("DBTOOL_CONFIG", "").names(&["DBTOOL_CONFIG", "empty"]),
        case("unknown key in dbtool.toml", &["upgrade"]).file("dbtool.toml", "colour = \"red\"\n").names(&["`colour`", "dbtool.toml"]),
        case("toml syntax error", &["status"]).file("dbtool.toml", "app = \n").names(&["line 1", "dbtool.toml"]),
        case("toml URL syntax error keeps the password", &["status"]).file("dbtool.toml", "database_url = \"postgres://u:Pw-S3cret@h/d\n").names(&["line 1"]),
        case("toml lock_timeout not a number", &["stamp", "head"]).file("dbtool.toml", "lock_timeout = \"soon\"\n").names(&["lock_timeout"]),
        case("toml wait not a boolean", &["status"]).file("dbtool.toml", "wait = \"maybe\"\n").names(&["wait", "maybe"]),
        case("toml app unknown", &["settings", "list"]).file("dbtool.toml", "app = \"blog\"\n").names(&["'blog'", "app"]),
        case("toml schema empty", &["status"]).file("dbtool.toml", "schema = \"\"\n").names(&["schema", "empty"]),
        case("toml is a directory", &["status"]).file("dbtool.toml/x", "").names(&["dbtool.toml"]),
        // The environment and .env name the variable and its source.
        case("DBTOOL_LOCK_TIMEOUT=abc in env", &["upgrade"]).env("DBTOOL_LOCK_TIMEOUT", "abc").names(&["DBTOOL_LOCK_TIMEOUT (environment)", "'abc'"]),
        case("DBTOOL_LOCK_TIMEOUT=abc in .env", &["upgrade"]).file(".env", "A=1\nDBTOOL_LOCK_TIMEOUT=abc\n").names(&["DBTOOL_LOCK_TIMEOUT in ./.env (line 2)"]),
        case("DBTOOL_WAIT=maybe in env", &["status"]).env("DBTOOL_WAIT", "maybe").names(&["DBTOOL_WAIT (environment)", "maybe"]),
        case("DBTOOL_WAIT=maybe in .env", &["status"]).file(".env", "DBTOOL_WAIT=maybe\n").names(&["DBTOOL_WAIT in ./.env"]),
        case("DBTOOL_WAIT_TIMEOUT negative", &["status"]).env("DBTOOL_WAIT_TIMEOUT", "-1").names(&["DBTOOL_WAIT_TIMEOUT"]),
        case("DBTOOL_APP unknown in env", &["status"]).env("DBTOOL_APP", "blog").names(&["DBTOOL_APP (environment)", "blog"]),
        case("DBTOOL_APP unknown in .env", &["users", "list"]).file(".env", "DBTOOL_APP=blog\n").names(&["DBTOOL_APP in ./.env"]),
        case("DBTOOL_SCHEMA empty", &["status"]).env("DBTOOL_SCHEMA", "").names(&["DBTOOL_SCHEMA", "empty"]),
        case("DBTOOL_SCHEMA too long", &["upgrade"]).env("DBTOOL_SCHEMA", &"s".repeat(64)).names(&["DBTOOL_SCHEMA", "63"]),
        case("--schema too long", &["--schema", &"s".repeat(64), "status"]).names(&["--schema", "63"]),
        case("unterminated quote in .env", &["status"]).file(".env", "DATABASE_URL=\"postgres://u:Pw-S3cret@h/d\n").names(&["line 1", "DATABASE_URL", "quote"]),
        case("unterminated ${ for dbtool's key", &["status"]).file(".env", "OTHER=${UNDEFINED\nDBTOOL_APP=${NOPE\n").names(&["line 2", "DBTOOL_APP"]),
        case("other tools' garbage, then a bad value", &["status"]).file(".env", "OTHER=${UNDEFINED\nBROKEN='x\nDBTOOL_LOCK_TIMEOUT=soon\n").names(&["DBTOOL_LOCK_TIMEOUT in ./.env (line 3)"]),
        case("last definition wins (bad)", &["status"]).file(".env", "DBTOOL_LOCK_TIMEOUT=10\nDBTOOL_LOCK_TIMEOUT=later\n").names(&["line 2", "later"]),
        case(".env is a directory", &["status"]).file(".env/x", "").names(&["./.env"]),
        // The command line (clap): one line, too.
        case("--lock-timeout abc", &["--lock-timeout", "abc", "upgrade"]).names(&["--lock-timeout", "abc"]),
        case("--wait-timeout x", &["--wait-timeout", "x", "status"]).names(&["--wait-timeout"]),
        // Durations beyond a day are refused, never overflow the clock (edges #8), in words (#22).
        case("--wait-timeout u64::MAX, --json", &["--json", "--wait", "--wait-timeout", "18446744073709551615", "status"]).names(&["--wait-timeout", "'18446744073709551615'", "out of range"]),
        case("--wait-timeout i64::MAX", &["--wait", "--wait-timeout", "9223372036854775807", "status"]).names(&["'9223372036854775807'", "at most 86400"]),
        case("DBTOOL_WAIT_TIMEOUT huge", &["--wait", "status"]).env("DBTOOL_WAIT_TIMEOUT", "10000000000000000000").names(&["DBTOOL_WAIT_TIMEOUT (environment)", "out of range"]),
        case("--lock-timeout u64::MAX", &["--lock-timeout", "18446744073709551615", "upgrade"]).names(&["--lock-timeout", "out of range"]),
        case("DBTOOL_LOCK_TIMEOUT huge in .env", &["upgrade"]).file(".env", "DBTOOL_LOCK_TIMEOUT=99999999999\n").names(&["DBTOOL_LOCK_TIMEOUT in ./.env (line 1)", "out of range"]),
        case("--statement-timeout u64::MAX echoed as typed", &["--statement-timeout", "18446744073709551615", "upgrade"]).names(&["'18446744073709551615'", "out of range"]),
        case("--ddl-lock-timeout 1e300", &["--ddl-lock-timeout", "1e300", "upgrade"]).names(&["'1e300'", "out of range"]),
        case("DBTOOL_DDL_LOCK_TIMEOUT huge", &["upgrade"]).env("DBTOOL_DDL_LOCK_TIMEOUT", "86401").names(&["DBTOOL_DDL_LOCK_TIMEOUT", "out of range"]),
        case("toml wait_timeout beyond 64 bits", &["status"]).file("dbtool.toml", "wait_timeout = 99999999999999999999\n").names(&["too large"]),
        case("toml lock_timeout negative", &["upgrade"]).file("dbtool.toml", "lock_timeout = -1\n").names(&["lock_timeout", "'-1'"]),
        case("toml statement_timeout huge", &["upgrade"]).file("dbtool.toml", "statement_timeout = 1e300\n").names(&["statement_timeout", "out of range"]),
        case("toml ddl_retries fraction", &["upgrade"]).file("dbtool.toml", "ddl_retries = 1.5\n").names(&["ddl_retries", "'1.5'"]),
        case("--wait-timeout 0.5", &["--wait-timeout", "0.5", "status"]).names(&["'0.5'", "whole seconds"]),
        case("--older-than -1d", &["--app", "neurachar", "login-codes", "purge", "--older-than", "-1d"]).names(&["'-1d'", "negative"]),
        case("--older-than beyond 64 bits", &["--app", "neurachar", "login-codes", "purge", "--older-than", "99999999999999999999d"]).names(&["too large"]),
        case("--app blog", &["--app", "blog", "status"]).names(&["blog", "avatar, neurachar"]),
        case("unknown flag", &["status", "--frobnicate"]).names(&["--frobnicate"]),
        case("unknown subcommand", &["frobnicate"]).names(&["frobnicate"]),
        case("--json with an unknown flag", &["--json", "history", "--bogus"]).names(&["--bogus"]),
        case("-q and -v", &["-q", "-v", "status"]).names(&["--quiet", "--verbose"]),
        case("stamp without target", &["stamp"]).names(&["<TARGET>"]),
        case("completions for an unknown shell", &["completions", "tcsh"]).names(&["tcsh"]),
        case("man --out-dir missing", &["man", "--out-dir", "{dir}/nodir"]).names(&["nodir"]),
        case("config with an argument", &["config", "extra"]).names(&["extra"]),
        case("--dialect unknown", &["upgrade", "--sql", "base:head", "--dialect", "oracle"]).names(&["oracle"]),
        case("characters publish not a UUID", &["--app", "neurachar", "characters", "publish", "abc"]).names(&["'abc' is not a UUID"]),
        case("chats delete not a UUID", &["--app", "neurachar", "chats", "delete", "12"]).names(&["'12' is not a UUID"]),
        case("man --out-dir a file", &["man", "--out-dir", "{dir}/afile"]).file("afile", "x").names(&["afile", "is a file"]),
        case("empty DBTOOL_DIRECT_URL in env", &["status"]).env("DBTOOL_DIRECT_URL", "").names(&["DBTOOL_DIRECT_URL (environment)", "empty"]),
        case("empty DBTOOL_DIRECT_URL in .env", &["upgrade"]).file(".env", "DBTOOL_DIRECT_URL=\n").names(&["DBTOOL_DIRECT_URL in ./.env (line 1)"]),
        case("empty direct_url in dbtool.toml", &["upgrade"]).file("dbtool.toml", "direct_url = \"\"\n").names(&["direct_url in ./dbtool.toml"]),
        case("login-codes --older-than abc", &["--app", "neurachar", "login-codes", "purge", "--older-than", "abc"]).names(&["abc"]),
        case("log --limit 0", &["log", "--limit", "0"]).names(&["--limit", "0"]),
        case("log --prune abc", &["log", "--prune", "abc"]).names(&["abc", "RFC 3339"]),
        case("log --prune 0d", &["log", "--prune", "0d"]).names(&["0d", "zero"]),
        case("log --yes without --prune", &["log", "--yes"]).names(&["--prune"]),
        case("users add --cost 3", &["users", "add", "c@example.com", "--cost", "3", "--password-stdin"]).names(&["--cost", "3"]),
        case("users add --cost 32", &["users", "add", "c@example.com", "--cost", "32", "--password-stdin"]).names(&["32"]),
        case("users add bad email", &["users", "add", "not-an-email", "--password-stdin"]).names(&["not-an-email"]),
        case("settings get empty key", &["settings", "get", ""]).names(&["empty"]),
        case("settings set without value", &["settings", "set", "bio_prompt_x"]).names(&["<VALUE>"]),
        case("offline SQL with an unknown target", &["upgrade", "--sql", "base:nosuch"]).names(&["nosuch"]),
        case("offline SQL with an unknown origin", &["downgrade", "--sql", "nosuch:base"]).names(&["nosuch"]),
    ]
}

/// An Avatar database at head with a setting and an account.
async fn avatar_database(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "bio_prompt_x", "Write a short bio."])
        .ok();
    db.run_stdin(
        &[
            "users",
            "add",
            "ann@example.com",
            "--cost",
            "4",
            "--password-stdin",
        ],
        "long-enough-pw\n",
    )
    .ok();
    let fx = Fixture::new(&db);
    let mut cases = configuration_cases();
    cases.extend(vec![
        // Targets.
        case("upgrade unknown target", &["upgrade", "nosuchmigration"]).names(&["nosuchmigration"]),
        case("upgrade bare number", &["upgrade", "1"]).names(&["'1'"]),
        case("upgrade 0", &["upgrade", "0"]).names(&["'0'", "not zero"]),
        case("upgrade +huge", &["upgrade", "+99999999999999999999"])
            .names(&["'+99999999999999999999'", "out of range"]),
        case("upgrade out of range", &["upgrade", "+99"]).names(&["+99"]),
        case("upgrade backwards", &["upgrade", "-1"]).names(&["-1", "downgrade"]),
        case("downgrade past head", &["downgrade", "+1"]).names(&["+1", "out of range"]),
        case("downgrade unknown", &["downgrade", "nosuch"]).names(&["nosuch"]),
        case("downgrade ambiguous prefix", &["downgrade", "m2026"]).names(&["m2026"]),
        case("stamp unknown", &["stamp", "deadbeef0000"]).names(&["deadbeef0000"]),
        case("stamp out of range", &["stamp", "+5"]).names(&["+5"]),
        case(
            "dry run unknown target",
            &["upgrade", "nosuch", "--dry-run"],
        )
        .names(&["nosuch"]),
        case("downgrade with data, not confirmed", &["downgrade", "base"])
            .code(7)
            .names(&["--yes"]),
        // Wrong app.
        case(
            "neurachar upgrade on avatar",
            &["--app", "neurachar", "upgrade"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar dry run on avatar",
            &["--app", "neurachar", "upgrade", "--dry-run"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar downgrade on avatar",
            &["--app", "neurachar", "downgrade", "--yes"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar stamp on avatar",
            &["--app", "neurachar", "stamp", "head"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar check on avatar",
            &["--app", "neurachar", "check"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar users on avatar",
            &["--app", "neurachar", "users", "list"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar characters on avatar",
            &["--app", "neurachar", "characters", "list"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar chats on avatar",
            &["--app", "neurachar", "chats", "delete", CHAT, "--yes"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "neurachar login codes on avatar",
            &["--app", "neurachar", "login-codes", "purge"],
        )
        .code(11)
        .names(&["--app avatar"]),
        case(
            "settings for neurachar",
            &["--app", "neurachar", "settings", "list"],
        )
        .names(&["NeuraChar has no settings"]),
        // Without --app the database's app decides: these tables are not Avatar's (11).
        case("characters for avatar", &["characters", "list"])
            .code(11)
            .names(&["neurachar"]),
        case("chats for avatar", &["chats", "delete", CHAT, "--yes"])
            .code(11)
            .names(&["neurachar"]),
        case("login codes for avatar", &["login-codes", "purge"])
            .code(11)
            .names(&["neurachar"]),
        // Settings.
        case(
            "settings get missing key",
            &["settings", "get", "nosuch_key"],
        )
        .code(8)
        .names(&["nosuch_key"]),
        case(
            "settings get missing key --json",
            &["--json", "settings", "get", "nosuch_key"],
        )
        .code(8)
        .names(&["nosuch_key"]),
        case(
            "settings unset missing key",
            &["settings", "unset", "nosuch_key", "--yes"],
        )
        .code(8)
        .names(&["nosuch_key"]),
        case(
            "settings unset unconfirmed",
            &["settings", "unset", "bio_prompt_x"],
        )
        .code(7)
        .names(&["--yes"]),
        case(
            "settings set from a missing file",
            &[
                "settings",
                "set",
                "bio_prompt_x",
                "--file",
                "{dir}/nope.txt",
            ],
        )
        .names(&["nope.txt"]),
        // MariaDB's default max_allowed_packet is 16 MiB (edges #12).
        case(
            "settings set beyond max_allowed_packet",
            &["settings", "set", "bio_prompt_x", "--file", "{dir}/v17m"],
        )
        .file("v17m", "a".repeat(17_000_000))
        .names(&["max_allowed_packet", "shorten"])
        .only(&[MY]),
        case(
            "settings import beyond max_allowed_packet",
            &["settings", "import", "{dir}/big.json"],
        )
        .file(
            "big.json",
            format!(
                "{{\"settings\": [{{\"key\": \"bio_prompt_x\", \"value\": \"{}\"}}]}}",
                "b".repeat(17_000_000)
            ),
        )
        .names(&["'bio_prompt_x'", "max_allowed_packet"])
        .only(&[MY]),
        case(
            "settings set from a non-UTF-8 file",
            &["settings", "set", "bio_prompt_x", "--file", "{dir}/bin.txt"],
        )
        .file("bin.txt", [0xff, 0xfe, 0x00, 0x41])
        .names(&["bin.txt", "UTF-8"]),
        case(
            "settings import missing file",
            &["settings", "import", "{dir}/nope.json"],
        )
        .names(&["nope.json"]),
        case(
            "settings import bad JSON",
            &["settings", "import", "{dir}/bad.json"],
        )
        .file("bad.json", "{bad")
        .names(&["bad.json"]),
        case(
            "settings import wrong shape",
            &["settings", "import", "{dir}/s.json"],
        )
        .file("s.json", "{\"prompts\": []}")
        .names(&["s.json"]),
        case(
            "settings import from stdin, bad",
            &["settings", "import", "-"],
        )
        .stdin("[1, 2")
        .names(&[]),
        case(
            "settings edit without an editor",
            &["settings", "edit", "bio_prompt_x"],
        )
        .env("EDITOR", "")
        .env("VISUAL", "")
        .names(&["EDITOR"]),
        // Users.
        case(
            "users add existing",
            &[
                "users",
                "add",
                "ann@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .names(&["ann@example.com"]),
        case(
            "users add short password",
            &["users", "add", "bob@example.com", "--password-stdin"],
        )
        .stdin("short\n")
        .names(&["too short"]),
        case(
            "users add empty stdin",
            &["users", "add", "bob@example.com", "--password-stdin"],
        )
        .names(&[]),
        case(
            "users passwd unknown",
            &[
                "users",
                "passwd",
                "nobody@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .code(8)
        .names(&["nobody@example.com"]),
        case(
            "users check-password unknown",
            &[
                "users",
                "check-password",
                "nobody@example.com",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .code(8)
        .names(&["nobody@example.com"]),
        case(
            "users activate unknown",
            &["users", "activate", "nobody@example.com"],
        )
        .code(8)
        .names(&["nobody@example.com"]),
        case(
            "users deactivate unknown",
            &["users", "deactivate", "nobody@example.com"],
        )
        .code(8)
        .names(&["nobody@example.com"]),
        // Documentation.
        case(
            "NUL byte in a value",
            &["settings", "set", "bio_prompt_x", "--file", "{dir}/nul.txt"],
        )
        .file("nul.txt", "before\0after")
        .names(&["NUL"])
        .only(&[PG]),
        case(
            "docs into a missing directory",
            &["docs", "--output", "{dir}/nodir/schema.md"],
        )
        .names(&["nodir"]),
        // PostgreSQL schemas that do not exist: nothing to read, nothing created.
        case("check --schema missing", &["--schema", "nosuch", "check"])
            .code(6)
            .names(&["nosuch", "does not exist"])
            .only(&[PG]),
        case("docs --schema missing", &["--schema", "nosuch", "docs"])
            .code(6)
            .names(&["nosuch"])
            .only(&[PG]),
        case(
            "settings --schema missing",
            &["--schema", "nosuch", "settings", "list"],
        )
        .code(6)
        .names(&["nosuch"])
        .only(&[PG]),
        case(
            "users --schema missing",
            &["--schema", "nosuch", "users", "activate", "ann@example.com"],
        )
        .code(6)
        .names(&["nosuch"])
        .only(&[PG]),
    ]);
    run_cases(&fx, &cases).await;
}

/// Now in whole seconds, which every backend keeps exactly.
fn now() -> chrono::NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(0)
}

async fn seed_neurachar(c: &DatabaseConnection) {
    let u = Uuid::new_v4();
    user::ActiveModel {
        id: Set(u),
        email: Set("nc@example.com".into()),
        username: Set(None),
        avatar_url: Set(None),
        created_at: Set(now()),
        last_login_at: Set(None),
        provider: Set("email_qq".into()),
    }
    .insert(c)
    .await
    .unwrap();
    let ch = Uuid::parse_str(CHARACTER).unwrap();
    character::ActiveModel {
        id: Set(ch),
        name: Set("Ada".into()),
        system_prompt: Set("You are Ada.".into()),
        greeting_message: Set(None),
        avatar_url: Set(None),
        tags: Set(None),
        is_public: Set(false),
        creator_id: Set(Some(u)),
    }
    .insert(c)
    .await
    .unwrap();
    let chat_id = Uuid::parse_str(CHAT).unwrap();
    chat::ActiveModel {
        chat_id: Set(chat_id),
        user_id: Set(u),
        character_id: Set(ch),
        created_at: Set(now()),
    }
    .insert(c)
    .await
    .unwrap();
    message::ActiveModel {
        id: Set(Uuid::new_v4()),
        chat_id: Set(chat_id),
        role: Set("user".into()),
        content: Set("hello".into()),
        created_at: Set(now()),
    }
    .insert(c)
    .await
    .unwrap();
    let old = now() - chrono::Duration::days(30);
    email_login_code::ActiveModel {
        email: Set("nc@example.com".into()),
        code_hash: Set("hash".into()),
        created_at: Set(old),
        expires_at: Set(old),
        used_at: Set(None),
        ip_address: Set(None),
        ..Default::default()
    }
    .insert(c)
    .await
    .unwrap();
}

/// A NeuraChar database at head with a user, a character, a chat and a spent login code.
async fn neurachar_database(db: TestDb) {
    db.run(&["--app", "neurachar", "upgrade"]).ok();
    let c = db.connect().await;
    seed_neurachar(&c).await;
    c.close().await.ok();
    let fx = Fixture::new(&db);
    let nc = |name: &str, args: &[&str]| {
        let mut a = vec!["--app", "neurachar"];
        a.extend_from_slice(args);
        case(name, &a)
    };
    let cases = vec![
        // The Avatar app on a NeuraChar database.
        case(
            "avatar upgrade on neurachar",
            &["--app", "avatar", "upgrade"],
        )
        .code(11)
        .names(&["--app neurachar"]),
        case(
            "avatar downgrade on neurachar",
            &["--app", "avatar", "downgrade", "--yes"],
        )
        .code(11)
        .names(&["--app neurachar"]),
        case(
            "avatar stamp on neurachar",
            &["--app", "avatar", "stamp", "base"],
        )
        .code(11)
        .names(&["--app neurachar"]),
        case("avatar check on neurachar", &["--app", "avatar", "check"])
            .code(11)
            .names(&["--app neurachar"]),
        case("settings on neurachar", &["settings", "list"])
            .code(11)
            .names(&["--app neurachar"]),
        // With --app avatar the advice is not `--app neurachar settings ...`, which cannot
        // work: NeuraChar has no settings (edges #22).
        case(
            "--app avatar settings get on neurachar",
            &["--app", "avatar", "settings", "get", "bio_prompt_x"],
        )
        .code(11)
        .names(&["belongs to neurachar, which has no settings table"]),
        case(
            "--app avatar settings set on neurachar",
            &["--app", "avatar", "settings", "set", "bio_prompt_x", "v"],
        )
        .code(11)
        .names(&["which has no settings table"]),
        case(
            "settings set on neurachar",
            &["settings", "set", "bio_prompt_x", "v"],
        )
        .code(11)
        .names(&["--app neurachar"]),
        case(
            "avatar users on neurachar",
            &[
                "users",
                "add",
                "x@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .code(11)
        .names(&["--app neurachar"]),
        case(
            "neurachar users add",
            &[
                "--app",
                "neurachar",
                "users",
                "add",
                "x@example.com",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .names(&["Avatar"]),
        // NeuraChar rows that do not exist, and confirmations.
        nc(
            "publish unknown character",
            &["characters", "publish", NO_ID],
        )
        .code(8)
        .names(&[NO_ID]),
        nc(
            "unpublish unknown character",
            &["characters", "unpublish", NO_ID],
        )
        .code(8)
        .names(&[NO_ID]),
        nc("delete unknown chat", &["chats", "delete", NO_ID, "--yes"])
            .code(8)
            .names(&[NO_ID]),
        nc("delete chat unconfirmed", &["chats", "delete", CHAT])
            .code(7)
            .names(&["--yes"]),
        nc(
            "delete chat unconfirmed --json",
            &["--json", "chats", "delete", CHAT],
        )
        .code(7)
        .names(&["--yes"]),
        nc(
            "purge with a bad age",
            &["login-codes", "purge", "--older-than", "7x"],
        )
        .names(&["7x"]),
        nc(
            "purge with a zero unit",
            &["login-codes", "purge", "--older-than", "d"],
        )
        .names(&["'d'"]),
        nc(
            "upgrade to an unknown target",
            &["upgrade", "m20251212_999999"],
        )
        .names(&["m20251212_999999"]),
        nc("downgrade unconfirmed with data", &["downgrade", "base"])
            .code(7)
            .names(&["--yes"]),
        nc("stamp an avatar revision", &["stamp", "25698f3f906f"]).names(&["25698f3f906f"]),
        nc("mode=ro write", &["characters", "publish", CHARACTER])
            .url("sqlite://{file}?mode=ro")
            .code(17)
            .names(&["mode=ro"])
            .only(&[LITE]),
        nc("mode=ro delete", &["chats", "delete", CHAT, "--yes"])
            .url("sqlite://{file}?mode=ro")
            .code(17)
            .names(&["mode=ro"])
            .only(&[LITE]),
        nc("mode=ro purge", &["login-codes", "purge"])
            .url("sqlite://{file}?mode=ro")
            .code(17)
            .names(&["mode=ro"])
            .only(&[LITE]),
        nc("check --schema missing", &["--schema", "nosuch", "check"])
            .code(6)
            .names(&["nosuch"])
            .only(&[PG]),
        nc(
            "characters --schema missing",
            &["--schema", "nosuch", "characters", "list"],
        )
        .code(6)
        .names(&["nosuch"])
        .only(&[PG]),
    ];
    run_cases(&fx, &cases).await;
}

/// Nothing migrated (SQLite: no file at all): administration commands say which upgrade to
/// run (3), or that there is no database file (6).
async fn empty_database(db: TestDb) {
    let fx = Fixture::new(&db);
    let code = if db.backend == LITE { 6 } else { 3 };
    let hint = "upgrade";
    let cases = vec![
        case(
            "settings get, unmigrated",
            &["settings", "get", "bio_prompt_x"],
        )
        .code(code)
        .names(&[hint]),
        case(
            "settings set, unmigrated",
            &["settings", "set", "bio_prompt_x", "v"],
        )
        .code(code)
        .names(&[hint]),
        case("settings list, unmigrated", &["settings", "list"])
            .code(code)
            .names(&[hint]),
        case("settings export, unmigrated", &["settings", "export"])
            .code(code)
            .names(&[hint]),
        case(
            "settings unset, unmigrated",
            &["settings", "unset", "k", "--yes"],
        )
        .code(code)
        .names(&[hint]),
        case("users list, unmigrated", &["users", "list"])
            .code(code)
            .names(&[hint]),
        case(
            "users add, unmigrated",
            &[
                "users",
                "add",
                "x@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .code(code)
        .names(&[hint]),
        case(
            "neurachar users, unmigrated",
            &["--app", "neurachar", "users", "list"],
        )
        .code(code)
        .names(&["--app neurachar upgrade"]),
        case(
            "characters, unmigrated",
            &["--app", "neurachar", "characters", "list"],
        )
        .code(code)
        .names(&["--app neurachar upgrade"]),
        case(
            "chats, unmigrated",
            &["--app", "neurachar", "chats", "delete", NO_ID, "--yes"],
        )
        .code(code)
        .names(&["--app neurachar upgrade"]),
        case(
            "login codes, unmigrated",
            &["--app", "neurachar", "login-codes", "purge"],
        )
        .code(code)
        .names(&["--app neurachar upgrade"]),
        case(
            "upgrade to an unknown target, unmigrated",
            &["upgrade", "nosuch"],
        )
        .names(&["nosuch"])
        .only(&[PG, MY]),
        case("downgrade to +1, unmigrated", &["downgrade", "+1"])
            .names(&["+1"])
            .only(&[PG, MY]),
        case("stamp -1 at base", &["stamp", "-1"])
            .names(&["-1"])
            .only(&[PG, MY]),
        case(
            "dry run to an unknown target, no file",
            &["upgrade", "nosuch", "--dry-run"],
        )
        .names(&["nosuch"]),
        case("upgrade mode=ro, no file", &["upgrade"])
            .url("sqlite://{file}?mode=ro")
            .code(17)
            .names(&["mode=ro"])
            .only(&[LITE]),
        case(
            "check --schema missing, unmigrated",
            &["--schema", "nosuch", "check"],
        )
        .code(6)
        .names(&["nosuch"])
        .only(&[PG]),
    ];
    run_cases(&fx, &cases).await;
}

/// `seaql_migrations` exists with another shape (another tool's table of that name): every
/// command that reads the migration state names it, in one line, and changes nothing.
async fn foreign_tracking_table(db: TestDb) {
    let int = if db.backend == MY { "INT" } else { "INTEGER" };
    db.exec(&format!(
        "CREATE TABLE seaql_migrations (version {int} PRIMARY KEY, applied_at TEXT)"
    ))
    .await;
    db.exec("INSERT INTO seaql_migrations (version, applied_at) VALUES (1, 'yesterday')")
        .await;
    let fx = Fixture::new(&db);
    let names = ["seaql_migrations", "version"];
    let cases = vec![
        case("status", &["status"]).code(1).names(&names),
        case("status --json", &["--json", "status"])
            .code(1)
            .names(&names),
        case("history", &["history"]).code(1).names(&names),
        case("upgrade", &["upgrade"]).code(1).names(&names),
        case("upgrade --dry-run", &["upgrade", "--dry-run"])
            .code(1)
            .names(&names),
        case("downgrade", &["downgrade", "--yes"])
            .code(1)
            .names(&names),
        case("stamp", &["stamp", "head"]).code(1).names(&names),
        case("check", &["check"]).code(1).names(&names),
        case("docs", &["docs"]).code(1).names(&names),
        case("settings get", &["settings", "get", "bio_prompt_x"])
            .code(1)
            .names(&names),
        case("users list", &["users", "list"]).code(1).names(&names),
        case(
            "characters list",
            &["--app", "neurachar", "characters", "list"],
        )
        .code(1)
        .names(&names),
        case(
            "offline SQL from the database",
            &["upgrade", "--sql", "head"],
        )
        .code(1)
        .names(&names),
    ];
    run_cases(&fx, &cases).await;
}

/// A user who may connect but lacks privileges (PostgreSQL: a role with SELECT on the
/// tracking table only; MariaDB: the same, with a password); SQLite: a file without write
/// permission. Exit 22 naming the privilege and object, or 17 for the read-only file.
async fn restricted_access(db: TestDb) {
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "bio_prompt_x", "Write a short bio."])
        .ok();
    let role = format!("{}_ro", &db.name[..db.name.len().min(40)]);
    let _guard = Restricted::create(&db, &role).await;
    let url = match db.backend {
        PG => format!("postgres://{role}:{SECRET}@127.0.0.1:5432/{}", db.name),
        MY => format!("mysql://{role}:{SECRET}@127.0.0.1:3306/{}", db.name),
        LITE => db.url.clone(),
    };
    let fx = Fixture::with_url(&db, url);
    let denied = if db.backend == LITE { 17 } else { 22 };
    let cases = vec![
        case("settings get", &["settings", "get", "bio_prompt_x"])
            .code(22)
            .names(&["SELECT", "settings"])
            .only(&[PG, MY]),
        case(
            "settings get --json",
            &["--json", "settings", "get", "bio_prompt_x"],
        )
        .code(22)
        .names(&["SELECT"])
        .only(&[PG, MY]),
        case("settings list", &["settings", "list"])
            .code(22)
            .names(&["SELECT", "settings"])
            .only(&[PG, MY]),
        case("settings export", &["settings", "export"])
            .code(22)
            .names(&["settings"])
            .only(&[PG, MY]),
        case("settings set", &["settings", "set", "bio_prompt_x", "new"])
            .code(22)
            .names(&["settings"])
            .only(&[PG, MY]),
        case(
            "settings set, read-only file",
            &["settings", "set", "bio_prompt_x", "new"],
        )
        .code(17)
        .names(&["read-only", "r--r--r--"])
        .only(&[LITE]),
        case(
            "stamp --schema missing, no right to create it",
            &["--schema", "nosuch", "stamp", "head"],
        )
        .code(22)
        .names(&["nosuch", "CREATE"])
        .only(&[PG]),
        case(
            "downgrade --schema missing",
            &["--schema", "nosuch", "downgrade", "--yes"],
        )
        .code(6)
        .names(&["nosuch"])
        .only(&[PG]),
        case(
            "settings unset",
            &["settings", "unset", "bio_prompt_x", "--yes"],
        )
        .code(denied)
        .names(&[]),
        case("settings import", &["settings", "import", "s.json"])
            .file(
                "s.json",
                "{\"settings\": [{\"key\": \"bio_prompt_x\", \"value\": \"v\"}]}",
            )
            .code(denied)
            .names(&[]),
        case("users list", &["users", "list"])
            .code(22)
            .names(&["users"])
            .only(&[PG, MY]),
        case(
            "users add",
            &[
                "users",
                "add",
                "x@example.com",
                "--cost",
                "4",
                "--password-stdin",
            ],
        )
        .stdin("long-enough-pw\n")
        .code(denied)
        .names(&[]),
        case("check without CREATE DATABASE", &["check"])
            .code(22)
            .names(&[])
            .only(&[PG, MY]),
        case("upgrade read-only file", &["upgrade"])
            .code(17)
            .names(&["read-only", "r--r--r--"])
            .only(&[LITE]),
        case("stamp read-only file", &["stamp", "base"])
            .code(17)
            .names(&["read-only"])
            .only(&[LITE]),
        case("downgrade read-only file", &["downgrade", "--yes"])
            .code(17)
            .names(&["read-only"])
            .only(&[LITE]),
        case("stamp without privileges", &["stamp", "base"])
            .code(22)
            .names(&[])
            .only(&[PG]),
        // The same missing privilege met by a migration step has the same code.
        case("downgrade without privileges", &["downgrade", "--yes"])
            .code(22)
            .names(&["GRANT"])
            .only(&[PG, MY]),
    ];
    run_cases(&fx, &cases).await;
}

/// Takes rights away for the test and gives them back (or drops the user) afterwards.
struct Restricted {
    backend: Backend,
    role: String,
    /// PostgreSQL: the role, dropped with its grants.
    _pg: Option<PgRole>,
    file: Option<std::path::PathBuf>,
}

impl Restricted {
    async fn create(db: &TestDb, role: &str) -> Restricted {
        let mut file = None;
        let mut pg = None;
        match db.backend {
            PG => {
                pg = Some(PgRole::create(db, role, &format!("PASSWORD '{SECRET}'")));
                db.exec(&format!("GRANT SELECT ON seaql_migrations TO {role}"))
                    .await;
            }
            MY => {
                mariadb(&format!("DROP USER IF EXISTS '{role}'@'%'"));
                mariadb(&format!(
                    "CREATE USER '{role}'@'%' IDENTIFIED BY '{SECRET}'"
                ));
                mariadb(&format!(
                    "GRANT SELECT ON {}.seaql_migrations TO '{role}'@'%'",
                    db.name
                ));
            }
            LITE => {
                use std::os::unix::fs::PermissionsExt;
                let f = db.dir().join("test.db");
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).unwrap();
                file = Some(f);
            }
        }
        Restricted {
            backend: db.backend,
            role: role.into(),
            _pg: pg,
            file,
        }
    }
}

impl Drop for Restricted {
    fn drop(&mut self) {
        match self.backend {
            PG => {}
            MY => mariadb(&format!("DROP USER IF EXISTS '{}'@'%'", self.role)),
            LITE => {
                use std::os::unix::fs::PermissionsExt;
                if let Some(f) = &self.file {
                    let _ = std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644));
                }
            }
        }
    }
}

fn mariadb(sql: &str) {
    let out = std::process::Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-uroot", "-e", sql])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A SQLite database on a small tmpfs that is full: the write fails with one line that says
/// so, and the transaction leaves the database as it was. (Mounting needs root, as the rest of
/// `tests/run` does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_sqlite() {
    let db = TestDb::new(LITE, "disk_full");
    let _mount = Tmpfs::mount(db.dir(), "384k");
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "bio_prompt_x", "Write a short bio."])
        .ok();
    // Fill what is left, so that any further page fails to be written.
    let filler = db.dir().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![b'x'; 4096];
    use std::io::Write;
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let big = "a prompt that does not fit. ".repeat(40_000);
    let cases = vec![
        case(
            "settings set on a full disk",
            &["settings", "set", "bio_prompt_x", "--file", "{dir}/big.txt"],
        )
        .file("big.txt", &big)
        .code(1)
        .names(&["saving setting 'bio_prompt_x'", "full", "test.db"]),
        case(
            "settings import on a full disk",
            &["settings", "import", "{dir}/s.json", "--create"],
        )
        .file(
            "s.json",
            format!("{{\"settings\": [{{\"key\": \"bio_prompt_y\", \"value\": \"{big}\"}}]}}"),
        )
        .code(1)
        .names(&["full"]),
    ];
    run_cases(&Fixture::new(&db), &cases).await;
}

/// A tmpfs mounted over a directory for the guard's lifetime.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("the mount command");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (this test needs root, as tests/run has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// A SQLite file another process holds locked (`BEGIN EXCLUSIVE`): a write waits
/// `--lock-timeout`, not sqlx's fixed 5 s, then exits 4 in one line naming the file and the
/// option, without server wording ("the server's log"), and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(LITE, "sqlite_locked");
    db.run(&["upgrade"]).ok();
    db.run(&["settings", "set", "bio_prompt_x", "before"]).ok();
    let holder = db.connect().await;
    // One connection of the pool keeps the transaction: hold it in a transaction object.
    let txn = sea_orm::TransactionTrait::begin_with_options(
        &holder,
        sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
            ..Default::default()
        },
    )
    .await
    .expect("BEGIN EXCLUSIVE");
    txn.execute_unprepared("UPDATE settings SET value = value")
        .await
        .expect("take the write lock");
    for args in [
        &[
            "--lock-timeout",
            "2",
            "settings",
            "set",
            "bio_prompt_x",
            "after",
        ][..],
        &["--lock-timeout", "2", "upgrade", "base"][..],
        &["--lock-timeout", "1", "--json", "downgrade", "--yes"][..],
    ] {
        let started = std::time::Instant::now();
        let r = db.run(args);
        let took = started.elapsed().as_secs_f64();
        let limit: f64 = args[1].parse().unwrap();
        r.expect_code(4);
        let line = if args.contains(&"--json") {
            r.json()["error"]["message"].as_str().unwrap().to_owned()
        } else {
            r.error_line().to_owned()
        };
        assert!(
            line.contains("test.db") && line.contains("--lock-timeout") && !line.contains("server"),
            "{args:?}: {line}"
        );
        assert!(
            took >= limit - 0.2 && took < limit + 4.0,
            "{args:?} took {took:.1}s with --lock-timeout {limit}"
        );
    }
    txn.rollback().await.unwrap();
    holder.close().await.ok();
    assert_eq!(
        db.strings("SELECT value FROM settings WHERE key = 'bio_prompt_x'")
            .await,
        ["before"]
    );
}
