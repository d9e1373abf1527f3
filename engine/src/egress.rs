//! Where a job may connect: the `http` operation, the `http` sink and the
//! `postgres` sink reach out of the process.
//!
//! Run on one's own machine (`queuelab run`) they may reach anything
//! ([`Egress::Anywhere`]). On a shared server ([`Egress::Only`]) they reach
//! only what an [`AllowList`] names, and that is enforced where it cannot
//! be bypassed:
//!
//! * at job creation, a URL whose host (and port) is not on the list is
//!   refused with its field (`Egress::check_spec`);
//! * at connect time, the client's resolver keeps only the addresses the
//!   list admits, so a name re-pointed after the check (DNS rebinding) at
//!   loopback, a private network or a cloud metadata address connects
//!   nowhere;
//! * redirects are followed (at most `MAX_REDIRECTS`) only to URLs on
//!   the list.
//!
//! Failures are told in four words only — "refused by policy",
//! "unreachable", "timed out", "HTTP `<status>`" — so dead letters cannot be
//! used to map a network (no OS error text, no refused-versus-closed).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::Url;
use shared::spec::{FieldError, OpSpec, PipelineSpec, SinkSpec, SpecError};

/// Most redirects an allow-listed client follows for one request.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// The error reason of a request the policy stopped.
pub(crate) const REFUSED: &str = "refused by policy";
/// The error reason of a request that could not connect, whatever the cause.
pub(crate) const UNREACHABLE: &str = "unreachable";
/// The error reason of a request that ran out of time.
pub(crate) const TIMED_OUT: &str = "timed out";

/// A host the allow-list admits: by name or by address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostSpec {
    /// A DNS name, lower case, without a trailing dot.
    Name(String),
    /// An IP address.
    Ip(IpAddr),
}

/// One entry of an allow-list: `host[:port]` (a name or an IP address,
/// any port when none is given) or a network in CIDR form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry(Entry);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A host, on one port or on any.
    Host {
        /// The host.
        host: HostSpec,
        /// The only port allowed, or any.
        port: Option<u16>,
        /// Only URLs whose path is this or below (the built-in target).
        path: Option<String>,
    },
    /// Every address of a network, on any port.
    Net {
        /// The network's address.
        addr: IpAddr,
        /// Bits of its prefix.
        prefix: u8,
    },
}

/// Why a text is not an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not an allow-list entry: {why} (expected host[:port] or a CIDR like 10.0.0.0/8)"
)]
pub struct BadEntry {
    text: String,
    why: &'static str,
}

/// Why a destination a spec names is refused; the message is shown under
/// the field that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The text does not parse as a URL.
    #[error("`{0}` is not a valid URL")]
    NotAUrl(String),
    /// The text does not parse as a PostgreSQL connection string.
    #[error("is not a valid PostgreSQL connection string")]
    NotPostgres,
    /// A host (or address, or port) is not on the list.
    #[error("`{0}` is not on the server's outbound allow-list (--http-allow)")]
    NotAllowed(String),
}

impl AllowEntry {
    /// Parses `host`, `host:port`, `1.2.3.4[:port]`, `[::1][:port]`, `::1`,
    /// or a CIDR such as `10.0.0.0/8`.
    pub fn parse(text: &str) -> Result<Self, BadEntry> {
        Entry::parse(text).map(AllowEntry)
    }

    /// `host:port`, but only for URLs under `path` (such as `/target`).
    pub fn under_path(host: &str, port: u16, path: &str) -> Result<Self, BadEntry> {
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => HostSpec::Ip(ip),
            Err(_) => HostSpec::Name(domain(host).ok_or_else(|| BadEntry {
                text: host.to_owned(),
                why: "not a host name",
            })?),
        };
        Ok(AllowEntry(Entry::Host {
            host,
            port: Some(port),
            path: Some(path.trim_end_matches('/').to_owned()),
        }))
    }
}

impl Entry {
    /// Parses `host`, `host:port`, `1.2.3.4[:port]`, `[::1][:port]`, `::1`,
    /// or a CIDR such as `10.0.0.0/8`.
    fn parse(text: &str) -> Result<Self, BadEntry> {
        let text = text.trim();
        let bad = |why: &'static str| BadEntry {
            text: text.to_owned(),
            why,
        };
        if text.contains("://") {
            return Err(bad("write the host without a scheme"));
        }
        if let Some((addr, bits)) = text.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad("the prefix length is out of range"))?;
            return Ok(Entry::Net { addr, prefix });
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Entry::host(HostSpec::Ip(ip), None));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let ip: IpAddr = v6.parse().map_err(|_| bad("not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    parse_port(p.strip_prefix(':').unwrap_or(p)).ok_or_else(|| bad("bad port"))?,
                ),
            };
            (HostSpec::Ip(ip), port)
        } else {
            let (host, port) = match text.rsplit_once(':') {
                Some((h, p)) => (h, Some(parse_port(p).ok_or_else(|| bad("bad port"))?)),
                None => (text, None),
            };
            let host = match host.parse::<IpAddr>() {
                Ok(ip) => HostSpec::Ip(ip),
                Err(_) => HostSpec::Name(domain(host).ok_or_else(|| bad("not a host name"))?),
            };
            (host, port)
        };
        Ok(Entry::host(host, port))
    }

    fn host(host: HostSpec, port: Option<u16>) -> Self {
        Entry::Host {
            host,
            port,
            path: None,
        }
    }

    /// Whether this entry admits `host` on `port` for a URL path `path`.
    fn admits(&self, host: &HostSpec, port: u16, url_path: &str) -> bool {
        match self {
            Entry::Host {
                host: h,
                port: p,
                path,
            } => {
                h == host
                    && p.is_none_or(|p| p == port)
                    && path.as_deref().is_none_or(|prefix| {
                        url_path == prefix
                            || url_path
                                .strip_prefix(prefix)
                                .is_some_and(|rest| rest.starts_with('/'))
                    })
            }
            Entry::Net { .. } => match host {
                HostSpec::Ip(ip) => self.contains(*ip),
                HostSpec::Name(_) => false,
            },
        }
    }

    /// Whether `ip` is this entry's address or inside its network.
    fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            Entry::Host {
                host: HostSpec::Ip(a),
                ..
            } => a == ip,
            Entry::Host { .. } => false,
            Entry::Net { addr, prefix } => match (addr, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            },
        }
    }
}

impl FromStr for AllowEntry {
    type Err = BadEntry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllowEntry::parse(s)
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse().ok()
}

/// A DNS name, normalised: lower case, no trailing dot; `None` if it is
/// not one.
fn domain(text: &str) -> Option<String> {
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    ok.then_some(name)
}

/// The hosts (and networks) a confined job may reach.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

impl AllowList {
    /// A list of these entries (empty: nothing is reachable).
    pub fn new(entries: Vec<AllowEntry>) -> Self {
        Self { entries }
    }

    /// Whether a request may go to `url`.
    pub(crate) fn permits(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let (Some(host), Some(port)) = (url_host(url), url.port_or_known_default()) else {
            return false;
        };
        self.entries
            .iter()
            .any(|e| e.0.admits(&host, port, url.path()))
    }

    /// Whether a connection to `host:port` may be made (no URL path:
    /// path-limited entries do not count).
    fn permits_host(&self, host: &HostSpec, port: u16) -> bool {
        self.entries.iter().any(|e| match &e.0 {
            Entry::Host { path: Some(_), .. } => false,
            e => e.admits(host, port, "/"),
        })
    }

    /// Whether `name`, resolved at connect time, may be reached at `ip`:
    /// when the address is on the list itself, or when the name is and the
    /// address is an ordinary public one. So a listed name re-pointed at
    /// loopback, a private network or a link-local (metadata) address gets
    /// nothing. `localhost` is the other way round: loopback by definition,
    /// so only loopback.
    fn permits_resolved(&self, name: &str, ip: IpAddr) -> bool {
        if self.entries.iter().any(|e| e.0.contains(ip)) {
            return true;
        }
        let Some(name) = domain(name) else {
            return false;
        };
        let listed = self
            .entries
            .iter()
            .any(|e| matches!(&e.0, Entry::Host { host: HostSpec::Name(n), .. } if *n == name));
        listed
            && if name == "localhost" {
                ip.is_loopback()
            } else {
                is_public(ip)
            }
    }
}

/// The host of a URL, as the allow-list compares it.
fn url_host(url: &Url) -> Option<HostSpec> {
    // The parser has already normalised IPv4 forms (`0x7f.1`) to dotted
    // quads and put IPv6 in brackets.
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => HostSpec::Ip(ip),
        Err(_) => HostSpec::Name(domain(bare)?),
    })
}

/// An address on the public internet: not loopback, private, shared
/// (CGNAT), link-local, documentation, benchmarking, multicast, reserved
/// or unspecified. IPv6 forms that embed an IPv4 address are judged by it.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // Global unicast is 2000::/3; inside it, documentation
            // (2001:db8::/32), 6to4 (2002::/16) and Teredo (2001::/32)
            // may hide other addresses. NAT64 (64:ff9b::/96) embeds IPv4.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                let v4 = std::net::Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
                return is_public(IpAddr::V4(v4));
            }
            (s[0] & 0xe000) == 0x2000
                && !(s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0))
                && s[0] != 0x2002
        }
    }
}

/// The error a client gives for what the policy stopped: its presence in
/// a request error's sources is how [`describe`] tells it apart.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED)
    }
}

impl std::error::Error for Refused {}

/// What went wrong with a request, in the few words a dead letter may
/// carry: [`REFUSED`], [`TIMED_OUT`] or [`UNREACHABLE`].
pub(crate) fn describe(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<Refused>() {
            return REFUSED;
        }
        source = e.source();
    }
    if error.is_redirect() {
        REFUSED
    } else if error.is_timeout() {
        TIMED_OUT
    } else {
        UNREACHABLE
    }
}

/// Resolves names with the system resolver, then drops every address the
/// list does not admit for that name.
struct Filtered(Arc<AllowList>);

impl reqwest::dns::Resolve for Filtered {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let list = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|e| {
                    tracing::debug!(%name, error = %e, "cannot resolve");
                    Box::<dyn std::error::Error + Send + Sync>::from(UNREACHABLE)
                })?;
            let kept: Vec<SocketAddr> = found
                .filter(|a| list.permits_resolved(&name, a.ip()))
                .collect();
            if kept.is_empty() {
                tracing::info!(%name, "outbound connection refused by the allow-list");
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Where a job may connect.
#[derive(Debug, Clone, Default)]
pub enum Egress {
    /// Anywhere (`queuelab run` on one's own machine).
    #[default]
    Anywhere,
    /// Only to what the list admits (`queuelab serve`).
    Only(Arc<AllowList>),
}

impl Egress {
    /// An HTTP client that enforces this policy: for [`Egress::Only`], no
    /// proxy, a filtering resolver and a redirect policy that follows only
    /// admitted URLs.
    pub(crate) fn client(&self) -> reqwest::Client {
        match self {
            Egress::Anywhere => reqwest::Client::new(),
            Egress::Only(list) => {
                let redirects = list.clone();
                reqwest::Client::builder()
                    .no_proxy()
                    .dns_resolver(Arc::new(Filtered(list.clone())))
                    .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                        // `previous` starts with the original URL.
                        if attempt.previous().len() > MAX_REDIRECTS
                            || !redirects.permits(attempt.url())
                        {
                            tracing::info!(url = %attempt.url(), "redirect refused by the allow-list");
                            attempt.error(Refused)
                        } else {
                            attempt.follow()
                        }
                    }))
                    .build()
                    .expect("an HTTP client without TLS always builds")
            }
        }
    }

    /// Checks one URL `field` names: `Err` with the message to show.
    pub(crate) fn check_url(&self, url: &str) -> Result<(), Refusal> {
        let Egress::Only(list) = self else {
            return Ok(());
        };
        let parsed = Url::parse(url).map_err(|_| Refusal::NotAUrl(url.to_owned()))?;
        if list.permits(&parsed) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed(url.to_owned()))
        }
    }

    /// Checks a PostgreSQL connection string: every host (and `hostaddr`)
    /// it names, on its port, must be on the list. `env:NAME` strings come
    /// from the server's own environment and are trusted.
    pub(crate) fn check_postgres(&self, url: &str) -> Result<(), Refusal> {
        let Egress::Only(list) = self else {
            return Ok(());
        };
        if url.starts_with("env:") {
            return Ok(());
        }
        let refused = || Refusal::NotAllowed(url.to_owned());
        let config = postgres::Config::from_str(url).map_err(|_| Refusal::NotPostgres)?;
        let ports = config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let hosts = config.get_hosts();
        let addrs = config.get_hostaddrs();
        if hosts.is_empty() && addrs.is_empty() {
            return Err(refused());
        }
        for (i, host) in hosts.iter().enumerate() {
            let host = match host {
                postgres::config::Host::Tcp(h) => match h.parse::<IpAddr>() {
                    Ok(ip) => HostSpec::Ip(ip),
                    Err(_) => HostSpec::Name(domain(h).ok_or_else(refused)?),
                },
                // A local socket is the server's own machine.
                #[cfg(unix)]
                postgres::config::Host::Unix(_) => return Err(refused()),
            };
            if !list.permits_host(&host, port(i)) {
                return Err(refused());
            }
        }
        for (i, ip) in addrs.iter().enumerate() {
            if !list.permits_host(&HostSpec::Ip(*ip), port(i)) {
                return Err(refused());
            }
        }
        Ok(())
    }

    /// Checks a broker URL (`nats://host:port`): its host on its port
    /// (4222 when omitted) must be on the list. `env:…` names the server's
    /// own configured broker and is trusted.
    pub(crate) fn check_nats(&self, url: &str) -> Result<(), Refusal> {
        let Egress::Only(list) = self else {
            return Ok(());
        };
        if url.starts_with("env:") {
            return Ok(());
        }
        let refused = || Refusal::NotAllowed(url.to_owned());
        let parsed = Url::parse(url).map_err(|_| Refusal::NotAUrl(url.to_owned()))?;
        let text = parsed.host_str().ok_or_else(refused)?;
        let text = text.trim_start_matches('[').trim_end_matches(']');
        let host = match text.parse::<IpAddr>() {
            Ok(ip) => HostSpec::Ip(ip),
            Err(_) => HostSpec::Name(domain(text).ok_or_else(refused)?),
        };
        if list.permits_host(&host, parsed.port().unwrap_or(4222)) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Checks every destination `spec` names, reporting each refusal with
    /// its field (`stages[2].op.url`, `sink.url`).
    pub(crate) fn check_spec(&self, spec: &PipelineSpec) -> Result<(), SpecError> {
        let mut errors = Vec::new();
        for (i, stage) in spec.stages.iter().enumerate() {
            if let OpSpec::Http { url, .. } = &stage.op
                && let Err(refusal) = self.check_url(url)
            {
                errors.push(FieldError {
                    path: format!("stages[{i}].op.url"),
                    message: refusal.to_string(),
                });
            }
            if let Some(t) = &stage.transport
                && let Err(refusal) = self.check_nats(t.url())
            {
                errors.push(FieldError {
                    path: format!("stages[{i}].transport.url"),
                    message: refusal.to_string(),
                });
            }
        }
        let sink = match &spec.sink {
            SinkSpec::Http { url, .. } => self.check_url(url),
            SinkSpec::Postgres { url, .. } => self.check_postgres(url),
            _ => Ok(()),
        };
        if let Err(refusal) = sink {
            errors.push(FieldError {
                path: "sink.url".into(),
                message: refusal.to_string(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecError { errors })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(entries.iter().map(|e| e.parse().unwrap()).collect())
    }

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    #[test]
    fn entries_parse_or_say_what_is_expected() {
        for ok in [
            "api.example.com",
            "API.Example.com.:8443",
            "127.0.0.1",
            "127.0.0.1:9000",
            "::1",
            "[::1]:80",
            "10.0.0.0/8",
            "fd00::/8",
        ] {
            AllowEntry::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "http://x",
            "10.0.0.0/33",
            "x:99999",
            "[::1",
            "a b",
            "*.example.com",
        ] {
            let err = AllowEntry::parse(bad).unwrap_err();
            assert!(err.to_string().contains("host[:port]"), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_are_admitted_by_host_port_and_network() {
        let l = list(&[
            "api.example.com:8080",
            "127.0.0.1:9000",
            "10.1.0.0/16",
            "any.example",
        ]);
        assert!(l.permits(&url("http://api.example.com:8080/x")));
        assert!(l.permits(&url("http://API.EXAMPLE.COM:8080/x")));
        assert!(!l.permits(&url("http://api.example.com/x")), "port 80");
        assert!(l.permits(&url("http://127.0.0.1:9000/")));
        assert!(!l.permits(&url("http://127.0.0.1:9001/")));
        assert!(
            !l.permits(&url("http://localhost:9000/")),
            "names are not addresses"
        );
        assert!(l.permits(&url("http://10.1.200.3:1234/")));
        assert!(!l.permits(&url("http://10.2.0.1/")));
        assert!(l.permits(&url("http://any.example:1/")));
        assert!(!l.permits(&url("ftp://any.example/")));
        // Tricks the URL parser normalises to the addresses they are.
        assert!(!l.permits(&url("http://2130706433:9001/")));
        assert!(l.permits(&url("http://0x7f.0.0.1:9000/")));
        assert!(!l.permits(&url("http://[::ffff:127.0.0.1]:9000/")));
        assert!(!AllowList::default().permits(&url("http://127.0.0.1/")));
    }

    #[test]
    fn a_path_limited_entry_admits_only_its_path() {
        let l = AllowList::new(vec![
            AllowEntry::under_path("127.0.0.1", 8080, "/target").unwrap(),
        ]);
        assert!(l.permits(&url("http://127.0.0.1:8080/target")));
        assert!(l.permits(&url("http://127.0.0.1:8080/target/x?delay_ms=1")));
        assert!(!l.permits(&url("http://127.0.0.1:8080/targets")));
        assert!(!l.permits(&url("http://127.0.0.1:8080/api/v1/jobs")));
        assert!(!l.permits(&url("http://127.0.0.1:8080/target/../api/v1/jobs")));
        assert!(!l.permits(&url("http://127.0.0.1:8080/target/%2e%2e/api")));
        assert!(!l.permits_host(&HostSpec::Ip("127.0.0.1".parse().unwrap()), 8080));
    }

    #[test]
    fn resolved_addresses_must_be_listed_or_public_for_a_listed_name() {
        let l = list(&["api.example.com", "localhost:7000", "10.9.0.0/16"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.permits_resolved("api.example.com", ip("93.184.216.34")));
        for internal in [
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "192.168.1.1",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(
                !l.permits_resolved("api.example.com", ip(internal)),
                "{internal}"
            );
        }
        assert!(
            l.permits_resolved("api.example.com", ip("10.9.3.4")),
            "listed network"
        );
        assert!(l.permits_resolved("localhost", ip("127.0.0.1")));
        assert!(l.permits_resolved("localhost", ip("::1")));
        assert!(!l.permits_resolved("localhost", ip("93.184.216.34")));
        assert!(!l.permits_resolved("other.example", ip("93.184.216.34")));
        assert!(is_public(ip("2606:4700::1111")));
        assert!(!is_public(ip("64:ff9b::7f00:1")));
        assert!(!is_public(ip("2001:db8::1")));
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let spec = PipelineSpec::parse(
            r#"
name = "x"
source = { kind = "synthetic", count = 1 }
[[stages]]
name = "a"
op = { kind = "spin", micros = 1 }
[[stages]]
name = "b"
op = { kind = "http", url = "http://127.0.0.1:9/x" }
[[stages]]
name = "c"
op = { kind = "http", url = "http://ok.example/x" }
[sink]
kind = "http"
url = "http://169.254.169.254/latest"
"#,
            shared::spec::SpecFormat::Toml,
        )
        .unwrap();
        assert!(Egress::Anywhere.check_spec(&spec).is_ok());
        let only = Egress::Only(Arc::new(list(&["ok.example"])));
        let err = only.check_spec(&spec).unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(fields, ["stages[1].op.url", "sink.url"]);
        assert!(err.errors[0].message.contains("allow-list"), "{err}");
    }

    #[test]
    fn postgres_hosts_are_checked_like_urls() {
        let only = Egress::Only(Arc::new(list(&["127.0.0.1:5432", "db.example"])));
        assert!(
            only.check_postgres("postgres://u@127.0.0.1:5432/db")
                .is_ok()
        );
        assert!(
            only.check_postgres("postgres://u@127.0.0.1/db").is_ok(),
            "5432 by default"
        );
        assert!(
            only.check_postgres("postgres://u@db.example:6000/db")
                .is_ok()
        );
        assert!(only.check_postgres("env:QUEUELAB_PG_URL").is_ok());
        for bad in [
            "postgres://u@127.0.0.1:5433/db",
            "postgres://u@10.0.0.1/db",
            "postgres://u@db.example,10.0.0.1/db",
            "postgres://u@db.example/db?hostaddr=10.0.0.1",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            "postgres:///db",
        ] {
            assert!(only.check_postgres(bad).is_err(), "{bad}");
        }
        assert!(
            Egress::Anywhere
                .check_postgres("postgres://u@10.0.0.1/db")
                .is_ok()
        );
    }
}
