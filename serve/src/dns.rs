//! Peers found by DNS (`--peers-dns NAME:PORT`): the A and AAAA records of
//! a name (a Kubernetes headless Service answers one per ready pod), looked
//! up again every few seconds.
//!
//! The messages are sans-IO ([`query`], [`answer`], RFC 1035 with an EDNS0
//! record so a large answer fits one UDP datagram); [`resolve`] is the thin
//! UDP exchange; [`Discovery`] turns successive answers into the peer list
//! a cluster is given.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A record type asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A = 1,
    Aaaa = 28,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("`{0}` is not a DNS name")]
    BadName(String),
    #[error("the answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the answer is not for this query")]
    Mismatch,
    #[error("the server answered with error code {0}")]
    Server(u8),
    #[error("the answer was truncated")]
    Truncated,
    #[error("no answer from {0} within {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The UDP payload size this resolver takes (EDNS0).
const UDP_SIZE: u16 = 4096;

/// A query for `name`'s records of `kind`, with message id `id`.
pub fn query(id: u16, name: &str, kind: RecordType) -> Result<Vec<u8>, DnsError> {
    let bad = || DnsError::BadName(name.chars().take(255).collect());
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(name.len() + 32);
    out.extend_from_slice(&id.to_be_bytes());
    // Recursion desired; one question, one additional (the OPT record).
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad());
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&(kind as u16).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    // OPT: root name, type 41, the payload size in the class field.
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(out)
}

/// The addresses in the answer to query `id`; none for a name that does
/// not exist (a Service with no ready pod).
pub fn answer(id: u16, packet: &[u8]) -> Result<Vec<IpAddr>, DnsError> {
    let mut r = Reader { packet, at: 0 };
    if r.u16()? != id {
        return Err(DnsError::Mismatch);
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed("not a response"));
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        3 => return Ok(Vec::new()),
        code => return Err(DnsError::Server(code)),
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.skip(4)?;
    for _ in 0..questions {
        r.name()?;
        r.skip(4)?;
    }
    let mut found = Vec::new();
    for _ in 0..answers {
        r.name()?;
        let kind = r.u16()?;
        let class = r.u16()?;
        r.skip(4)?;
        let len = usize::from(r.u16()?);
        let data = r.take(len)?;
        match (kind, class, len) {
            (1, 1, 4) => found.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (28, 1, 16) => {
                let mut octets = [0; 16];
                octets.copy_from_slice(data);
                found.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            // CNAMEs and the like: the server follows them for us.
            _ => {}
        }
    }
    Ok(found)
}

struct Reader<'a> {
    packet: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.packet.len())
            .ok_or(DnsError::Malformed("cut short"))?;
        let bytes = &self.packet[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), DnsError> {
        self.take(n).map(drop)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Skips a name: labels, ending with a zero or a pointer.
    fn name(&mut self) -> Result<(), DnsError> {
        for _ in 0..128 {
            let len = self.take(1)?[0];
            match len & 0xc0 {
                0xc0 => return self.skip(1),
                0 if len == 0 => return Ok(()),
                0 => self.skip(usize::from(len))?,
                _ => return Err(DnsError::Malformed("a label type that is not used")),
            }
        }
        Err(DnsError::Malformed("a name of too many labels"))
    }
}

/// The first `nameserver` of a resolv.conf text, on port 53.
pub fn nameserver(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            return None;
        }
        // A scoped IPv6 address (`fe80::1%eth0`) is not taken.
        let ip: IpAddr = words.next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

/// A `NAME:PORT` to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub port: u16,
}

/// Why a `NAME:PORT` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}`: expected NAME:PORT")]
    NoPort(String),
    #[error("`{0}`: `{1}` is not a port")]
    BadPort(String, String),
    #[error("`{0}`: {1}")]
    BadName(String, DnsError),
}

impl std::str::FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let quoted = || s.chars().take(300).collect::<String>();
        let (name, port) = s
            .rsplit_once(':')
            .ok_or_else(|| TargetError::NoPort(quoted()))?;
        let port = port
            .parse()
            .map_err(|_| TargetError::BadPort(quoted(), port.chars().take(16).collect()))?;
        query(0, name, RecordType::A).map_err(|e| TargetError::BadName(quoted(), e))?;
        Ok(Self {
            name: name.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.port)
    }
}

/// Looks up `name`'s A and AAAA records at `server` (over UDP, each
/// query tried twice within `timeout`).
pub async fn resolve(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    let mut all = Vec::new();
    for kind in [RecordType::A, RecordType::Aaaa] {
        let id = fastrand_id();
        let message = query(id, name, kind)?;
        let mut got = None;
        for _ in 0..2 {
            socket.send(&message).await?;
            let mut buf = vec![0; usize::from(UDP_SIZE)];
            let deadline = tokio::time::Instant::now() + timeout / 2;
            // Stray datagrams (an earlier try's late answer) are skipped.
            loop {
                match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => return Err(e.into()),
                    Ok(Ok(n)) => match answer(id, &buf[..n]) {
                        Err(DnsError::Mismatch) => continue,
                        other => {
                            got = Some(other?);
                            break;
                        }
                    },
                }
            }
            if got.is_some() {
                break;
            }
        }
        all.extend(got.ok_or(DnsError::Timeout(server, timeout))?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// A message id: the low bits of the clock mixed with a counter (an id
/// only tells answers apart; the socket is connected to the server).
fn fastrand_id() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(0x9e37, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (n ^ t ^ (t >> 16)) as u16
}

/// What successive lookups mean for the peer list.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    peers: Vec<SocketAddr>,
    failures: u32,
}

/// What a lookup changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The peer list is now this (sorted).
    Peers {
        list: Vec<SocketAddr>,
        added: Vec<SocketAddr>,
        removed: Vec<SocketAddr>,
    },
    /// Nothing changed.
    Same,
    /// The lookup failed: the last list stands (a DNS outage must not
    /// take every peer away).
    Kept { failures: u32 },
}

impl Discovery {
    /// The outcome of one lookup of `port`'s peers.
    pub fn update(&mut self, port: u16, looked_up: Result<Vec<IpAddr>, String>) -> Change {
        let ips = match looked_up {
            Ok(ips) => ips,
            Err(_) => {
                self.failures += 1;
                return Change::Kept {
                    failures: self.failures,
                };
            }
        };
        self.failures = 0;
        let mut list: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        list.sort();
        list.dedup();
        if list == self.peers {
            return Change::Same;
        }
        let added = list
            .iter()
            .filter(|a| !self.peers.contains(a))
            .copied()
            .collect();
        let removed = self
            .peers
            .iter()
            .filter(|a| !list.contains(a))
            .copied()
            .collect();
        self.peers = list.clone();
        Change::Peers {
            list,
            added,
            removed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `q` with `records` (type, data), built by hand.
    fn respond(q: &[u8], rcode: u8, records: &[(u16, &[u8])]) -> Vec<u8> {
        let question_end = 12 + q[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
        let mut r = q[..question_end].to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        r[10..12].copy_from_slice(&[0, 0]);
        for (kind, data) in records {
            // A pointer to the question's name.
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&kind.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 5]);
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        r
    }

    #[test]
    fn query_layout() {
        let q = query(
            0x1234,
            "weft-workers.default.svc.cluster.local.",
            RecordType::A,
        )
        .unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..25], b"\x0cweft-workers");
        assert!(query(1, "", RecordType::A).is_err());
        assert!(query(1, "a..b", RecordType::A).is_err());
        assert!(query(1, &"x".repeat(64), RecordType::A).is_err());
    }

    #[test]
    fn answers() {
        let q = query(7, "workers", RecordType::A).unwrap();
        let r = respond(
            &q,
            0,
            &[
                (1, &[127, 0, 0, 2]),
                (5, b"\x01x\x00"),
                (1, &[127, 0, 0, 3]),
            ],
        );
        assert_eq!(
            answer(7, &r).unwrap(),
            vec![IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])]
        );
        let six = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let r = respond(&q, 0, &[(28, &six)]);
        assert_eq!(answer(7, &r).unwrap(), vec![IpAddr::from(six)]);
        assert!(answer(7, &respond(&q, 3, &[])).unwrap().is_empty());
        assert!(matches!(
            answer(7, &respond(&q, 2, &[])),
            Err(DnsError::Server(2))
        ));
        assert!(matches!(answer(8, &r), Err(DnsError::Mismatch)));
        assert!(matches!(answer(7, &q), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn hostile_answers_are_errors() {
        let q = query(7, "workers", RecordType::A).unwrap();
        let r = respond(&q, 0, &[(1, &[127, 0, 0, 2])]);
        for cut in 0..r.len() {
            assert!(answer(7, &r[..cut]).is_err(), "cut at {cut}");
        }
        let mut looped = r.clone();
        looped[6..8].copy_from_slice(&[0xff, 0xff]);
        assert!(answer(7, &looped).is_err());
        let mut truncated = r;
        truncated[2] |= 0x02;
        assert!(matches!(answer(7, &truncated), Err(DnsError::Truncated)));
    }

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\n";
        assert_eq!(nameserver(text), Some("10.96.0.10:53".parse().unwrap()));
        assert_eq!(nameserver("nameserver fe80::1%eth0\n"), None);
        assert_eq!(nameserver(""), None);
    }

    #[test]
    fn targets() {
        let t: Target = "weft-workers.ns.svc.cluster.local:7300".parse().unwrap();
        assert_eq!(
            (t.name.as_str(), t.port),
            ("weft-workers.ns.svc.cluster.local", 7300)
        );
        assert!(matches!(
            "nohost".parse::<Target>(),
            Err(TargetError::NoPort(_))
        ));
        assert!(matches!(
            "a:99999".parse::<Target>(),
            Err(TargetError::BadPort(..))
        ));
        assert!(matches!(
            "a..b:1".parse::<Target>(),
            Err(TargetError::BadName(..))
        ));
    }

    #[test]
    fn discovery_follows_the_answers_and_keeps_peers_through_failures() {
        let ip = |n: u8| IpAddr::from([127, 0, 0, n]);
        let addr = |n: u8| SocketAddr::new(ip(n), 7300);
        let mut d = Discovery::default();
        assert_eq!(
            d.update(7300, Ok(vec![ip(3), ip(2), ip(2)])),
            Change::Peers {
                list: vec![addr(2), addr(3)],
                added: vec![addr(2), addr(3)],
                removed: vec![]
            }
        );
        assert_eq!(d.update(7300, Ok(vec![ip(2), ip(3)])), Change::Same);
        assert_eq!(
            d.update(7300, Err("timeout".into())),
            Change::Kept { failures: 1 }
        );
        assert_eq!(
            d.update(7300, Err("timeout".into())),
            Change::Kept { failures: 2 }
        );
        assert_eq!(
            d.update(7300, Ok(vec![ip(3), ip(4)])),
            Change::Peers {
                list: vec![addr(3), addr(4)],
                added: vec![addr(4)],
                removed: vec![addr(2)]
            }
        );
        assert_eq!(
            d.update(7300, Ok(vec![])),
            Change::Peers {
                list: vec![],
                added: vec![],
                removed: vec![addr(3), addr(4)]
            }
        );
    }
}
