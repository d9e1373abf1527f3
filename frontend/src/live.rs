//! The dashboard's live link to the server's WebSocket.
//!
//! One task owns the socket. It turns each frame into a signal update, and
//! when the socket closes (server restart, network blip) it waits a
//! jittered, exponentially growing delay and connects again, so a fleet of
//! open dashboards does not stampede a restarting server.

use std::collections::{BTreeSet, HashMap, VecDeque};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::future::{Either, select};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::Message;
use gloo_net::websocket::futures::WebSocket;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use shared::api::JobSummary;
use shared::metrics::{JobEvent, JobSnapshot};
use shared::ws::{ClientFrame, FrameError, Heartbeat, ServerFrame};

/// State of the connection as shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// First attempt, nothing heard yet.
    Connecting,
    /// Frames are arriving.
    Connected,
    /// The socket closed; the next attempt starts in `in_ms` milliseconds.
    Reconnecting {
        /// Delay before the next attempt.
        in_ms: u32,
    },
    /// The server turned the connection away for want of an API token (or
    /// for a wrong one): it is set in Settings, which reconnects at once.
    NeedsToken,
}

/// Read-only signals fed by the link task, and the way to subscribe;
/// `Copy`, so any component can take it (it is also provided as context).
#[derive(Debug, Clone, Copy)]
pub struct LiveLink {
    /// Connection state for the indicator.
    pub conn: ReadSignal<Conn>,
    /// The newest heartbeat, if any arrived on this or an earlier socket.
    pub last_heartbeat: ReadSignal<Option<Heartbeat>>,
    /// The job list, while someone watches it.
    pub jobs: ReadSignal<Vec<JobSummary>>,
    /// The newest snapshot of each subscribed job.
    pub snapshots: ReadSignal<HashMap<String, JobSnapshot>>,
    /// Recent throughput of each listed job, oldest first, for the job
    /// table's sparklines (kept here so they survive page changes).
    pub trails: ReadSignal<HashMap<String, VecDeque<f64>>>,
    /// Events of each subscribed job (state changes, tunes), oldest first;
    /// pages add what they fetched over REST with [`LiveLink::add_events`].
    pub events: RwSignal<HashMap<String, Vec<JobEvent>>>,
    /// The newest version of each subscribed sweep or soak (its page reads
    /// it again over REST when this moves).
    pub sweeps: RwSignal<HashMap<String, u64>>,
    /// The workers' census `(version, active, lost)`, while someone
    /// watches it (the page reads the list again over REST when it moves).
    pub workers: RwSignal<Option<(u64, u32, u32)>>,
    /// What to subscribe to (again after every reconnect).
    wanted: RwSignal<BTreeSet<Want>>,
    out: StoredValue<UnboundedSender<ClientFrame>>,
    /// Cuts a reconnect wait short (a token was just saved).
    kick: StoredValue<UnboundedSender<()>>,
}

/// A standing subscription.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    Jobs,
    Job(String),
    Sweep(String),
    Workers,
}

impl Want {
    fn frame(&self) -> ClientFrame {
        match self {
            Want::Jobs => ClientFrame::SubscribeJobs,
            Want::Job(job) => ClientFrame::Subscribe { job: job.clone() },
            Want::Sweep(sweep) => ClientFrame::SubscribeSweep {
                sweep: sweep.clone(),
            },
            Want::Workers => ClientFrame::SubscribeWorkers,
        }
    }
}

/// First reconnect delay (before jitter).
pub const BACKOFF_BASE_MS: u32 = 500;
/// Longest reconnect delay (before jitter).
pub const BACKOFF_CAP_MS: u32 = 10_000;

/// Delay before reconnect attempt `attempt` (0-based): the base doubles up
/// to the cap, and "equal jitter" keeps it between half and all of that,
/// with `unit` a random number in `[0, 1)`.
pub fn backoff_ms(attempt: u32, unit: f64) -> u32 {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP_MS);
    let half = ceiling / 2;
    half + (f64::from(ceiling - half) * unit.clamp(0.0, 1.0)) as u32
}

/// `ws://` or `wss://` URL of the server's WebSocket, derived from the
/// page's own address so the dashboard works behind any host name, with the
/// stored API token as `?token=` (a browser's WebSocket cannot send
/// headers). Read at each attempt, so a newly saved token is used.
fn ws_url() -> String {
    let location = web_sys::window().expect("a browser window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_else(|_| "127.0.0.1:8080".into());
    let query = crate::api::token()
        .map(|t| format!("?token={}", js_sys::encode_uri_component(&t)))
        .unwrap_or_default();
    format!("{scheme}://{host}{}{query}", shared::WS_PATH)
}

impl LiveLink {
    /// Keeps the job list coming (on this socket and after reconnects).
    pub fn watch_jobs(&self) {
        self.want(Want::Jobs);
    }

    /// Keeps a job's snapshots coming.
    pub fn watch_job(&self, job: &str) {
        self.want(Want::Job(job.to_owned()));
    }

    /// Keeps a sweep's (or soak's) changes coming.
    pub fn watch_sweep(&self, sweep: &str) {
        self.want(Want::Sweep(sweep.to_owned()));
    }

    /// Keeps the workers' census coming.
    pub fn watch_workers(&self) {
        self.want(Want::Workers);
    }

    /// Tries to connect again now rather than after the backoff delay.
    pub fn reconnect_now(&self) {
        self.kick.with_value(|k| {
            let _ = k.unbounded_send(());
        });
    }

    /// Adds events fetched over REST (those already known are skipped).
    pub fn add_events(&self, job: &str, new: Vec<JobEvent>) {
        self.events
            .update(|m| merge_events(m.entry(job.to_owned()).or_default(), new));
    }

    fn want(&self, w: Want) {
        let frame = w.frame();
        let new = self.wanted.try_update(|set| set.insert(w)).unwrap_or(false);
        if new {
            self.out.with_value(|out| {
                let _ = out.unbounded_send(frame);
            });
        }
    }

    /// Creates the signals and starts the connection task.
    pub fn start() -> Self {
        let (conn, set_conn) = signal(Conn::Connecting);
        let (last_heartbeat, set_heartbeat) = signal(None::<Heartbeat>);
        let (jobs, set_jobs) = signal(Vec::<JobSummary>::new());
        let (snapshots, set_snapshots) = signal(HashMap::<String, JobSnapshot>::new());
        let (trails, set_trails) = signal(HashMap::<String, VecDeque<f64>>::new());
        let events = RwSignal::new(HashMap::<String, Vec<JobEvent>>::new());
        let sweeps = RwSignal::new(HashMap::<String, u64>::new());
        let workers = RwSignal::new(None::<(u64, u32, u32)>);
        let wanted = RwSignal::new(BTreeSet::<Want>::new());
        let (tx, mut rx): (UnboundedSender<ClientFrame>, UnboundedReceiver<ClientFrame>) =
            unbounded();
        let (kick, mut kicked) = unbounded::<()>();
        leptos::task::spawn_local(async move {
            let mut attempt = 0u32;
            loop {
                // Whether this socket carried any frame.
                let mut heard = false;
                match WebSocket::open(&ws_url()) {
                    Ok(socket) => {
                        let (mut sink, mut stream) = socket.split();
                        loop {
                            let msg = match select(stream.next(), rx.next()).await {
                                Either::Left((Some(msg), _)) => msg,
                                Either::Left((None, _)) => break,
                                Either::Right((Some(frame), _)) => {
                                    if sink.send(Message::Text(frame.to_json())).await.is_err() {
                                        break;
                                    }
                                    continue;
                                }
                                Either::Right((None, _)) => return,
                            };
                            let text = match msg {
                                Ok(Message::Text(text)) => text,
                                Ok(Message::Bytes(_)) => continue,
                                Err(_) => break,
                            };
                            // Everything wanted so far goes out again once
                            // the server has spoken: sending on a socket that
                            // never opened (server still down) only upsets
                            // the browser.
                            if !heard {
                                heard = true;
                                // Connected: a reconnect asked for meanwhile
                                // is done, and must not cut the next wait.
                                while kicked.try_recv().is_ok() {}
                                for w in wanted.get_untracked() {
                                    let _ = sink.send(Message::Text(w.frame().to_json())).await;
                                }
                            }
                            match ServerFrame::parse(&text) {
                                Ok(ServerFrame::Heartbeat(beat)) => {
                                    attempt = 0;
                                    set_conn.set(Conn::Connected);
                                    set_heartbeat.set(Some(beat));
                                }
                                Ok(ServerFrame::Jobs { jobs }) => {
                                    set_trails.update(|t| extend_trails(t, &jobs));
                                    set_jobs.set(jobs);
                                }
                                Ok(ServerFrame::Snapshot { job, snapshot }) => {
                                    set_snapshots.update(|m| {
                                        m.insert(job, *snapshot);
                                    });
                                }
                                Ok(ServerFrame::Error { message, .. }) => {
                                    leptos::logging::warn!("server: {message}");
                                }
                                Ok(ServerFrame::Event { job, event }) => {
                                    events.update(|m| {
                                        merge_events(m.entry(job).or_default(), [event])
                                    });
                                }
                                Ok(ServerFrame::State { .. }) => {}
                                Ok(ServerFrame::Sweep {
                                    sweep,
                                    version,
                                    state,
                                }) => {
                                    // Once finished it is not pushed again:
                                    // a new subscription must be able to ask.
                                    if !state.is_running() {
                                        wanted.update(|w| {
                                            w.remove(&Want::Sweep(sweep.clone()));
                                        });
                                    }
                                    sweeps.update(|m| {
                                        m.insert(sweep, version);
                                    });
                                }
                                Ok(ServerFrame::Workers {
                                    version,
                                    active,
                                    lost,
                                }) => workers.set(Some((version, active, lost))),
                                // A newer server may send frames we do not know.
                                Err(FrameError::UnknownType(_)) => {}
                                Err(err) => leptos::logging::warn!("ignoring frame: {err}"),
                            }
                        }
                    }
                    Err(err) => leptos::logging::warn!("cannot open WebSocket: {err}"),
                }
                let delay = backoff_ms(attempt, js_sys::Math::random());
                attempt = attempt.saturating_add(1);
                // A socket refused before its first frame may be a missing
                // or wrong token: ask the REST API, which says so.
                let refused = !heard
                    && matches!(
                        crate::api::status("/api/v1/jobs?limit=1").await,
                        Some(401 | 403)
                    );
                set_conn.set(if refused {
                    Conn::NeedsToken
                } else {
                    Conn::Reconnecting { in_ms: delay }
                });
                if let Either::Right(_) =
                    select(TimeoutFuture::new(delay), Box::pin(kicked.next())).await
                {
                    attempt = 0;
                }
            }
        });
        Self {
            conn,
            last_heartbeat,
            jobs,
            snapshots,
            trails,
            events,
            sweeps,
            workers,
            wanted,
            out: StoredValue::new(tx),
            kick: StoredValue::new(kick),
        }
    }
}

/// Adds events not yet in `known` and keeps them in time order: the socket
/// replays a job's events after each (re)subscription, and a page may also
/// fetch them over REST.
pub fn merge_events(known: &mut Vec<JobEvent>, new: impl IntoIterator<Item = JobEvent>) {
    for e in new {
        if !known.contains(&e) {
            known.push(e);
        }
    }
    known.sort_by_key(|e| e.elapsed_ms);
}

/// Points kept per sparkline.
pub const TRAIL_POINTS: usize = 60;

/// Appends each running job's throughput to its trail, capped at
/// [`TRAIL_POINTS`]; forgets jobs no longer listed.
pub fn extend_trails(trails: &mut HashMap<String, VecDeque<f64>>, jobs: &[JobSummary]) {
    trails.retain(|id, _| jobs.iter().any(|j| &j.id == id));
    for j in jobs.iter().filter(|j| !j.state.is_finished()) {
        let t = trails.entry(j.id.clone()).or_default();
        t.push_back(j.throughput);
        if t.len() > TRAIL_POINTS {
            t.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, state: shared::metrics::JobState, throughput: f64) -> JobSummary {
        JobSummary {
            id: id.into(),
            name: id.into(),
            template: None,
            state,
            created_at_ms: 0,
            elapsed_ms: 0,
            accounting: Default::default(),
            throughput,
            p99_us: 0,
        }
    }

    #[test]
    fn replayed_events_are_not_doubled() {
        use shared::metrics::EventKind;
        let tune = |at: u64| JobEvent {
            at_ms: at,
            elapsed_ms: at,
            kind: EventKind::Tuned {
                stage: "io".into(),
                field: "workers".into(),
                from: 1.0,
                to: 2.0,
            },
        };
        let mut known = vec![tune(20)];
        merge_events(&mut known, [tune(10), tune(20)]);
        merge_events(&mut known, [tune(10)]);
        assert_eq!(known, vec![tune(10), tune(20)]);
    }

    #[test]
    fn trails_grow_for_running_jobs_cap_and_forget_unlisted_ones() {
        use shared::metrics::JobState::{Running, Stopped};
        let mut trails = HashMap::new();
        for i in 0..(TRAIL_POINTS + 5) {
            extend_trails(
                &mut trails,
                &[job("a", Running, i as f64), job("b", Stopped, 1.0)],
            );
        }
        assert_eq!(trails["a"].len(), TRAIL_POINTS);
        assert_eq!(trails["a"].back(), Some(&((TRAIL_POINTS + 4) as f64)));
        assert!(!trails.contains_key("b"), "finished jobs do not move");
        extend_trails(&mut trails, &[job("c", Running, 2.0)]);
        assert_eq!(trails.keys().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn backoff_doubles_then_caps_with_equal_jitter() {
        assert_eq!(backoff_ms(0, 0.0), 250);
        assert_eq!(backoff_ms(0, 1.0), 500);
        assert_eq!(backoff_ms(1, 1.0), 1000);
        assert_eq!(backoff_ms(3, 0.0), 2000);
        for attempt in [5, 6, 30, u32::MAX] {
            assert_eq!(backoff_ms(attempt, 0.0), BACKOFF_CAP_MS / 2, "{attempt}");
            assert_eq!(
                backoff_ms(attempt, 0.999_999),
                BACKOFF_CAP_MS - 1,
                "{attempt}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_half_and_all_of_the_ceiling() {
        for attempt in 0..8 {
            let lo = backoff_ms(attempt, 0.0);
            let hi = backoff_ms(attempt, 1.0);
            for i in 0..=10 {
                let d = backoff_ms(attempt, f64::from(i) / 10.0);
                assert!(
                    lo <= d && d <= hi,
                    "attempt {attempt}: {d} not in {lo}..={hi}"
                );
            }
            assert_eq!(hi, 2 * lo);
        }
    }
}
