//! The `lockout` command line: clap structures (plain strings and flags, their doc comments are
//! the `--help`), converted once into validated values, then one function per command family.
//! Exit status: 0 when the command did its job (whatever the verdict), 1 when it failed,
//! 2 for bad usage.

mod devices;
mod events;
mod login;
mod logs;
mod ping;
mod records;
mod remote;
mod serve;
mod source;

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::attempt::parse_ip;
use crate::config::{Config, Overrides};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::redis::{RedisEndpoint, RedisOptions, RedisStore};
use remote::Remote;
use source::Records;

/// Brute-force login protection with Django Axes' semantics, its state in Redis.
#[derive(Debug, Parser)]
#[command(name = "lockout", version)]
pub struct Cli {
    /// Redis to use (none: `serve` keeps its state in the process)
    // The environment's value is not shown in --help: a Redis URL may hold a password.
    #[arg(
        long,
        global = true,
        env = "LOCKOUT_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    redis_url: Option<String>,
    /// Seed nodes of a Redis Cluster, instead of --redis-url
    #[arg(
        long,
        global = true,
        env = "LOCKOUT_REDIS_CLUSTER",
        hide_env_values = true,
        value_name = "URL,URL,...",
        value_delimiter = ','
    )]
    redis_cluster: Vec<String>,
    /// Prefix of every key lockout writes [default: lockout]
    #[arg(long, global = true, env = "LOCKOUT_PREFIX", value_name = "P")]
    prefix: Option<String>,
    /// Work on the records of this scope (a site that sends `"scope"` with its requests)
    /// instead of the unscoped ones
    #[arg(long, global = true, value_name = "NAME")]
    scope: Option<String>,
    /// A running `lockout serve` (http://host:port) whose admin API the operator commands go
    /// through, instead of Redis; authenticates with admin.token, or admin.username and
    /// admin.password
    #[arg(long, global = true, env = "LOCKOUT_SERVER", value_name = "URL")]
    server: Option<String>,
    /// TOML configuration file
    #[arg(long, global = true, env = "LOCKOUT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON, in the HTTP API's shapes
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (JSON API, health, metrics)
    #[command(after_long_help = serve::SETTINGS_HELP)]
    Serve(ServeArgs),
    /// Connect to Redis and say what was reached and whether everything lockout does there
    /// works (scripts, commands, the reset channel): exit status 0 only if so
    Ping,
    #[command(flatten)]
    Store(StoreCommand),
}

/// The commands that talk to Redis directly.
#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Is this attempt locked out? (A locked attempt is recorded, as in Axes.)
    Check(AttemptArgs),
    /// Record a failed login
    Fail(AttemptArgs),
    /// Record a successful login
    Succeed(SuccessArgs),
    /// List attempt records
    List(ListArgs),
    /// Delete attempt records and locks: by IP, by username, by the pair when both are given
    Reset(ResetArgs),
    /// Print the access log, newest first
    Logs(LogsArgs),
    /// Delete access-log entries at least AGE old
    ResetLogs(ResetLogsArgs),
    /// Axes: delete every attempt record
    #[command(name = "axes_reset")]
    AxesReset,
    /// Axes: delete the attempt records of these IPs
    #[command(name = "axes_reset_ip")]
    AxesResetIp {
        #[arg(required = true, value_parser = ip_arg)]
        ip: Vec<IpAddr>,
    },
    /// Axes: delete the attempt records of these usernames
    #[command(name = "axes_reset_username")]
    AxesResetUsername {
        #[arg(required = true, value_parser = username_arg)]
        username: Vec<String>,
    },
    /// Axes: delete the attempt records of this IP and username together
    #[command(name = "axes_reset_ip_username")]
    AxesResetIpUsername {
        #[arg(value_parser = ip_arg)]
        ip: IpAddr,
        #[arg(value_parser = username_arg)]
        username: String,
    },
    /// Axes: delete access-log entries at least DAYS days old (default 30)
    #[command(name = "axes_reset_logs")]
    AxesResetLogs {
        #[arg(value_name = "DAYS", conflicts_with = "age")]
        days: Option<u64>,
        /// Age in days
        #[arg(long, value_name = "DAYS")]
        age: Option<u64>,
    },
    /// Axes-style listing: IP, username and failures of every attempt record
    #[command(name = "axes_list_attempts")]
    AxesListAttempts,
    /// Print the events (lockouts started, resets), oldest first
    Events(EventsArgs),
    /// Device tokens (`[devices]`): revoke a username's
    #[command(subcommand)]
    Devices(DevicesCommand),
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Void every device token of these usernames issued until now: their devices' next
    /// attempts count as any stranger's (a reset of the username does it too)
    Revoke {
        /// A username whose device tokens go (repeatable)
        #[arg(long, required = true, value_parser = username_arg)]
        username: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only the events after this one (an event's id)
    #[arg(long, value_name = "ID")]
    since: Option<String>,
    /// How many events at most (without --follow)
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Keep printing new events as they come, until interrupted
    #[arg(long)]
    follow: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "LOCKOUT_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Debug, Args)]
struct AttemptArgs {
    #[arg(long, value_parser = ip_arg)]
    ip: IpAddr,
    #[arg(long)]
    username: Option<String>,
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
    /// The login page's path (recorded with failures)
    #[arg(long)]
    path: Option<String>,
}

#[derive(Debug, Args)]
struct SuccessArgs {
    #[arg(long, value_parser = ip_arg)]
    ip: IpAddr,
    #[arg(long)]
    username: Option<String>,
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long, value_parser = ip_arg)]
    ip: Option<IpAddr>,
    #[arg(long, value_parser = username_arg)]
    username: Option<String>,
    /// Only records that are locked now
    #[arg(long)]
    locked: bool,
}

#[derive(Debug, Args)]
struct ResetArgs {
    /// An IP whose records go (repeatable)
    #[arg(long, value_parser = ip_arg)]
    ip: Vec<IpAddr>,
    /// A username whose records go (repeatable)
    #[arg(long, value_parser = username_arg)]
    username: Vec<String>,
    /// Delete every record (required when no filter is given)
    #[arg(long, conflicts_with_all = ["ip", "username"])]
    all: bool,
    /// Count what would go, delete nothing
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct LogsArgs {
    #[arg(long, value_parser = ip_arg)]
    ip: Option<IpAddr>,
    #[arg(long, value_parser = username_arg)]
    username: Option<String>,
    /// How many entries at most
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Debug, Args)]
struct ResetLogsArgs {
    /// Entries at least this old go (inclusive; `0` removes everything)
    #[arg(long, value_name = "AGE", default_value = "30d")]
    older_than: humantime::Duration,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

impl Output {
    /// Prints `json` in JSON mode, else `text`.
    fn print(self, json: impl serde::Serialize, text: impl FnOnce() -> String) {
        match self {
            Output::Json => match serde_json::to_string(&json) {
                Ok(line) => println!("{line}"),
                Err(err) => eprintln!("lockout: cannot write the answer as JSON: {err}"),
            },
            Output::Text => println!("{}", text()),
        }
    }
}

/// Parses the command line, runs the command and answers the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lockout: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lockout: {err}");
            ExitCode::from(if err.is_invalid_input() { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let output = if cli.json { Output::Json } else { Output::Text };
    let listen = match &cli.command {
        Command::Serve(args) => args.listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        redis_url: cli.redis_url,
        redis_cluster: Some(cli.redis_cluster).filter(|seeds| !seeds.is_empty()),
        prefix: cli.prefix,
        listen,
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    let command = match cli.command {
        Command::Serve(_) | Command::Ping if cli.server.is_some() => {
            return Err(usage(
                "--server: serve and ping work on Redis; --server serves the operator commands"
                    .into(),
            ))
        }
        Command::Serve(_) if cli.scope.is_some() => {
            return Err(usage(
                "--scope chooses the records of the other commands; serve takes it per request"
                    .into(),
            ))
        }
        Command::Serve(_) => return serve::serve(config).await,
        Command::Ping if cli.scope.is_some() => {
            return Err(usage("--scope: ping probes a scope of its own".into()))
        }
        Command::Ping => return ping::ping(&config, output).await,
        Command::Store(command) => command,
    };
    let keys = match &cli.scope {
        Some(scope) => config.keys.scoped(scope)?,
        None => config.keys.clone(),
    };
    if let Some(server) = &cli.server {
        let remote = Remote::new(server, &config.admin, cli.scope, config.bulk_timeout)?;
        return operate(&remote, command, output).await;
    }
    let options = RedisOptions {
        reset_memory: config.policy.longest_record_life(),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(redis_of(&config)?, keys, options).await?;
    let engine = Engine::new(store, config.policy).with_devices(config.devices.as_ref());
    match command {
        StoreCommand::Check(args) => login::check(&engine, args, output).await,
        StoreCommand::Fail(args) => login::fail(&engine, args, output).await,
        StoreCommand::Succeed(args) => login::succeed(&engine, args, output).await,
        command => operate(&engine, command, output).await,
    }
}

/// The operator commands, on Redis or through a service.
async fn operate(records: &impl Records, command: StoreCommand, output: Output) -> Result<()> {
    match command {
        StoreCommand::List(args) => records::list(records, args, output).await,
        StoreCommand::Reset(args) => records::reset(records, args, output).await,
        StoreCommand::AxesReset => records::axes_reset(records, vec![], vec![], output).await,
        StoreCommand::AxesResetIp { ip } => records::axes_reset(records, ip, vec![], output).await,
        StoreCommand::AxesResetUsername { username } => {
            records::axes_reset(records, vec![], username, output).await
        }
        StoreCommand::AxesResetIpUsername { ip, username } => {
            records::axes_reset(records, vec![ip], vec![username], output).await
        }
        StoreCommand::AxesListAttempts => records::axes_list(records, output).await,
        StoreCommand::Logs(args) => logs::logs(records, args, output).await,
        StoreCommand::ResetLogs(args) => {
            logs::reset_logs(records, args.older_than.into(), output).await
        }
        StoreCommand::AxesResetLogs { days, age } => {
            logs::axes_reset_logs(records, days.or(age), output).await
        }
        StoreCommand::Events(args) => events::events(records, args, output).await,
        StoreCommand::Devices(DevicesCommand::Revoke { username }) => {
            devices::revoke(records, &username, output).await
        }
        StoreCommand::Check(_) | StoreCommand::Fail(_) | StoreCommand::Succeed(_) => Err(usage(
            "--server: check, fail and succeed are the login API's (POST /v1/check, ...); \
             --server serves the operator commands"
                .into(),
        )),
    }
}

/// `value` fit for a terminal and a tab-separated line: usernames and user agents are chosen by
/// whoever tries to log in, so control characters (an escape sequence would rewrite the
/// operator's terminal, a tab or a newline break the columns), the invisible characters that
/// reorder or hide text, and the backslash that starts an escape are printed as escapes, as
/// Python's `repr` writes them (`\t`, `\x1b`, `\u202e`, `\\`). JSON output stays exact.
fn printable(value: &str) -> Cow<'_, str> {
    let hidden = |c: char| {
        c == '\\'
            || c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
    };
    if !value.contains(hidden) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c if hidden(c) && (c as u32) < 0x100 => {
                escaped.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if hidden(c) => escaped.push_str(&format!("\\u{:04x}", c as u32)),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

fn ip_arg(value: &str) -> Result<IpAddr, String> {
    parse_ip(value).map_err(|err| err.to_string())
}

/// Unlike Axes (whose `axes_reset_ip ""` deletes everything), an empty username is refused.
fn username_arg(value: &str) -> Result<String, String> {
    crate::attempt::parse_named_username(value).map_err(|err| err.to_string())
}

/// The Redis the command works on; with none set, an error that says where the state is.
fn redis_of(config: &Config) -> Result<&RedisEndpoint> {
    config.redis.as_ref().ok_or_else(|| {
        usage(
            "no Redis is set (redis_url, redis_cluster or redis_sentinel), so the records live \
             inside a running `lockout serve` (its in-process store): reach them with --server \
             http://127.0.0.1:8080 (list, reset, logs, reset-logs, axes_*), or set the Redis \
             the service uses"
                .into(),
        )
    })
}

fn usage(message: String) -> Error {
    Error::InvalidInput(message)
}
