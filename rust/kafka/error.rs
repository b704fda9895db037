//! The one error type of the Rust core. Everything that can fail in the transport returns
//! [`Error`]; it is turned into a Python exception only at the binding boundary (`py::errors`).

use std::fmt;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::delivery::{DeliveryFailure, Outcome};
use super::secrets;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Declares [`ErrorKind`] and `ErrorKind::ALL`, so that the bindings can check at import
/// that every kind has its Python class (`py::errors::bind`).
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident,)+) => {
        /// Broad classes of failure; each maps to one Python exception class.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)+
        }

        impl ErrorKind {
            /// Every kind, in declaration order (`kind as usize` is its index).
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)+];
        }
    };
}

error_kinds! {
    /// No broker reachable, leader moved, network error: retry later.
    BrokerUnavailable,
    /// An operation or a delivery did not finish within its timeout.
    Timeout,
    /// The client's local queue is full (backpressure).
    QueueFull,
    /// The topic does not exist (yet) or has no such partition.
    UnknownTopic,
    /// The topic name is not acceptable to Kafka.
    InvalidTopic,
    /// Configuration rejected by this library or by librdkafka.
    Config,
    /// A caller passed something that cannot be sent.
    InvalidArgument,
    /// The client was closed.
    Closed,
    /// Some records of a batch were not delivered (per-record outcomes attached).
    Batch,
    /// The broker refused the client's credentials (SASL): a refusal, not an outage.
    Authentication,
    /// The authenticated client may not do this (topic, group or cluster ACLs).
    Authorization,
    /// Another live consumer joined the group with this consumer's `group.instance.id`
    /// (static membership): this one was fenced out for good.
    FencedInstance,
    /// Any other Kafka error.
    Kafka,
    /// Something inside the core that should not happen did (a background task panicked):
    /// a bug to report, not the caller's argument nor the broker's answer.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// librdkafka or the broker answered with an error code.
    Kafka {
        code: RDKafkaErrorCode,
        operation: &'static str,
        detail: Option<String>,
        fatal: bool,
    },
    /// Waited for the configured time without an answer.
    Timeout {
        operation: &'static str,
        detail: String,
    },
    Config(String),
    InvalidArgument(String),
    Closed(&'static str),
    /// Per-record outcomes of a batch where at least one record failed.
    Batch(Vec<Outcome>),
    /// A failure of the core itself (a panicked background task), with what is known of it.
    Internal(String),
}

impl Error {
    pub fn kafka(operation: &'static str, code: RDKafkaErrorCode) -> Self {
        Error::Kafka {
            code,
            operation,
            detail: None,
            fatal: false,
        }
    }

    /// Converts an rdkafka error, keeping the librdkafka code when there is one.
    pub fn from_kafka(operation: &'static str, err: KafkaError) -> Self {
        match err {
            KafkaError::ClientConfig(_, desc, key, value) => {
                // Never echo a secret (decision 50): librdkafka's description quotes the
                // value too ("Invalid value \"...\" for configuration property ...").
                let (value, desc) = if secrets::is_sensitive(&key) && !value.is_empty() {
                    (
                        secrets::MASK.to_owned(),
                        desc.replace(&value, secrets::MASK),
                    )
                } else {
                    (value, desc)
                };
                Error::Config(format!("invalid client setting {key}={value}: {desc}"))
            }
            // librdkafka's reason may quote a setting (the client's secrets are known by now).
            KafkaError::ClientCreation(msg) => Error::Config(secrets::redact(&msg).into_owned()),
            KafkaError::Nul(e) => Error::InvalidArgument(format!("NUL byte in a string: {e}")),
            KafkaError::MessageConsumptionFatal(code) => Error::Kafka {
                code,
                operation,
                detail: None,
                fatal: true,
            },
            KafkaError::Transaction(e) => Error::Kafka {
                code: e.code(),
                operation,
                detail: Some(e.string()),
                fatal: e.is_fatal(),
            },
            // rust-rdkafka reports no code for a failed admin request (`rdkafka_error_code`
            // is None), though it has one: an admin request to an unreachable cluster is then
            // the timeout it is (TransportTimeoutError), not a generic failure.
            KafkaError::AdminOp(code) => Error::Kafka {
                code,
                operation,
                detail: None,
                fatal: false,
            },
            other => match other.rdkafka_error_code() {
                Some(code) => Error::Kafka {
                    code,
                    operation,
                    detail: None,
                    fatal: false,
                },
                None => Error::Kafka {
                    code: RDKafkaErrorCode::Fail,
                    operation,
                    detail: Some(other.to_string()),
                    fatal: false,
                },
            },
        }
    }

    /// Adds a human-readable explanation (for example the last connection error).
    pub fn with_detail(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        match &mut self {
            Error::Kafka { detail, .. } => *detail = Some(text),
            Error::Timeout { detail, .. } => *detail = text,
            _ => {}
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Kafka { code, .. } => kind_of_code(*code),
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Config(_) => ErrorKind::Config,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Closed(_) => ErrorKind::Closed,
            Error::Batch(_) => ErrorKind::Batch,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether trying the same operation again may succeed.
    pub fn retriable(&self) -> bool {
        match self {
            Error::Kafka { code, fatal, .. } => !fatal && code_is_retriable(*code),
            Error::Timeout { .. } => true,
            Error::Batch(outcomes) => outcomes.iter().all(|o| match o {
                Outcome::Delivered(_) => true,
                Outcome::Failed(f) => code_is_retriable(f.code),
            }),
            // Internal: the same call hits the same bug; nothing says that waiting helps.
            Error::Config(_)
            | Error::InvalidArgument(_)
            | Error::Closed(_)
            | Error::Internal(_) => false,
        }
    }

    /// The librdkafka / Kafka protocol error code, when there is one.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Kafka { code, .. } => Some(*code as i32),
            Error::Batch(outcomes) => outcomes.iter().find_map(|o| match o {
                Outcome::Failed(f) => Some(f.code as i32),
                Outcome::Delivered(_) => None,
            }),
            _ => None,
        }
    }

    /// The code's name as librdkafka spells it in Rust (`MessageTimedOut`, ...).
    pub fn code_name(&self) -> Option<String> {
        match self {
            Error::Kafka { code, .. } => Some(format!("{code:?}")),
            Error::Batch(outcomes) => outcomes.iter().find_map(|o| match o {
                Outcome::Failed(f) => Some(format!("{:?}", f.code)),
                Outcome::Delivered(_) => None,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kafka {
                code,
                operation,
                detail,
                fatal,
            } => {
                let fatal = if *fatal { "fatal " } else { "" };
                write!(f, "{operation} failed: {fatal}{code} ({code:?})")?;
                if let Some(d) = detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            Error::Timeout { operation, detail } => {
                write!(f, "{operation} timed out")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Closed(what) => write!(f, "the {what} is closed"),
            Error::Internal(msg) => write!(f, "internal error: {msg}"),
            Error::Batch(outcomes) => {
                let failed: Vec<&DeliveryFailure> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Outcome::Failed(fl) => Some(fl),
                        Outcome::Delivered(_) => None,
                    })
                    .collect();
                write!(
                    f,
                    "{} of {} records were not delivered",
                    failed.len(),
                    outcomes.len()
                )?;
                if let Some(first) = failed.first() {
                    write!(f, "; first error: {} ({:?})", first.code, first.code)?;
                    if let Some(d) = &first.detail {
                        write!(f, ": {d}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

pub fn kind_of_code(code: RDKafkaErrorCode) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue => {
            ErrorKind::Timeout
        }
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::NetworkException
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::ReplicaNotAvailable
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::KafkaStorageError
        | C::UnknownBroker => ErrorKind::BrokerUnavailable,
        C::QueueFull => ErrorKind::QueueFull,
        C::UnknownTopic | C::UnknownTopicOrPartition | C::UnknownPartition => {
            ErrorKind::UnknownTopic
        }
        C::InvalidTopic => ErrorKind::InvalidTopic,
        C::Authentication | C::SaslAuthenticationFailed => ErrorKind::Authentication,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed => ErrorKind::Authorization,
        C::InvalidConfig | C::InvalidReplicationFactor | C::InvalidPartitions => ErrorKind::Config,
        C::FencedInstanceId => ErrorKind::FencedInstance,
        _ => ErrorKind::Kafka,
    }
}

/// Errors that keep a consumer out of its group however long it waits: it was refused
/// (authorization, authentication, an unusable group id, a full group) rather than kept
/// waiting (a rebalance, a dead member's session, a broker that is away).
pub fn code_refuses_joining(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidGroupId
            | C::GroupMaxSizeReached
            | C::InconsistentGroupProtocol
            | C::FencedInstanceId
    )
}

/// Retriable as Kafka's own clients classify it (RetriableException and librdkafka's
/// transient local errors).
pub fn code_is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        kind_of_code(code),
        ErrorKind::Timeout
            | ErrorKind::BrokerUnavailable
            | ErrorKind::QueueFull
            | ErrorKind::UnknownTopic
    ) || matches!(
        code,
        C::CoordinatorLoadInProgress
            | C::RebalanceInProgress
            | C::FetchSessionIdNotFound
            | C::InvalidFetchSessionEpoch
            | C::OffsetNotAvailable
            | C::PreferredLeaderNotAvailable
            | C::UnstableOffsetCommit
            | C::ThrottlingQuotaExceeded
            | C::ConcurrentTransactions
            | C::UnknownLeaderEpoch
            | C::FencedLeaderEpoch
            | C::InvalidMessage
            | C::Retry
            | C::InProgress
            | C::PreviousInProgress
            | C::Interrupted
            | C::PurgeQueue
            | C::PurgeInflight
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::delivery::Delivery;

    #[test]
    fn timeouts_and_unreachable_brokers_are_retriable_but_config_is_not() {
        let timed_out = Error::kafka("produce", RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(timed_out.kind(), ErrorKind::Timeout);
        assert!(timed_out.retriable());
        assert_eq!(timed_out.code(), Some(-192));

        let down = Error::kafka("metadata", RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(down.kind(), ErrorKind::BrokerUnavailable);
        assert!(down.retriable());

        let admin = Error::from_kafka(
            "create topics",
            KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
        );
        assert_eq!(admin.kind(), ErrorKind::Timeout);
        assert!(admin.retriable());

        let too_large = Error::kafka("produce", RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(too_large.kind(), ErrorKind::Kafka);
        assert!(!too_large.retriable());

        assert!(!Error::Config("x".into()).retriable());
        assert!(!Error::Closed("producer").retriable());
    }

    #[test]
    fn a_fatal_error_is_never_retriable() {
        let fatal = Error::Kafka {
            code: RDKafkaErrorCode::BrokerTransportFailure,
            operation: "consume",
            detail: None,
            fatal: true,
        };
        assert!(!fatal.retriable());
    }

    #[test]
    fn a_fenced_instance_is_its_own_kind_and_never_retriable() {
        let fenced = Error::Kafka {
            code: RDKafkaErrorCode::FencedInstanceId,
            operation: "consume",
            detail: Some("Fatal consumer error".into()),
            fatal: true,
        };
        assert_eq!(fenced.kind(), ErrorKind::FencedInstance);
        assert!(!fenced.retriable());
        assert!(!code_is_retriable(RDKafkaErrorCode::FencedInstanceId));
        assert!(code_refuses_joining(RDKafkaErrorCode::FencedInstanceId));
        assert!(code_refuses_joining(
            RDKafkaErrorCode::GroupAuthorizationFailed
        ));
        assert!(!code_refuses_joining(RDKafkaErrorCode::RebalanceInProgress));
        assert!(!code_refuses_joining(RDKafkaErrorCode::AllBrokersDown));
    }

    #[test]
    fn batch_error_reports_failed_count_and_first_cause() {
        let err = Error::Batch(vec![
            Outcome::Delivered(Delivery {
                partition: 0,
                offset: 7,
            }),
            Outcome::Failed(DeliveryFailure {
                code: RDKafkaErrorCode::MessageTimedOut,
                possibly_persisted: false,
                detail: None,
            }),
        ]);
        assert_eq!(err.kind(), ErrorKind::Batch);
        assert!(err.retriable());
        assert_eq!(err.code(), Some(RDKafkaErrorCode::MessageTimedOut as i32));
        let text = err.to_string();
        assert!(
            text.starts_with("1 of 2 records were not delivered"),
            "{text}"
        );
        assert!(text.contains("MessageTimedOut"), "{text}");
    }

    #[test]
    fn config_errors_from_librdkafka_name_the_setting() {
        let err = Error::from_kafka(
            "create producer",
            KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "Invalid value".into(),
                "acks".into(),
                "most".into(),
            ),
        );
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("acks=most"), "{err}");
    }

    #[test]
    fn config_errors_never_echo_a_secret_value() {
        let err = Error::from_kafka(
            "create producer",
            KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "Invalid value \"pw-in-a-config-error\" for configuration property".into(),
                "sasl.password".into(),
                "pw-in-a-config-error".into(),
            ),
        );
        let text = err.to_string();
        assert!(!text.contains("pw-in-a-config-error"), "{text}");
        assert!(text.contains("sasl.password=***"), "{text}");
    }

    #[test]
    fn refused_credentials_and_permissions_have_kinds_of_their_own_and_are_final() {
        for code in [
            RDKafkaErrorCode::Authentication,
            RDKafkaErrorCode::SaslAuthenticationFailed,
        ] {
            let err = Error::kafka("produce", code);
            assert_eq!(err.kind(), ErrorKind::Authentication, "{code:?}");
            assert!(!err.retriable(), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::GroupAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
        ] {
            let err = Error::kafka("produce", code);
            assert_eq!(err.kind(), ErrorKind::Authorization, "{code:?}");
            assert!(!err.retriable(), "{code:?}");
        }
    }

    #[test]
    fn every_kind_is_listed_once_at_its_index() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
    }
}
