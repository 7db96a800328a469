//! Part 5, a Django site's logins: Axes' cache handler against lockout_axes.

use std::process::Command;

use crate::flow::clean;
use crate::options::Options;
use crate::peers::measure_peer;
use crate::processes::{start_service, Process};
use crate::reach::{unlink_matching, Reach};
use crate::report::Row;
use crate::Bench;

/// The integration the Django rows measure: this checkout's (on PYTHONPATH), not an installed
/// copy.
const INTEGRATION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/django");

/// A Django site's logins of `case` (`failed` or `refused`;
/// `benches/peers/django/django_login.py`, one Python process, Django and django-axes from PyPI
/// in `benches/peers/django/.venv`, made on first use): through Axes' cache handler on the same
/// Redis, or, given a `lockout serve` (its process and port), through the lockout_axes handler.
/// One row; the process's CPU is the client's.
pub(crate) fn django_login(
    options: &Options,
    reach: &Reach,
    redis: &mut redis::Connection,
    service: Option<(&Process, u16)>,
    case: &str,
    reference: f64,
) -> Row {
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/django");
    let python = format!("{peer}/.venv/bin/python");
    if !std::path::Path::new(&python).exists() {
        let made = Command::new("python3")
            .args(["-m", "venv", &format!("{peer}/.venv")])
            .status()
            .expect("python3 must be installed to run the Django rows");
        assert!(made.success(), "python3 -m venv in {peer} failed");
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(format!("{peer}/requirements.txt"))
            .status()
            .unwrap();
        assert!(installed.success(), "pip install in {peer} failed");
    }
    let (host, port) = reach.host_port();
    let (handler, lockout_url) = match service {
        Some((_, port)) => ("lockout", format!("http://127.0.0.1:{port}")),
        None => ("axes-cache", String::new()),
    };
    let mut django = Command::new(&python);
    django
        .arg(format!("{peer}/django_login.py"))
        .args([
            handler,
            case,
            &host,
            &port.to_string(),
            &lockout_url,
            &options.seconds.to_string(),
            &options.ips.to_string(),
            &options.usernames.to_string(),
        ])
        .envs(reach.peer_env())
        .env("PYTHONPATH", INTEGRATION);
    let logins = match case {
        "refused" => "Django refused logins (1,000 locked IPs)",
        _ => "Django failed logins",
    };
    let what = match service {
        Some(_) => format!("{logins}, lockout_axes handler and lockout serve on Redis, policy ip"),
        None => format!("{logins}, Axes' cache handler on Redis, policy ip (the site's anchor)"),
    };
    let service = service.map(|(process, _)| process.0.id());
    let (mut row, _) = measure_peer(django, "django_login.py", redis, service, what, reference);
    // The cache handler's commands are not those counted (EVALSHA, PTTL): no comparison.
    row.ratio = None;
    row.commands_per_login = None;
    unlink_matching(reach, "lockout-bench-axes:*");
    row
}

/// Part 5: for failed logins, then for refused ones, Axes' cache handler, then lockout_axes.
pub(crate) async fn run(bench: &mut Bench, rows: &mut Vec<Row>) {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    if !options.runs("django") {
        return;
    }
    for case in ["failed", "refused"] {
        let cache = django_login(options, reach, redis, None, case, reference);
        let cache_cost = cache.client_cpu.zip(cache.redis_cpu).zip(cache.rate);
        rows.push(cache);
        let (service, port) = start_service(&reach.flags.service_env(), r#"["ip"]"#);
        let mut row = django_login(
            options,
            reach,
            redis,
            Some((&service, port)),
            case,
            reference,
        );
        if let (Some(((client, redis_cpu), rate)), Some(service_cpu), Some(own_rate)) =
            (cache_cost, row.service_cpu, row.rate)
        {
            let django = row.client_cpu.unwrap_or(0.0) / own_rate;
            let own = django + (service_cpu + row.redis_cpu.unwrap_or(0.0)) / own_rate;
            row.note = format!(
                "{:.2}x the cache handler's rate; Django CPU per login {:.0} µs, {:.2}x its {:.0} µs; \
                 CPU per login (Django + service + Redis) {:.2}x its",
                own_rate / rate,
                django * 1e6,
                django / (client / rate),
                client / rate * 1e6,
                own / ((client + redis_cpu) / rate)
            );
        }
        rows.push(row);
        drop(service);
        clean(reach).await;
    }
}
