//! A global state tier in a Redis server (`--state redis://HOST:PORT[/DB]`).
//!
//! The protocol (RESP2) is a sans-IO codec here ([`encode`], [`decode`]),
//! under a blocking connection. Values are Redis strings (`weft:v:KEY`),
//! appended records a list (`weft:l:KEY`). Multi-step operations (partial
//! writes, readers-writer locks) are Lua scripts, so each is atomic in the
//! server. Locks belong to an owner string unique to this host and thread;
//! waiting for one polls the server with backoff until its deadline.

use crate::locks::Locked as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::{GlobalTier, LockKind, Owner, StateError};

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Why bytes from the server are not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("malformed reply: {0}")]
    Malformed(&'static str),
    #[error("reply of {0} bytes or elements exceeds the limit")]
    TooLarge(i64),
}

/// Bulk strings and arrays larger than this are refused before allocating.
const MAX_BULK: i64 = 1 << 30;
const MAX_ARRAY: i64 = 1 << 20;
const MAX_DEPTH: usize = 8;

/// A command as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decodes one reply from the front of `input`: `Ok(None)` if more bytes
/// are needed, else the reply and how many bytes it took.
pub fn decode(input: &[u8]) -> Result<Option<(Reply, usize)>, RespError> {
    decode_at(input, 0)
}

fn line(input: &[u8]) -> Option<(&[u8], usize)> {
    let end = input.windows(2).position(|w| w == b"\r\n")?;
    Some((&input[..end], end + 2))
}

fn number(text: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(RespError::Malformed("not a number"))
}

fn decode_at(input: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::Malformed("nested too deep"));
    }
    let Some(&kind) = input.first() else {
        return Ok(None);
    };
    let Some((text, used)) = line(&input[1..]) else {
        return Ok(None);
    };
    let used = used + 1;
    let string = || String::from_utf8_lossy(text).into_owned();
    Ok(Some(match kind {
        b'+' => (Reply::Simple(string()), used),
        b'-' => (Reply::Error(string()), used),
        b':' => (Reply::Integer(number(text)?), used),
        b'$' => {
            let len = number(text)?;
            if len == -1 {
                return Ok(Some((Reply::Bulk(None), used)));
            }
            if !(0..=MAX_BULK).contains(&len) {
                return Err(RespError::TooLarge(len));
            }
            let end = used + len as usize;
            if input.len() < end + 2 {
                return Ok(None);
            }
            if &input[end..end + 2] != b"\r\n" {
                return Err(RespError::Malformed("bulk string without CRLF"));
            }
            (Reply::Bulk(Some(input[used..end].to_vec())), end + 2)
        }
        b'*' => {
            let count = number(text)?;
            if count == -1 {
                return Ok(Some((Reply::Array(None), used)));
            }
            if !(0..=MAX_ARRAY).contains(&count) {
                return Err(RespError::TooLarge(count));
            }
            let mut items = Vec::new();
            let mut at = used;
            for _ in 0..count {
                match decode_at(&input[at..], depth + 1)? {
                    Some((item, n)) => {
                        items.push(item);
                        at += n;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(Some(items)), at)
        }
        _ => return Err(RespError::Malformed("unknown reply type")),
    }))
}

/// Readers-writer lock and partial-write scripts (KEYS and ARGV as used
/// by the callers below).
const READ_LOCK: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
    redis.call('HINCRBY', KEYS[2], ARGV[1], 1) return 1";
const WRITE_LOCK: &str = "if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HLEN', KEYS[2]) > 0 \
    then return 0 end redis.call('SET', KEYS[1], ARGV[1]) return 1";
const READ_UNLOCK: &str = "local n = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') \
    if n <= 0 then return 0 end \
    if n == 1 then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HINCRBY', KEYS[2], ARGV[1], -1) end \
    return 1";
const WRITE_UNLOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('DEL', KEYS[1]) return 1 end return 0";
const GET_RANGE: &str = "local v = redis.call('GET', KEYS[1]) if not v then return 0 end \
    local off = tonumber(ARGV[1]) local len = tonumber(ARGV[2]) \
    if off + len > #v then return 1 end return string.sub(v, off + 1, off + len)";
const SET_RANGES: &str = "local v = redis.call('GET', KEYS[1]) if not v then return 0 end \
    local len = tonumber(ARGV[1]) \
    if #v > len then v = string.sub(v, 1, len) elseif #v < len then v = v .. string.rep('\\0', len - #v) end \
    for i = 2, #ARGV, 2 do local off = tonumber(ARGV[i]) local d = ARGV[i + 1] \
    v = string.sub(v, 1, off) .. d .. string.sub(v, off + #d + 1) end \
    redis.call('SET', KEYS[1], v) return 1";

struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// The global tier in a Redis server.
#[derive(Debug)]
pub struct RedisGlobal {
    address: String,
    database: u32,
    /// Makes lock owners unique across hosts sharing the server.
    host_id: String,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis address that is not `redis://HOST[:PORT][/DB]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisUrlError {
    #[error("`{0}`: expected redis://HOST:PORT[/DB]")]
    Scheme(String),
    #[error("`{0}`: the database must be a number")]
    Database(String),
    #[error("`{0}`: no host")]
    NoHost(String),
}

impl RedisGlobal {
    /// A tier for `url` (`redis://HOST:PORT[/DB]`); connects lazily.
    pub fn new(url: &str) -> Result<Self, RedisUrlError> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| RedisUrlError::Scheme(url.to_string()))?;
        let (address, database) = match rest.split_once('/') {
            Some((address, "")) => (address, 0),
            Some((address, db)) => (
                address,
                db.parse()
                    .map_err(|_| RedisUrlError::Database(url.to_string()))?,
            ),
            None => (rest, 0),
        };
        if address.is_empty() {
            return Err(RedisUrlError::NoHost(url.to_string()));
        }
        let address = if address.contains(':') {
            address.to_string()
        } else {
            format!("{address}:6379")
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            address,
            database,
            host_id: format!("{:x}-{:x}", std::process::id(), nanos),
            connection: Mutex::new(None),
        })
    }

    fn connect(&self) -> std::io::Result<Connection> {
        let target = self
            .address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let stream = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream,
            buffer: Vec::new(),
        };
        if self.database != 0 {
            let db = self.database.to_string();
            if let Reply::Error(e) = roundtrip(&mut connection, &[b"SELECT", db.as_bytes()])? {
                return Err(std::io::Error::other(e));
            }
        }
        Ok(connection)
    }

    /// Runs one command; a broken connection is dropped (the next command
    /// reconnects) and reported as `unavailable`.
    fn command(&self, args: &[&[u8]]) -> Result<Reply, StateError> {
        let mut slot = self.connection.locked();
        if slot.is_none() {
            *slot = Some(self.connect().map_err(|e| {
                tracing::warn!("state: connecting to redis at {}: {e}", self.address);
                StateError::Unavailable
            })?);
        }
        let connection = slot.as_mut().expect("connected");
        match roundtrip(connection, args) {
            Ok(Reply::Error(e)) => {
                tracing::warn!("state: redis error: {e}");
                Err(StateError::Unavailable)
            }
            Ok(reply) => Ok(reply),
            Err(e) => {
                tracing::warn!("state: redis at {}: {e}", self.address);
                *slot = None;
                Err(StateError::Unavailable)
            }
        }
    }

    fn script(&self, script: &str, keys: &[&[u8]], args: &[&[u8]]) -> Result<i64, StateError> {
        let count = keys.len().to_string();
        let mut all: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), count.as_bytes()];
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        match self.command(&all)? {
            Reply::Integer(n) => Ok(n),
            _ => Err(StateError::Unavailable),
        }
    }

    fn owner(&self, owner: Owner) -> String {
        format!("{}:{owner}", self.host_id)
    }
}

fn roundtrip(connection: &mut Connection, args: &[&[u8]]) -> std::io::Result<Reply> {
    connection.stream.write_all(&encode(args))?;
    loop {
        match decode(&connection.buffer) {
            Ok(Some((reply, used))) => {
                connection.buffer.drain(..used);
                return Ok(reply);
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        let mut chunk = [0u8; 64 << 10];
        let n = connection.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("the server closed the connection"));
        }
        connection.buffer.extend_from_slice(&chunk[..n]);
    }
}

fn value_key(key: &str) -> Vec<u8> {
    format!("weft:v:{key}").into_bytes()
}

fn log_key(key: &str) -> Vec<u8> {
    format!("weft:l:{key}").into_bytes()
}

fn lock_keys(key: &str) -> (Vec<u8>, Vec<u8>) {
    (
        format!("weft:lw:{key}").into_bytes(),
        format!("weft:lr:{key}").into_bytes(),
    )
}

impl GlobalTier for RedisGlobal {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.command(&[b"GET", &value_key(key)])? {
            Reply::Bulk(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        // One script: the length check and the read see the same value.
        let (offset, len) = (offset.to_string(), len.to_string());
        let reply = self.command(&[
            b"EVAL",
            GET_RANGE.as_bytes(),
            b"1",
            &value_key(key),
            offset.as_bytes(),
            len.as_bytes(),
        ])?;
        match reply {
            Reply::Bulk(Some(bytes)) => Ok(bytes),
            Reply::Integer(0) => Err(StateError::NotFound),
            Reply::Integer(_) => Err(StateError::OutOfBounds),
            _ => Err(StateError::Unavailable),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.command(&[b"SET", &value_key(key), value]).map(drop)
    }

    fn set_ranges(&self, key: &str, len: u64, ranges: &[(u64, &[u8])]) -> Result<(), StateError> {
        let len = len.to_string();
        let offsets: Vec<String> = ranges
            .iter()
            .map(|(offset, _)| offset.to_string())
            .collect();
        let mut args: Vec<&[u8]> = vec![len.as_bytes()];
        for (offset, (_, data)) in offsets.iter().zip(ranges) {
            args.push(offset.as_bytes());
            args.push(data);
        }
        match self.script(SET_RANGES, &[&value_key(key)], &args)? {
            1 => Ok(()),
            _ => Err(StateError::NotFound),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StateError> {
        self.command(&[b"DEL", &value_key(key), &log_key(key)])
            .map(drop)
    }

    fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError> {
        self.command(&[b"RPUSH", &log_key(key), record]).map(drop)
    }

    fn appended_count(&self, key: &str) -> Result<u32, StateError> {
        match self.command(&[b"LLEN", &log_key(key)])? {
            Reply::Integer(n) => u32::try_from(n).map_err(|_| StateError::TooLarge),
            _ => Err(StateError::Unavailable),
        }
    }

    fn read_appended(&self, key: &str, index: u32) -> Result<Option<Vec<u8>>, StateError> {
        let index = index.to_string();
        match self.command(&[b"LINDEX", &log_key(key), index.as_bytes()])? {
            Reply::Bulk(value) => Ok(value),
            _ => Err(StateError::Unavailable),
        }
    }

    fn clear_appended(&self, key: &str) -> Result<(), StateError> {
        self.command(&[b"DEL", &log_key(key)]).map(drop)
    }

    fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError> {
        let (write_key, read_key) = lock_keys(key);
        let owner = self.owner(owner);
        let script = match kind {
            LockKind::Read => READ_LOCK,
            LockKind::Write => WRITE_LOCK,
        };
        let mut pause = Duration::from_micros(100);
        loop {
            if self.script(script, &[&write_key, &read_key], &[owner.as_bytes()])? == 1 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StateError::TimedOut);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError> {
        let (write_key, read_key) = lock_keys(key);
        let owner = self.owner(owner);
        let script = match kind {
            LockKind::Read => READ_UNLOCK,
            LockKind::Write => WRITE_UNLOCK,
        };
        match self.script(script, &[&write_key, &read_key], &[owner.as_bytes()])? {
            1 => Ok(()),
            _ => Err(StateError::NotLocked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(encode(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(
            encode(&[b"SET", b"k", b""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn replies_decode_whole_or_ask_for_more() {
        let input = b"*3\r\n+OK\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n";
        let (reply, used) = decode(input).unwrap().unwrap();
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                Reply::Simple("OK".into()),
                Reply::Integer(-42),
                Reply::Bulk(Some(b"he\r\no".to_vec())),
            ]))
        );
        assert_eq!(
            decode(&input[used..]).unwrap(),
            Some((Reply::Bulk(None), 5))
        );
        // Every truncation asks for more; none is an error.
        for end in 0..used {
            assert_eq!(decode(&input[..end]), Ok(None), "at {end}");
        }
        assert_eq!(
            decode(b"-ERR wrong\r\n").unwrap().unwrap().0,
            Reply::Error("ERR wrong".into())
        );
    }

    #[test]
    fn hostile_replies_are_refused_before_allocating() {
        assert_eq!(
            decode(b"$99999999999\r\n"),
            Err(RespError::TooLarge(99999999999))
        );
        assert_eq!(decode(b"*99999999\r\n"), Err(RespError::TooLarge(99999999)));
        assert!(matches!(
            decode(b"$2\r\nabcd\r\n"),
            Err(RespError::Malformed(_))
        ));
        assert!(matches!(decode(b":12x\r\n"), Err(RespError::Malformed(_))));
        assert!(matches!(decode(b"?\r\n"), Err(RespError::Malformed(_))));
        let deep = "*1\r\n".repeat(20);
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(RespError::Malformed(_))
        ));
    }

    #[test]
    fn urls() {
        assert_eq!(RedisGlobal::new("redis://h:1/2").unwrap().address, "h:1");
        assert_eq!(RedisGlobal::new("redis://h").unwrap().address, "h:6379");
        assert_eq!(RedisGlobal::new("redis://h:1/2").unwrap().database, 2);
        assert!(RedisGlobal::new("http://h").is_err());
        assert!(RedisGlobal::new("redis://").is_err());
        assert!(RedisGlobal::new("redis://h/x").is_err());
    }
}
