//! End-to-end pipeline benchmark: the real `cadbridge serve` binary as a
//! child process, fed over real HTTP, relaying to an in-process fake game
//! server and posting to an in-process fake Discord.
//!
//! ```sh
//! cargo bench --bench pipeline -- [--events N] [--concurrency C] [--rate R]
//!     [--mix 911|realistic] [--no-discord] [--relay-wait S] [--discord-wait S] [--seed N]
//!     [--env KEY=VALUE]...
//! ```
//!
//! It reports; it asserts no timing. It exits non-zero only when an
//! acknowledged event never reached the game server (a lost event) or when
//! the run itself cannot be set up. Nothing talks to anything but 127.0.0.1.

#[path = "../tests/support/fake_discord.rs"]
mod fake_discord;
#[allow(dead_code)]
#[path = "../tests/support/fake_game.rs"]
mod fake_game;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use fake_discord::FakeDiscord;
use fake_game::FakeGame;

const KEY: &str = "TEST_API_KEY_7f3c9a12";
const CH_911: u64 = 101;
const CH_DISPATCH: u64 = 102;
const CH_UNITS: u64 = 103;
const CH_OTHER: u64 = 106;
/// First callId of the benchmark's 911 calls (unique per event).
const CALL_911_BASE: i64 = 1_000_000;

// ----- options -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    Only911,
    Realistic,
}

#[derive(Debug, Clone)]
struct Opts {
    events: usize,
    concurrency: usize,
    rate: Option<f64>,
    mix: Mix,
    discord: bool,
    relay_wait: Duration,
    discord_wait: Duration,
    seed: u64,
    /// Keep cadbridge running this long after the measurements, watching its memory.
    linger: Duration,
    /// The cadbridge binary to run (default: the one cargo built).
    bin: String,
    /// Extra settings for cadbridge (`--env KEY=VALUE`, repeatable), e.g. to
    /// compare a feature on and off.
    env: Vec<(String, String)>,
}

impl Opts {
    fn parse() -> Result<Self, String> {
        let mut opts = Opts {
            events: 20_000,
            concurrency: 64,
            rate: None,
            mix: Mix::Realistic,
            discord: true,
            relay_wait: Duration::from_secs(120),
            discord_wait: Duration::from_secs(60),
            seed: 7,
            linger: Duration::ZERO,
            bin: env!("CARGO_BIN_EXE_cadbridge").to_string(),
            env: Vec::new(),
        };
        // `cargo bench` passes `--bench` to a harness = false target; skip it.
        let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--events" => opts.events = num(&value("--events")?, "--events")?,
                "--concurrency" => opts.concurrency = num(&value("--concurrency")?, "--concurrency")?,
                "--rate" => opts.rate = Some(num(&value("--rate")?, "--rate")?),
                "--mix" => {
                    opts.mix = match value("--mix")?.as_str() {
                        "911" => Mix::Only911,
                        "realistic" => Mix::Realistic,
                        other => return Err(format!("--mix: expected 911 or realistic, got {other:?}")),
                    }
                }
                "--no-discord" => opts.discord = false,
                "--relay-wait" => {
                    opts.relay_wait = Duration::from_secs(num(&value("--relay-wait")?, "--relay-wait")?)
                }
                "--discord-wait" => {
                    opts.discord_wait = Duration::from_secs(num(&value("--discord-wait")?, "--discord-wait")?)
                }
                "--seed" => opts.seed = num(&value("--seed")?, "--seed")?,
                "--linger" => opts.linger = Duration::from_secs(num(&value("--linger")?, "--linger")?),
                "--bin" => opts.bin = value("--bin")?,
                "--env" => {
                    let kv = value("--env")?;
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| format!("--env: expected KEY=VALUE, got {kv:?}"))?;
                    opts.env.push((k.to_string(), v.to_string()));
                }
                "-h" | "--help" => {
                    println!(
                        "cargo bench --bench pipeline -- [--events N (20000)] [--concurrency C (64)] \
                         [--rate R events/s (open loop; default: saturate)] [--mix 911|realistic] \
                         [--no-discord] [--relay-wait S (120)] [--discord-wait S (60)] [--seed N (7)] [--linger S (0)] \
                         [--bin PATH (a cadbridge binary to run instead, e.g. an unstripped build for perf)] \
                         [--env KEY=VALUE (an extra setting for cadbridge; repeatable)]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other:?} (try --help)")),
            }
        }
        if opts.events == 0 || opts.concurrency == 0 || opts.rate.is_some_and(|r| r <= 0.0 || !r.is_finite())
        {
            return Err("--events, --concurrency and --rate must be positive".into());
        }
        Ok(opts)
    }

    fn describe(&self) -> String {
        format!(
            "--events {} {} --mix {}{} --relay-wait {} --discord-wait {} --seed {}{}{}{}",
            self.events,
            match self.rate {
                Some(r) => format!("--rate {r}"),
                None => format!("--concurrency {}", self.concurrency),
            },
            match self.mix {
                Mix::Only911 => "911",
                Mix::Realistic => "realistic",
            },
            if self.discord { "" } else { " --no-discord" },
            self.relay_wait.as_secs(),
            self.discord_wait.as_secs(),
            self.seed,
            if self.linger.is_zero() {
                String::new()
            } else {
                format!(" --linger {}", self.linger.as_secs())
            },
            if self.bin == env!("CARGO_BIN_EXE_cadbridge") {
                String::new()
            } else {
                format!(" --bin {}", self.bin)
            },
            self.env
                .iter()
                .map(|(k, v)| format!(" --env {k}={v}"))
                .collect::<String>(),
        )
    }
}

fn num<T: std::str::FromStr>(s: &str, name: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{name}: not a number: {s:?}"))
}

// ----- the events ----------------------------------------------------------------------------

struct Workload {
    bodies: Arc<Vec<Bytes>>,
    /// The callId of each EVENT_911, by event index.
    call911: Vec<Option<i64>>,
    by_type: BTreeMap<&'static str, usize>,
}

/// Builds `n` unique bodies (each carries its index as `data.benchSeq`), in
/// the shapes of `tests/fixtures/cad/*.json`.
fn workload(opts: &Opts) -> Workload {
    const UNITS: i64 = 40;
    const CALLS: i64 = 36;
    const STREETS: [&str; 8] = [
        "Vespucci Blvd",
        "San Andreas Ave",
        "Strawberry Ave",
        "Innocence Blvd",
        "Davis Ave",
        "Grove St",
        "Alta St",
        "Power St",
    ];
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let mut bodies = Vec::with_capacity(opts.events);
    let mut call911 = Vec::with_capacity(opts.events);
    let mut by_type = BTreeMap::new();
    let mut dispatch_open = HashSet::new();
    let unit = |id: i64, status: i64, location: String| {
        json!({
            "id": id,
            "accId": format!("9b2f61c4-5d7e-4a0b-8c3e-{:012x}", id),
            "status": status,
            "isPanic": false,
            "location": location,
            "aop": "Los Santos",
            "data": {
                "apiIds": [format!("license:{:040x}", id)],
                "communityUserId": format!("license:{:040x}", id),
                "unitNum": format!("1-ADAM-{id}"),
                "name": format!("Officer {id}"),
                "district": "Mission Row",
                "department": "LSPD",
                "subdivision": "Patrol",
                "rank": "Officer II",
                "group": "",
                "page": 0
            }
        })
    };
    for i in 0..opts.events {
        let seq = i as i64;
        let street = |rng: &mut fastrand::Rng| STREETS[rng.usize(..STREETS.len())];
        let r = rng.u32(0..1000);
        let (event_type, data, call) = if opts.mix == Mix::Only911 || r >= 990 {
            let call_id = CALL_911_BASE + seq;
            let data = json!({
                "call": {
                    "callId": call_id,
                    "isEmergency": seq % 3 == 0,
                    "caller": format!("Bench Caller {seq}"),
                    "location": format!("{} {}, {}", 100 + seq % 900, street(&mut rng), street(&mut rng)),
                    "description": format!("Bench 911 call number {seq}: shots heard near the store."),
                    "metaData": { "postal": format!("{}", 8000 + seq % 200), "x": "25.7", "y": "-1347.3", "z": "29.5" }
                },
                "apiIds": [format!("license:{:040x}", seq)],
                "communityUserId": format!("license:{:040x}", seq),
                "metaData": { "source": "cad" },
                "benchSeq": seq
            });
            ("EVENT_911", data, Some(call_id))
        } else if seq < UNITS {
            // The shift starts: every unit logs in, so the roster knows them.
            let data = json!({
                "unit": unit(100 + seq, 2, format!("{} / {}", street(&mut rng), street(&mut rng))),
                "isDispatch": false,
                "selfDispatch": false,
                "benchSeq": seq
            });
            ("EVENT_UNIT_LOGIN", data, None)
        } else if r < 600 {
            let data = json!({
                "identIds": [100 + rng.i64(0..UNITS)],
                "status": rng.i64(0..8),
                "benchSeq": seq
            });
            ("EVENT_UNIT_STATUS", data, None)
        } else if r < 800 {
            let id = 100 + rng.i64(0..UNITS);
            let location = format!("{} / {} ({})", street(&mut rng), street(&mut rng), seq);
            let data = json!({ "units": [unit(id, rng.i64(0..8), location)], "benchSeq": seq });
            ("EVENT_UNIT_UPDATE", data, None)
        } else {
            let call_id = 7000 + rng.i64(0..CALLS);
            let new = dispatch_open.insert(call_id);
            if new || r < 880 {
                // NEW the first time a call is seen, EDIT afterwards.
                let event_type = if new {
                    "EVENT_DISPATCH_NEW"
                } else {
                    "EVENT_DISPATCH_EDIT"
                };
                let data = json!({
                    "eventOriginIdent": 88,
                    "dispatch": {
                        "callId": call_id,
                        "origin": 0,
                        "status": 1,
                        "priority": 1 + rng.i64(0..3),
                        "block": format!("{}", 100 + rng.i64(0..900)),
                        "address": street(&mut rng),
                        "postal": format!("{}", 8000 + call_id % 200),
                        "title": "Armed Robbery",
                        "code": "10-90 - Robbery in Progress",
                        "primary": 100 + rng.i64(0..UNITS),
                        "trackPrimary": true,
                        "description": format!("Suspects fled on foot toward Davis Ave (update {seq})."),
                        "notes": "",
                        "idents": [100 + rng.i64(0..UNITS), 100 + rng.i64(0..UNITS)],
                        "metaData": { "createdFromId": "bench" }
                    },
                    "benchSeq": seq
                });
                (event_type, data, None)
            } else {
                let data = json!({
                    "callId": call_id,
                    "note": {
                        "time": format!("21:{:02}:{:02}", (seq / 60) % 60, seq % 60),
                        "label": format!("1-ADAM-{}", 100 + rng.i64(0..UNITS)),
                        "type": "text",
                        "content": format!("Bench note {seq}: one suspect detained.")
                    },
                    "benchSeq": seq
                });
                ("EVENT_DISPATCH_NOTE", data, None)
            }
        };
        *by_type.entry(event_type).or_insert(0) += 1;
        let body = json!({ "key": KEY, "type": event_type, "data": data });
        bodies.push(Bytes::from(serde_json::to_vec(&body).expect("JSON")));
        call911.push(call);
    }
    Workload {
        bodies: Arc::new(bodies),
        call911,
        by_type,
    }
}

// ----- driving load --------------------------------------------------------------------------

/// One request: when it started, when its answer was read, the status
/// (0: no answer: a connection error or the client timeout).
#[derive(Debug, Clone, Copy)]
struct Outcome {
    start: Instant,
    done: Instant,
    status: u16,
}

struct Drive {
    outcomes: Vec<Outcome>,
    started: Instant,
    finished: Instant,
    /// Open loop only: the latest a request left after its scheduled time.
    max_send_lag: Option<Duration>,
}

impl Drive {
    fn acked(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == 200).count()
    }

    fn wall(&self) -> Duration {
        self.finished - self.started
    }

    fn accepted_per_sec(&self) -> f64 {
        self.acked() as f64 / self.wall().as_secs_f64()
    }

    fn ack_latencies_ms(&self) -> Vec<f64> {
        self.outcomes
            .iter()
            .filter(|o| o.status == 200)
            .map(|o| ms(o.done - o.start))
            .collect()
    }

    fn refused(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for o in self.outcomes.iter().filter(|o| o.status != 200) {
            *out.entry(o.status).or_insert(0) += 1;
        }
        out
    }
}

async fn post_one(client: &reqwest::Client, url: &str, body: Bytes) -> Outcome {
    let start = Instant::now();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let status = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    };
    Outcome {
        start,
        done: Instant::now(),
        status,
    }
}

/// Saturation: `concurrency` requests in flight until every body is sent.
/// Open loop (`rate`): one request leaves every 1/rate s whatever the answers.
async fn drive(client: &reqwest::Client, url: &str, bodies: &Arc<Vec<Bytes>>, opts: &Opts) -> Drive {
    let n = bodies.len();
    let placeholder = Outcome {
        start: Instant::now(),
        done: Instant::now(),
        status: 0,
    };
    let mut outcomes = vec![placeholder; n];
    let started = Instant::now();
    let mut max_send_lag = None;
    match opts.rate {
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..opts.concurrency.min(n) {
                let (client, url, bodies, next) =
                    (client.clone(), url.to_string(), bodies.clone(), next.clone());
                workers.spawn(async move {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= bodies.len() {
                            return done;
                        }
                        done.push((i, post_one(&client, &url, bodies[i].clone()).await));
                    }
                });
            }
            while let Some(done) = workers.join_next().await {
                for (i, o) in done.expect("a sender task panicked") {
                    outcomes[i] = o;
                }
            }
        }
        Some(rate) => {
            let t0 = tokio::time::Instant::now();
            let mut lag = Duration::ZERO;
            let mut inflight = Vec::with_capacity(n);
            for i in 0..n {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due).await;
                lag = lag.max(tokio::time::Instant::now() - due);
                let (client, url, body) = (client.clone(), url.to_string(), bodies[i].clone());
                inflight.push(tokio::spawn(async move { post_one(&client, &url, body).await }));
            }
            for (i, handle) in inflight.into_iter().enumerate() {
                outcomes[i] = handle.await.expect("a sender task panicked");
            }
            max_send_lag = Some(lag);
        }
    }
    let finished = outcomes.iter().map(|o| o.done).max().unwrap_or(started);
    Drive {
        outcomes,
        started,
        finished,
        max_send_lag,
    }
}

/// The ceiling: a handler that reads the body and answers 200 `ok`.
async fn start_ceiling() -> SocketAddr {
    use axum::routing::post;
    let app = axum::Router::new()
        .route("/sonorancad/event", post(|_body: Bytes| async { "ok" }))
        .route("/", post(|_body: Bytes| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the ceiling");
    let addr = listener.local_addr().expect("ceiling address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("ceiling server");
    });
    addr
}

// ----- the child process ---------------------------------------------------------------------

#[derive(Default)]
struct LogStats {
    by_level: BTreeMap<String, usize>,
    /// (level, target, message) of WARN and ERROR lines, with counts.
    notable: BTreeMap<(String, String, String), usize>,
    unparsed: usize,
}

/// `cadbridge serve`, killed when dropped.
struct Cadbridge {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    logs: Arc<Mutex<LogStats>>,
    dir: tempfile::TempDir,
}

impl Drop for Cadbridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cadbridge(
    bin: &str,
    game_url: &str,
    discord: Option<&FakeDiscord>,
    extra: &[(String, String)],
) -> Cadbridge {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = format!("sqlite://{}", dir.path().join("cadbridge.db").display());
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("SONORAN_API_KEY", KEY)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", &db)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,cadbridge::app=info")
        .env("FORWARD_URLS", game_url)
        // Passed through to compare commit modes (full: fsync before 200).
        .env(
            "DATABASE_SYNC",
            std::env::var("DATABASE_SYNC").unwrap_or_else(|_| "full".into()),
        )
        .env("DISCORD_CHANNEL_911", CH_911.to_string())
        .env("DISCORD_CHANNEL_UNITS", CH_UNITS.to_string())
        .env("DISCORD_CHANNEL_DISPATCH", CH_DISPATCH.to_string())
        .env("DISCORD_CHANNEL_OTHER", CH_OTHER.to_string())
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match discord {
        Some(fake) => {
            cmd.env("DISCORD_TOKEN", "bench")
                .env("DISCORD_API_BASE", fake.base_url())
                .env("DISCORD_GUILD_ID", FakeDiscord::GUILD_ID.to_string());
        }
        None => {
            cmd.env("DISCORD_TOKEN", "");
        }
    }
    let mut child = cmd.spawn().expect("start the cadbridge binary");
    let pid = child.id();
    let logs = Arc::new(Mutex::new(LogStats::default()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    for (stream, name) in [
        (Box::new(stdout) as Box<dyn std::io::Read + Send>, "stdout"),
        (Box::new(stderr), "stderr"),
    ] {
        let (logs, addr_tx) = (logs.clone(), addr_tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut stats = logs.lock().unwrap();
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    stats.unparsed += 1;
                    if stats.unparsed <= 5 {
                        eprintln!("cadbridge {name}: {line}");
                    }
                    continue;
                };
                let level = v["level"].as_str().unwrap_or("?").to_string();
                if let Some(addr) = v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()) {
                    let _ = addr_tx.send(addr);
                }
                if level == "WARN" || level == "ERROR" {
                    let target = v["target"].as_str().unwrap_or("").to_string();
                    let message = v["fields"]["message"].as_str().unwrap_or("").to_string();
                    *stats.notable.entry((level.clone(), target, message)).or_insert(0) += 1;
                }
                *stats.by_level.entry(level).or_insert(0) += 1;
            }
        });
    }
    let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("cadbridge did not say where it listens within 30 s (exit: {status:?})");
        }
    };
    Cadbridge {
        child,
        pid,
        addr,
        logs,
        dir,
    }
}

impl Cadbridge {
    /// SIGTERM, then waits; SIGKILL after 15 s. Returns how long it took and whether it was clean.
    fn stop(&mut self) -> (Duration, String) {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return (t.elapsed(), format!("{status}")),
                Ok(None) if t.elapsed() < Duration::from_secs(15) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return (t.elapsed(), "killed after 15 s".into());
                }
            }
        }
    }

    fn db_bytes(&self) -> u64 {
        ["cadbridge.db", "cadbridge.db-wal", "cadbridge.db-shm"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// A `VmXXX:   1234 kB` line of /proc/<pid>/status, in kB.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU time of a process (or `self`).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// Machine-wide CPU time from /proc/stat: (busy, steal), all cores together.
fn machine_cpu() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?;
    let steal = *v.get(7)?;
    let secs = |t: u64| Duration::from_secs_f64(t as f64 / clock_ticks());
    Some((secs(busy), secs(steal)))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Samples VmRSS every 50 ms; the highest seen.
fn sample_rss(pid: u32) -> Arc<AtomicU64> {
    let max = Arc::new(AtomicU64::new(0));
    let seen = max.clone();
    tokio::spawn(async move {
        while let Some(kb) = proc_status_kb(pid, "VmRSS") {
            seen.fetch_max(kb, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    max
}

// ----- statistics ----------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed milliseconds from `from` to `to` (negative: `to` came first).
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from { ms(to - from) } else { -ms(from - to) }
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.abs() >= 10_000.0 => format!("{:.1} s", v / 1000.0),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.2} ms"),
    }
}

/// p50 / p99 / max of latencies where some may never have arrived (`None`):
/// a missing one counts as slower than any arrived, so a percentile that
/// falls on one is shown as `> waited`.
fn censored(values: &[Option<f64>], waited: Duration) -> String {
    let arrived = sorted(values.iter().flatten().copied().collect());
    let total = values.len();
    if total == 0 {
        return "–".into();
    }
    let at = |p: f64| {
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as usize;
        if rank <= arrived.len() {
            fmt_ms(Some(arrived[rank - 1]))
        } else {
            format!("> {} s", waited.as_secs())
        }
    };
    format!(
        "{} / {} / {}",
        at(50.0),
        at(99.0),
        if arrived.len() == total {
            fmt_ms(arrived.last().copied())
        } else {
            format!("> {} s", waited.as_secs())
        }
    )
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

// ----- the run -------------------------------------------------------------------------------

/// The first `911 #N` in each embed title of the 911 channel's successful messages:
/// callId -> when it first arrived.
fn discord_911_arrivals(fake: &FakeDiscord) -> HashMap<i64, Instant> {
    let mut seen: HashMap<i64, Instant> = HashMap::new();
    for m in fake.successful_messages() {
        if m.channel_id != CH_911 {
            continue;
        }
        let Some(embeds) = m.body.get("embeds").and_then(Value::as_array) else {
            continue;
        };
        for embed in embeds {
            let title = embed.get("title").and_then(Value::as_str).unwrap_or("");
            let Some(rest) = title.split("911 #").nth(1) else {
                continue;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse::<i64>() {
                let at = seen.entry(id).or_insert(m.at);
                *at = (*at).min(m.at);
            }
        }
    }
    seen
}

/// The `cadbridge_outbox_depth` gauges of a `/metrics` scrape, by destination.
async fn outbox_depths(client: &reqwest::Client, addr: SocketAddr) -> BTreeMap<String, String> {
    let Ok(response) = client.get(format!("http://{addr}/metrics")).send().await else {
        return BTreeMap::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("cadbridge_outbox_depth{destination=\""))
        .filter_map(|l| {
            let (dest, rest) = l.split_once("\"}")?;
            let dest = if dest.starts_with("relay:") { "relay" } else { dest };
            Some((dest.to_string(), rest.trim().to_string()))
        })
        .collect()
}

struct Row {
    metric: String,
    cadbridge: String,
    ceiling: String,
}

fn row(metric: impl Into<String>, cadbridge: impl Into<String>, ceiling: impl Into<String>) -> Row {
    Row {
        metric: metric.into(),
        cadbridge: cadbridge.into(),
        ceiling: ceiling.into(),
    }
}

#[tokio::main]
async fn main() {
    let opts = match Opts::parse() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("pipeline: {e}");
            std::process::exit(2);
        }
    };
    let work = workload(&opts);
    let n = work.bodies.len();
    let body_bytes: usize = work.bodies.iter().map(Bytes::len).sum();
    eprintln!(
        "pipeline: {} ({n} bodies, {:.0} B mean)",
        opts.describe(),
        body_bytes as f64 / n as f64
    );

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");

    // The fakes.
    let game = FakeGame::start().await;
    let discord = if opts.discord {
        let fake = FakeDiscord::start().await;
        fake.set_channel_rate_limit(Some((5, Duration::from_secs(5))));
        Some(fake)
    } else {
        None
    };

    // The ceiling first, while nothing else runs.
    let ceiling_addr = start_ceiling().await;
    eprintln!("pipeline: ceiling run against a minimal axum handler on {ceiling_addr}");
    let ceiling_url = format!("http://{ceiling_addr}/sonorancad/event");
    let bench_cpu0 = cpu_time("self");
    let machine0 = machine_cpu();
    let ceiling = drive(&client, &ceiling_url, &work.bodies, &opts).await;
    let ceiling_bench_cpu = bench_cpu0.zip(cpu_time("self")).map(|(a, b)| b - a);
    let ceiling_others = match (machine0.zip(machine_cpu()), ceiling_bench_cpu) {
        (Some(((b0, _), (b1, _))), Some(bench)) => Some((b1 - b0).saturating_sub(bench)),
        _ => None,
    };

    // cadbridge.
    let mut app = start_cadbridge(&opts.bin, &game.url(), discord.as_ref(), &opts.env);
    eprintln!("pipeline: cadbridge (pid {}) listens on {}", app.pid, app.addr);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = proc_status_kb(app.pid, "VmRSS");
    let idle_hwm = proc_status_kb(app.pid, "VmHWM");
    let max_rss = sample_rss(app.pid);
    let url = format!("http://{}/sonorancad/event", app.addr);

    eprintln!("pipeline: sending {n} events to cadbridge");
    let child_cpu0 = cpu_time(&app.pid.to_string());
    let bench_cpu0 = cpu_time("self");
    let machine0 = machine_cpu();
    let load0 = loadavg();
    let run = drive(&client, &url, &work.bodies, &opts).await;
    let send_end = Instant::now();
    let child_cpu_send = child_cpu0.zip(cpu_time(&app.pid.to_string())).map(|(a, b)| b - a);
    let bench_cpu_send = bench_cpu0.zip(cpu_time("self")).map(|(a, b)| b - a);
    let machine_send = machine0
        .zip(machine_cpu())
        .map(|((b0, s0), (b1, s1))| (b1 - b0, s1 - s0));
    let load1 = loadavg();
    // Busy CPU of everything but cadbridge and this process (another build, say).
    let others_send = match (machine_send, child_cpu_send, bench_cpu_send) {
        (Some((busy, _)), Some(child), Some(bench)) => Some(busy.saturating_sub(child + bench)),
        _ => None,
    };
    let rss_end_of_send = proc_status_kb(app.pid, "VmRSS");
    let acked: Vec<usize> = (0..n).filter(|&i| run.outcomes[i].status == 200).collect();
    eprintln!(
        "pipeline: {} of {n} acknowledged in {:.2} s; waiting for the relay (up to {} s)",
        acked.len(),
        run.wall().as_secs_f64(),
        opts.relay_wait.as_secs()
    );

    // Relay: every acknowledged body must reach the game server.
    let index: HashMap<Bytes, usize> = work.bodies.iter().cloned().zip(0..).collect();
    let mut arrival: Vec<Option<Instant>> = vec![None; n];
    let mut duplicates = 0usize;
    let mut strangers = 0usize;
    let relay_deadline = send_end + opts.relay_wait;
    loop {
        if game.attempts() >= acked.len() {
            arrival.fill(None);
            duplicates = 0;
            strangers = 0;
            for (body, at) in game.bodies_with_times() {
                match index.get(&body) {
                    Some(&i) if arrival[i].is_none() => arrival[i] = Some(at),
                    Some(_) => duplicates += 1,
                    None => strangers += 1,
                }
            }
            if acked.iter().all(|&i| arrival[i].is_some()) {
                break;
            }
        }
        if Instant::now() >= relay_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if game.attempts() < acked.len() {
        // Timed out before the count was even reached: match what did arrive.
        for (body, at) in game.bodies_with_times() {
            match index.get(&body) {
                Some(&i) if arrival[i].is_none() => arrival[i] = Some(at),
                Some(_) => duplicates += 1,
                None => strangers += 1,
            }
        }
    }
    let lost: Vec<usize> = acked.iter().copied().filter(|&i| arrival[i].is_none()).collect();
    let relay_lat = sorted(
        acked
            .iter()
            .filter_map(|&i| arrival[i].map(|at| signed_ms(run.outcomes[i].done, at)))
            .collect(),
    );
    let last_arrival = acked.iter().filter_map(|&i| arrival[i]).max();
    let arrived_during_send = acked
        .iter()
        .filter(|&&i| arrival[i].is_some_and(|t| t <= send_end))
        .count();
    let relay_rate_send = arrived_during_send as f64 / (send_end - run.started).as_secs_f64();
    let relay_rate_drain = match last_arrival {
        Some(last) if last > send_end => {
            (acked.len() - lost.len() - arrived_during_send) as f64 / (last - send_end).as_secs_f64()
        }
        _ => f64::NAN,
    };
    let rss_after_relay = proc_status_kb(app.pid, "VmRSS");
    let depths_after_relay = outbox_depths(&client, app.addr).await;

    // Discord: each acknowledged EVENT_911 in the 911 channel.
    let acked_911: Vec<(usize, i64)> = acked
        .iter()
        .filter_map(|&i| work.call911[i].map(|c| (i, c)))
        .collect();
    let mut discord_lat: Vec<Option<f64>> = Vec::new();
    let mut discord_waited = Duration::ZERO;
    if let Some(fake) = discord.as_ref().filter(|_| !acked_911.is_empty()) {
        eprintln!(
            "pipeline: waiting for {} 911 calls in Discord (up to {} s after sending ended)",
            acked_911.len(),
            opts.discord_wait.as_secs()
        );
        let deadline = send_end + opts.discord_wait;
        let seen = loop {
            let seen = discord_911_arrivals(fake);
            if acked_911.iter().all(|(_, c)| seen.contains_key(c)) || Instant::now() >= deadline {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        discord_waited = Instant::now().saturating_duration_since(send_end);
        discord_lat = acked_911
            .iter()
            .map(|(i, c)| seen.get(c).map(|at| signed_ms(run.outcomes[*i].done, *at)))
            .collect();
    }
    let discord_msgs = discord.as_ref().map(FakeDiscord::messages).unwrap_or_default();
    let depths_end = outbox_depths(&client, app.addr).await;

    let rss_end = proc_status_kb(app.pid, "VmRSS");
    let peak_sampled = max_rss.load(Ordering::Relaxed);
    let peak_hwm = proc_status_kb(app.pid, "VmHWM");

    // Linger: memory while the Discord backlog drains with no new events.
    let mut linger_rss = Vec::new();
    if !opts.linger.is_zero() {
        eprintln!("pipeline: lingering {} s, watching memory", opts.linger.as_secs());
        let start = Instant::now();
        while start.elapsed() < opts.linger {
            tokio::time::sleep(Duration::from_secs(5).min(opts.linger)).await;
            if let Some(kb) = proc_status_kb(app.pid, "VmRSS") {
                linger_rss.push(kb);
            }
        }
    }
    let depths_linger = outbox_depths(&client, app.addr).await;
    let peak_hwm_linger = proc_status_kb(app.pid, "VmHWM");
    let db_bytes = app.db_bytes();
    let (stop_took, stop_status) = app.stop();

    // ----- report --------------------------------------------------------------------------
    let ack = sorted(run.ack_latencies_ms());
    let ack_c = sorted(ceiling.ack_latencies_ms());
    let mut rows = vec![
        row(
            "events sent / acknowledged (200)",
            format!("{n} / {}", run.acked()),
            format!("{n} / {}", ceiling.acked()),
        ),
        row(
            "not acknowledged (status: count; 0 = no answer)",
            format!("{:?}", run.refused()),
            format!("{:?}", ceiling.refused()),
        ),
        row(
            "sending phase wall time",
            format!("{:.2} s", run.wall().as_secs_f64()),
            format!("{:.2} s", ceiling.wall().as_secs_f64()),
        ),
        row(
            "**accepted events/s**",
            format!("**{:.0}**", run.accepted_per_sec()),
            format!("{:.0}", ceiling.accepted_per_sec()),
        ),
        row(
            "cadbridge throughput / ceiling",
            format!(
                "{:.1} %",
                100.0 * run.accepted_per_sec() / ceiling.accepted_per_sec()
            ),
            "100 %",
        ),
        row(
            "**ack latency p50 / p99 / max**",
            format!(
                "{} / {} / {}",
                fmt_ms(pct(&ack, 50.0)),
                fmt_ms(pct(&ack, 99.0)),
                fmt_ms(ack.last().copied())
            ),
            format!(
                "{} / {} / {}",
                fmt_ms(pct(&ack_c, 50.0)),
                fmt_ms(pct(&ack_c, 99.0)),
                fmt_ms(ack_c.last().copied())
            ),
        ),
    ];
    if let Some(lag) = run.max_send_lag {
        rows.push(row(
            "open loop: worst send lag behind schedule",
            fmt_ms(Some(ms(lag))),
            fmt_ms(ceiling.max_send_lag.map(ms)),
        ));
    }
    rows.extend([
        row(
            "**ack → game server p50 / p99 / max**",
            format!(
                "{} / {} / {}",
                fmt_ms(pct(&relay_lat, 50.0)),
                fmt_ms(pct(&relay_lat, 99.0)),
                fmt_ms(relay_lat.last().copied())
            ),
            "",
        ),
        row(
            "relay drained (last arrival after sending ended)",
            last_arrival.map_or("–".into(), |t| fmt_ms(Some(signed_ms(send_end, t)))),
            "",
        ),
        row(
            "relay throughput while sending / after (arrivals/s)",
            format!("{relay_rate_send:.0} / {relay_rate_drain:.0}"),
            "",
        ),
        row(
            "**events lost** (acknowledged, never at the game server)",
            format!("**{}**", lost.len()),
            "",
        ),
        row(
            "duplicates / unknown bodies at the game server",
            format!("{duplicates} / {strangers}"),
            "",
        ),
    ]);
    if opts.discord {
        let arrived = discord_lat.iter().flatten().count();
        rows.push(row(
            format!(
                "**ack → Discord, EVENT_911 p50 / p99 / max** ({arrived} of {} within {:.0} s)",
                discord_lat.len(),
                discord_waited.as_secs_f64()
            ),
            censored(&discord_lat, discord_waited),
            "",
        ));
        let ok = discord_msgs.iter().filter(|m| m.is_success()).count();
        let limited = discord_msgs.iter().filter(|m| m.status == 429).count();
        let mut per_channel: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
        for m in discord_msgs.iter().filter(|m| m.is_success()) {
            let e = per_channel.entry(m.channel_id).or_default();
            e.0 += 1;
            e.1 += m.body.get("embeds").and_then(Value::as_array).map_or(0, Vec::len);
        }
        let channels = per_channel
            .iter()
            .map(|(c, (msgs, embeds))| {
                let name = match *c {
                    CH_911 => "911",
                    CH_DISPATCH => "dispatch",
                    CH_UNITS => "units",
                    CH_OTHER => "other",
                    _ => "?",
                };
                format!("{name} {msgs}/{embeds}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(row(
            "Discord requests ok / 429 (per channel: messages/embeds)",
            format!("{ok} / {limited} ({channels})"),
            "",
        ));
    }
    let depth = |d: &BTreeMap<String, String>| {
        d.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows.extend([
        row(
            "outbox depth after relay wait / at end",
            format!("{} / {}", depth(&depths_after_relay), depth(&depths_end)),
            "",
        ),
        row(
            "**RSS idle (1 s after listening)**",
            idle_rss.map_or("–".into(), mb),
            "",
        ),
        row("**peak RSS (VmHWM)**", peak_hwm.map_or("–".into(), mb), ""),
        row(
            "RSS end of sending / after relay / at end (sampled max)",
            format!(
                "{} / {} / {} ({})",
                rss_end_of_send.map_or("–".into(), mb),
                rss_after_relay.map_or("–".into(), mb),
                rss_end.map_or("–".into(), mb),
                mb(peak_sampled)
            ),
            "",
        ),
        row(
            "RSS every 5 s while lingering (no new events)",
            if linger_rss.is_empty() {
                "–".to_string()
            } else {
                let step = linger_rss.len().div_ceil(12).max(1);
                let picked: Vec<String> = linger_rss
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % step == 0 || *i == linger_rss.len() - 1)
                    .map(|(_, kb)| format!("{:.1}", *kb as f64 / 1024.0))
                    .collect();
                format!(
                    "{} MB (VmHWM {}; outbox then: {})",
                    picked.join(" → "),
                    peak_hwm_linger.map_or("–".into(), mb),
                    depth(&depths_linger)
                )
            },
            "",
        ),
        row(
            "CPU during sending: cadbridge / bench process (core-seconds, % of all cores)",
            format!(
                "{} / {}",
                cpu_share(child_cpu_send, run.wall()),
                cpu_share(bench_cpu_send, run.wall())
            ),
            format!("– / {}", cpu_share(ceiling_bench_cpu, ceiling.wall())),
        ),
        row(
            "other processes' CPU while sending (core-seconds, % of all cores); load avg before → after",
            format!("{}; {load0} → {load1}", cpu_share(others_send, run.wall())),
            cpu_share(ceiling_others, ceiling.wall()),
        ),
        row(
            "VM steal while sending (core-seconds)",
            machine_send.map_or("–".into(), |(_, steal)| format!("{:.2} s", steal.as_secs_f64())),
            "",
        ),
        row(
            "SQLite files at end",
            format!("{:.1} MB", db_bytes as f64 / 1e6),
            "",
        ),
        row(
            "SIGTERM → exit",
            format!("{} ({stop_status})", fmt_ms(Some(ms(stop_took)))),
            "",
        ),
    ]);
    let logs = app.logs.lock().unwrap();
    rows.push(row(
        "cadbridge log lines by level",
        format!("{:?}", logs.by_level),
        "",
    ));

    println!();
    println!("### pipeline: `{}`", opts.describe());
    println!();
    println!(
        "mix: {} | mean body {:.0} B | idle VmHWM {} | relay target 1 | Discord {}",
        work.by_type
            .iter()
            .map(|(t, c)| format!("{t} {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        body_bytes as f64 / n as f64,
        idle_hwm.map_or("–".into(), mb),
        if opts.discord {
            "on (fake, 5 msgs/5 s per channel)"
        } else {
            "off (DISCORD_TOKEN empty)"
        },
    );
    println!();
    println!("| metric | cadbridge | ceiling (minimal axum `ok`) |");
    println!("|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} |", r.metric, r.cadbridge, r.ceiling);
    }
    if !logs.notable.is_empty() {
        println!();
        println!("cadbridge warnings/errors:");
        for ((level, target, message), count) in logs.notable.iter().take(20) {
            println!("- {count} × {level} {target}: {message}");
        }
    }
    if !lost.is_empty() {
        let sample: Vec<usize> = lost.iter().copied().take(10).collect();
        println!();
        println!(
            "LOST EVENTS: {} acknowledged events never reached the game server (indices {sample:?} ...)",
            lost.len()
        );
        drop(logs);
        drop(app);
        std::process::exit(1);
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn cpu_share(cpu: Option<Duration>, wall: Duration) -> String {
    match cpu {
        None => "–".into(),
        Some(cpu) => format!(
            "{:.2} s ({:.0} %)",
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / cores()
        ),
    }
}
