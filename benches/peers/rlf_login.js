// rate-limiter-flexible's documented login recipe ("Login endpoint protection": a slow-brute
// limiter by IP and a consecutive-failures limiter by username and IP), driven like lockout's
// benchmark drives its own failed-login flow: `concurrency` workers, each doing check-then-
// failure logins of random IPs and usernames until the time is up.
//
// Run by benches/lockout.rs: node rlf_login.js HOST PORT SECONDS CONCURRENCY IPS USERNAMES
// with, in the environment, what else reaches that Redis (each unset or empty when not used):
// REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_TLS ("on", or "insecure": no certificate
// check) and the PEM files REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY.
// It prints "ready" once connected, waits for a line on stdin, runs, prints one JSON line,
// {"logins": N, "commands": N, "latencies_us": [...]} (commands: those it sent to Redis, MULTI
// and EXEC included; Redis' own statistics also count the commands run inside scripts), and exits when its stdin closes (so that the caller can
// read its CPU time first).
'use strict';

const fs = require('node:fs');
const readline = require('node:readline');
const Redis = require('ioredis');
const { RateLimiterRedis } = require('rate-limiter-flexible');

const [host, port, seconds, concurrency, ips, usernames] = process.argv.slice(2);
const env = (name) => process.env[name] || undefined;
const pem = (name) => (env(name) === undefined ? undefined : fs.readFileSync(env(name)));
const redis = new Redis({
  host,
  port: Number(port),
  username: env('REDIS_USERNAME'),
  password: env('REDIS_PASSWORD'),
  db: Number(env('REDIS_DB') || 0),
  tls: env('REDIS_TLS') && {
    ca: pem('REDIS_TLS_CA'),
    cert: pem('REDIS_TLS_CERT'),
    key: pem('REDIS_TLS_KEY'),
    rejectUnauthorized: env('REDIS_TLS') !== 'insecure',
  },
  enableOfflineQueue: true,
});
let commands = 0;
const sendCommand = redis.sendCommand.bind(redis);
redis.sendCommand = (...args) => {
  commands += 1;
  return sendCommand(...args);
};

// The recipe's limiters, with its values.
const maxWrongAttemptsByIPperDay = 100;
const maxConsecutiveFailsByUsernameAndIP = 10;
const limiterSlowBruteByIP = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: 'lockout-bench-rlf:login_fail_ip_per_day',
  points: maxWrongAttemptsByIPperDay,
  duration: 60 * 60 * 24,
  blockDuration: 60 * 60 * 24,
});
const limiterConsecutiveFailsByUsernameAndIP = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: 'lockout-bench-rlf:login_fail_consecutive_username_and_ip',
  points: maxConsecutiveFailsByUsernameAndIP,
  duration: 60 * 60 * 24 * 90,
  blockDuration: 60 * 60,
});

function randomInt(n) {
  return Math.floor(Math.random() * n);
}

function randomIp() {
  const i = randomInt(Number(ips));
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

// One login with a wrong password: the recipe's check, then its failure bookkeeping.
async function failedLogin() {
  const ip = randomIp();
  const usernameIpKey = `user${randomInt(Number(usernames))}_${ip}`;
  const [resUsernameAndIP, resSlowByIP] = await Promise.all([
    limiterConsecutiveFailsByUsernameAndIP.get(usernameIpKey),
    limiterSlowBruteByIP.get(ip),
  ]);
  const blocked =
    (resSlowByIP !== null && resSlowByIP.consumedPoints > maxWrongAttemptsByIPperDay) ||
    (resUsernameAndIP !== null &&
      resUsernameAndIP.consumedPoints > maxConsecutiveFailsByUsernameAndIP);
  if (blocked) {
    return;
  }
  try {
    await Promise.all([
      limiterSlowBruteByIP.consume(ip),
      limiterConsecutiveFailsByUsernameAndIP.consume(usernameIpKey),
    ]);
  } catch (rejected) {
    if (rejected instanceof Error) {
      throw rejected;
    }
    // A RateLimiterRes: this failure went over a limit (the recipe answers 429).
  }
}

async function worker(deadline, latencies) {
  while (process.hrtime.bigint() < deadline) {
    const started = process.hrtime.bigint();
    await failedLogin();
    latencies.push(Number((process.hrtime.bigint() - started) / 1000n));
  }
}

async function main() {
  await redis.ping();
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  const closed = new Promise((resolve) => lines.once('close', resolve));
  await new Promise((resolve) => lines.once('line', resolve));
  commands = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(Number(seconds) * 1e9));
  const latencies = [];
  await Promise.all(
    Array.from({ length: Number(concurrency) }, () => worker(deadline, latencies)),
  );
  process.stdout.write(`${JSON.stringify({ logins: latencies.length, commands, latencies_us: latencies })}\n`);
  await closed;
  redis.disconnect();
}

main().catch((err) => {
  process.stderr.write(`rlf_login.js: ${err.stack || err}\n`);
  process.exit(1);
});
