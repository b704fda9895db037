//! Typed client settings with the guide's defaults, turned into librdkafka properties.
//! Anything librdkafka understands can be passed through `extra`; it wins over the typed
//! fields, so users can tune what this layer does not name.

use rdkafka::ClientConfig;

use super::error::{Error, Result};
use super::secrets::{self, MaskedPairs};

/// Where a consumer group without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

impl OffsetReset {
    pub fn parse(value: &str) -> Result<Self> {
        match value.to_ascii_lowercase().as_str() {
            "earliest" | "beginning" | "smallest" => Ok(OffsetReset::Earliest),
            "latest" | "end" | "largest" => Ok(OffsetReset::Latest),
            other => Err(Error::Config(format!(
                "auto_offset_reset must be 'earliest' or 'latest', not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        }
    }
}

#[derive(Clone)]
pub struct ProducerSettings {
    pub bootstrap_servers: String,
    pub client_id: String,
    pub acks: String,
    pub compression_type: String,
    pub linger_ms: u32,
    pub batch_size: u32,
    pub enable_idempotence: bool,
    /// librdkafka `message.timeout.ms`: how long one delivery may take before it fails.
    pub delivery_timeout_ms: u32,
    pub extra: Vec<(String, String)>,
}

impl ProducerSettings {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ProducerSettings {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "tradecore".into(),
            acks: "all".into(),
            compression_type: "lz4".into(),
            linger_ms: 10,
            batch_size: 16384,
            enable_idempotence: true,
            delivery_timeout_ms: 30_000,
            extra: Vec::new(),
        }
    }

    pub fn client_config(&self) -> Result<ClientConfig> {
        let acks = match self.acks.to_ascii_lowercase().as_str() {
            "all" | "-1" => "all",
            "0" => "0",
            "1" => "1",
            other => {
                return Err(Error::Config(format!(
                    "acks must be 'all', '1' or '0', not {other:?}"
                )))
            }
        };
        if self.enable_idempotence && acks != "all" {
            return Err(Error::Config(
                "idempotence needs acks=all (set enable_idempotence=False to use other acks)"
                    .into(),
            ));
        }
        if self.delivery_timeout_ms == 0 {
            return Err(Error::Config(
                "delivery_timeout_ms must be positive: 0 would let a delivery wait forever".into(),
            ));
        }
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("acks", acks)
            .set("compression.type", &self.compression_type)
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_size.to_string())
            .set("enable.idempotence", self.enable_idempotence.to_string())
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string())
            // The Java client's key hashing, so that keyed records land on the same partition
            // whichever client wrote them.
            .set("partitioner", "murmur2_random")
            // Nagle's algorithm holds small produce requests back for tens of milliseconds.
            .set("socket.nagle.disable", "true")
            // Records without a key go to a random partition each, not all to one partition
            // for 2 x linger.ms (librdkafka's sticky default): an idempotent producer has one
            // request in flight per partition, so a keyless batch on one partition went out
            // in a dozen round trips one after another (decision 95).
            .set("sticky.partitioning.linger.ms", "0");
        apply_extra(&mut cfg, &self.extra);
        Ok(cfg)
    }
}

/// Applies the pass-through properties (they win) and remembers their secrets, so that no
/// text this process emits shows them (decision 50).
fn apply_extra(cfg: &mut ClientConfig, extra: &[(String, String)]) {
    for (k, v) in extra {
        cfg.set(k, v);
    }
    secrets::remember(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    super::context::apply_log_level(cfg);
}

// Written out so that `extra` (which may hold sasl.password) is masked.
impl std::fmt::Debug for ProducerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("acks", &self.acks)
            .field("compression_type", &self.compression_type)
            .field("linger_ms", &self.linger_ms)
            .field("batch_size", &self.batch_size)
            .field("enable_idempotence", &self.enable_idempotence)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("extra", &MaskedPairs(&self.extra))
            .finish()
    }
}

impl std::fmt::Debug for ConsumerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("client_id", &self.client_id)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("commit", &self.commit)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("max_poll_records", &self.max_poll_records)
            .field(
                "partition_assignment_strategy",
                &self.partition_assignment_strategy,
            )
            .field("group_instance_id", &self.group_instance_id)
            .field("extra", &MaskedPairs(&self.extra))
            .finish()
    }
}

/// Commit policy of a consumer. With `enabled`, offsets are committed only for records the
/// application marked processed: every `batch_size` marks, every `interval_ms`, on revoke
/// and on close.
#[derive(Debug, Clone, Copy)]
pub struct CommitSettings {
    pub enabled: bool,
    pub batch_size: usize,
    pub interval_ms: u32,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            enabled: true,
            batch_size: 100,
            interval_ms: 5000,
        }
    }
}

#[derive(Clone)]
pub struct ConsumerSettings {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    pub auto_offset_reset: OffsetReset,
    pub commit: CommitSettings,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_poll_records: usize,
    /// `sticky` / `cooperative-sticky` (the default), `range` or `roundrobin`.
    pub partition_assignment_strategy: String,
    /// `group.instance.id` (static membership, KIP-345): a restarted member with the same id
    /// takes its partitions back without a rebalance. `None`: a dynamic member.
    pub group_instance_id: Option<String>,
    pub extra: Vec<(String, String)>,
}

/// Kafka's rule for a `group.instance.id` (the same as for topic names): 1 to 249 of
/// `[A-Za-z0-9._-]`, and neither `.` nor `..`.
pub fn check_group_instance_id(id: &str) -> Result<()> {
    let legal = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if id.is_empty() || id.len() > 249 || !legal || id == "." || id == ".." {
        return Err(Error::Config(format!(
            "group_instance_id {id:?} is not a valid Kafka group.instance.id: 1 to 249 of \
             letters, digits, '.', '_' and '-' (and not '.' or '..')"
        )));
    }
    Ok(())
}

impl ConsumerSettings {
    pub fn new(bootstrap_servers: impl Into<String>, group_id: impl Into<String>) -> Self {
        ConsumerSettings {
            bootstrap_servers: bootstrap_servers.into(),
            group_id: group_id.into(),
            client_id: "tradecore".into(),
            auto_offset_reset: OffsetReset::Earliest,
            commit: CommitSettings::default(),
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_records: 500,
            partition_assignment_strategy: "cooperative-sticky".into(),
            group_instance_id: None,
            extra: Vec::new(),
        }
    }

    pub fn client_config(&self) -> Result<ClientConfig> {
        if self.group_id.is_empty() {
            return Err(Error::Config("group_id must not be empty".into()));
        }
        if self.commit.enabled && self.commit.batch_size == 0 {
            return Err(Error::Config("commit batch size must be at least 1".into()));
        }
        if self.max_poll_records == 0 {
            return Err(Error::Config("max_poll_records must be at least 1".into()));
        }
        let strategy = match self.partition_assignment_strategy.to_ascii_lowercase().as_str() {
            // The guide's "sticky" means the cooperative sticky assignor.
            "sticky" | "cooperative-sticky" | "cooperativesticky" => "cooperative-sticky",
            "range" => "range",
            "roundrobin" | "round-robin" => "roundrobin",
            other => {
                return Err(Error::Config(format!(
                    "partition assignment strategy must be sticky, cooperative-sticky, range or roundrobin, not {other:?}"
                )))
            }
        };
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", &self.group_id)
            .set("client.id", &self.client_id)
            .set("auto.offset.reset", self.auto_offset_reset.as_str())
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms.to_string(),
            )
            .set("partition.assignment.strategy", strategy)
            // Offsets are stored only for records the application marked processed; librdkafka
            // then commits the stored offsets on its interval, on revoke and on close.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", self.commit.enabled.to_string())
            .set("enable.partition.eof", "false")
            // Once a partition's prefetch queue is full (queued.max.messages.kbytes, which
            // bounds memory), librdkafka checks again only after this long: its default of
            // 1 s leaves a fast consumer idle most of that second (decisions 27 and 57).
            .set("fetch.queue.backoff.ms", "10")
            .set("socket.nagle.disable", "true");
        if let Some(id) = &self.group_instance_id {
            check_group_instance_id(id)?;
            cfg.set("group.instance.id", id);
        }
        if self.commit.enabled {
            cfg.set(
                "auto.commit.interval.ms",
                self.commit.interval_ms.to_string(),
            );
        }
        apply_extra(&mut cfg, &self.extra);
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_defaults_follow_the_guide() {
        let cfg = ProducerSettings::new("127.0.0.1:19092")
            .client_config()
            .unwrap();
        assert_eq!(cfg.get("acks"), Some("all"));
        assert_eq!(cfg.get("compression.type"), Some("lz4"));
        assert_eq!(cfg.get("linger.ms"), Some("10"));
        assert_eq!(cfg.get("batch.size"), Some("16384"));
        assert_eq!(cfg.get("enable.idempotence"), Some("true"));
        assert_eq!(cfg.get("message.timeout.ms"), Some("30000"));
        assert_eq!(cfg.get("sticky.partitioning.linger.ms"), Some("0"));
    }

    #[test]
    fn extra_properties_pass_through_and_win() {
        let mut s = ProducerSettings::new("b:1");
        s.extra.push(("security.protocol".into(), "ssl".into()));
        s.extra.push(("linger.ms".into(), "0".into()));
        let cfg = s.client_config().unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("ssl"));
        assert_eq!(cfg.get("linger.ms"), Some("0"));
    }

    #[test]
    fn idempotence_without_acks_all_is_a_config_error() {
        let mut s = ProducerSettings::new("b:1");
        s.acks = "1".into();
        assert!(matches!(s.client_config(), Err(Error::Config(_))));
        s.enable_idempotence = false;
        assert!(s.client_config().is_ok());
        s.acks = "most".into();
        assert!(matches!(s.client_config(), Err(Error::Config(_))));
    }

    #[test]
    fn consumer_uses_cooperative_sticky_and_manual_offset_store() {
        let cfg = ConsumerSettings::new("b:1", "g").client_config().unwrap();
        assert_eq!(
            cfg.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(cfg.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(cfg.get("auto.commit.interval.ms"), Some("5000"));
        assert_eq!(cfg.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(cfg.get("fetch.queue.backoff.ms"), Some("10"));
        let mut custom = ConsumerSettings::new("b:1", "g");
        custom
            .extra
            .push(("fetch.queue.backoff.ms".into(), "500".into()));
        let cfg = custom.client_config().unwrap();
        assert_eq!(
            cfg.get("fetch.queue.backoff.ms"),
            Some("500"),
            "user config wins"
        );
    }

    #[test]
    fn debug_output_of_settings_masks_secrets() {
        let mut p = ProducerSettings::new("b:1");
        p.extra
            .push(("sasl.password".into(), "pw-settings-debug".into()));
        p.extra.push(("sasl.username".into(), "eventbus".into()));
        let mut c = ConsumerSettings::new("b:1", "g");
        c.extra = p.extra.clone();
        for text in [format!("{p:?}"), format!("{c:?}")] {
            assert!(!text.contains("pw-settings-debug"), "{text}");
            assert!(text.contains("eventbus"), "{text}");
        }
    }

    #[test]
    fn static_membership_sets_a_checked_group_instance_id() {
        let dynamic = ConsumerSettings::new("b:1", "g").client_config().unwrap();
        assert_eq!(dynamic.get("group.instance.id"), None);
        let mut s = ConsumerSettings::new("b:1", "g");
        s.group_instance_id = Some("g.transport.orders.worker-1".into());
        let cfg = s.client_config().unwrap();
        assert_eq!(
            cfg.get("group.instance.id"),
            Some("g.transport.orders.worker-1")
        );
        for bad in ["", ".", "..", "worker 1", "worker/1", &"w".repeat(250)] {
            s.group_instance_id = Some(bad.to_string());
            match s.client_config() {
                Err(Error::Config(msg)) => assert!(msg.contains("group_instance_id"), "{msg}"),
                other => panic!("{bad:?} was accepted: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn offset_reset_parses_the_usual_spellings() {
        assert_eq!(OffsetReset::parse("LATEST").unwrap(), OffsetReset::Latest);
        assert_eq!(
            OffsetReset::parse("earliest").unwrap(),
            OffsetReset::Earliest
        );
        assert!(OffsetReset::parse("middle").is_err());
    }
}
