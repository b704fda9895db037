//! Topic administration and the metadata ping.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use std::sync::Arc;

use super::auth_gate::{probe_interval, probe_timeout, ProbeResult};
use super::context::{BasicContext, ClientHealth};
use super::error::{Error, ErrorKind, Result};
use super::main_queue::MainQueueServer;
use super::secrets;

#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCreation {
    Created,
    AlreadyExists,
}

pub struct KafkaAdmin {
    /// Declared before `admin`: stopped before the client goes.
    _events: MainQueueServer,
    admin: AdminClient<BasicContext>,
    bootstrap_servers: String,
}

impl KafkaAdmin {
    pub fn new(
        bootstrap_servers: &str,
        client_id: &str,
        extra: &[(String, String)],
    ) -> Result<Arc<Self>> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", client_id);
        for (k, v) in extra {
            config.set(k, v);
        }
        secrets::remember(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        super::context::apply_log_level(&mut config);
        let admin = AdminClient::from_config_and_context(&config, BasicContext::default())
            .map_err(|e| Error::from_kafka("create admin client", e))?;
        let events = MainQueueServer::start(admin.inner())
            .map_err(|e| Error::Config(format!("cannot start the admin event thread: {e}")))?;
        let interval = probe_interval(&config);
        let timeout = probe_timeout(&config);
        Ok(Arc::new_cyclic(|me: &std::sync::Weak<KafkaAdmin>| {
            // While the credentials are refused, a metadata request now and then tells when
            // they work again (decision 48).
            let weak = me.clone();
            admin
                .inner()
                .context()
                .health
                .auth
                .set_probe(interval, move || match weak.upgrade() {
                    None => ProbeResult::Gone,
                    Some(a) => match a.admin.inner().fetch_metadata(None, timeout) {
                        Ok(_) => ProbeResult::Authenticated,
                        Err(_) => ProbeResult::Failed,
                    },
                });
            KafkaAdmin {
                _events: events,
                admin,
                bootstrap_servers: bootstrap_servers.to_owned(),
            }
        }))
    }

    pub fn health(&self) -> &ClientHealth {
        &self.admin.inner().context().health
    }

    /// The librdkafka context (tests hand it the reports librdkafka would make).
    #[cfg(test)]
    pub(crate) fn context(&self) -> &BasicContext {
        self.admin.inner().context()
    }

    /// A metadata request (blocking), failing at once if the credentials were refused.
    fn metadata(
        &self,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<rdkafka::metadata::Metadata> {
        let started = Instant::now();
        self.health().auth.check(operation)?;
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|e| self.explain(Error::from_kafka(operation, e), started))?;
        self.health().auth.clear();
        Ok(metadata)
    }

    /// Creates the topics; one that exists already is reported, not an error.
    pub async fn create_topics(
        &self,
        specs: &[TopicSpec],
        timeout: Duration,
    ) -> Result<Vec<(String, TopicCreation)>> {
        for spec in specs {
            if spec.partitions < 1 || spec.replication_factor < 1 {
                return Err(Error::InvalidArgument(format!(
                    "topic {:?} needs at least 1 partition and a replication factor of at least 1",
                    spec.name
                )));
            }
        }
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|s| {
                s.configs.iter().fold(
                    NewTopic::new(
                        &s.name,
                        s.partitions,
                        TopicReplication::Fixed(s.replication_factor),
                    ),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let started = Instant::now();
        let fut = self.admin.create_topics(new_topics.iter(), &opts);
        let answer = async {
            match tokio::time::timeout(timeout + Duration::from_secs(1), fut).await {
                Ok(r) => {
                    r.map_err(|e| self.explain(Error::from_kafka("create topics", e), started))
                }
                Err(_) => Err(self.explain(
                    Error::Timeout {
                        operation: "create topics",
                        detail: String::new(),
                    },
                    started,
                )),
            }
        };
        // Refused credentials end the wait at once (decision 48).
        let results = self.health().auth.guard("create topics", answer).await?;
        self.health().auth.clear();
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(name) => out.push((name, TopicCreation::Created)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    out.push((name, TopicCreation::AlreadyExists))
                }
                Err((name, code)) => {
                    return Err(self.explain(
                        Error::kafka("create topics", code).with_detail(format!("topic {name:?}")),
                        started,
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The topic's configuration entries that are set (not broker defaults).
    pub async fn describe_topic(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>> {
        let started = Instant::now();
        let opts = AdminOptions::new().request_timeout(Some(timeout));
        let spec = [ResourceSpecifier::Topic(topic)];
        let fut = self.admin.describe_configs(spec.iter(), &opts);
        let answer = async {
            match tokio::time::timeout(timeout + Duration::from_secs(1), fut).await {
                Ok(r) => {
                    r.map_err(|e| self.explain(Error::from_kafka("describe topic", e), started))
                }
                Err(_) => Err(self.explain(
                    Error::Timeout {
                        operation: "describe topic",
                        detail: String::new(),
                    },
                    started,
                )),
            }
        };
        let results = self.health().auth.guard("describe topic", answer).await?;
        let mut out = Vec::new();
        for result in results {
            let resource = result.map_err(|code| {
                Error::kafka("describe topic", code).with_detail(format!("topic {topic:?}"))
            })?;
            for entry in resource.entries {
                if let (false, Some(value)) = (entry.is_default, entry.value) {
                    out.push((entry.name, value));
                }
            }
        }
        Ok(out)
    }

    /// Topics in the cluster with their partition counts. Blocking; see
    /// [`guarded`](Self::guarded) for a wait that ends when the credentials are refused.
    pub fn list_topics(&self, timeout: Duration) -> Result<Vec<(String, usize)>> {
        let metadata = self.metadata("list topics", timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect())
    }

    /// A metadata round trip; returns how many brokers answered. Blocking.
    pub fn ping(&self, timeout: Duration) -> Result<usize> {
        Ok(self.metadata("metadata ping", timeout)?.brokers().len())
    }

    /// Runs blocking admin work (`list_topics`, `ping`) off the async threads; the wait ends
    /// with the authentication error as soon as the broker refuses the credentials (the
    /// blocking call then finishes on its own, within its timeout).
    pub async fn guarded<T: Send + 'static>(
        self: &Arc<Self>,
        operation: &'static str,
        work: impl FnOnce(&KafkaAdmin) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let admin = Arc::clone(self);
        let blocking = crate::runtime::spawn_blocking(move || work(&admin));
        self.health().auth.guard(operation, blocking).await
    }

    /// Says which brokers were asked and, when librdkafka reported one, why they did not
    /// answer.
    fn explain(&self, err: Error, since: Instant) -> Error {
        let mut parts = Vec::new();
        if let Error::Kafka {
            detail: Some(d), ..
        } = &err
        {
            parts.push(d.clone());
        }
        if matches!(
            err.kind(),
            ErrorKind::BrokerUnavailable | ErrorKind::Timeout
        ) {
            parts.push(format!("bootstrap servers {}", self.bootstrap_servers));
        }
        if let Some(last) = self.health().last_error_since(since) {
            parts.push(format!("recent client errors: {last}"));
        }
        if parts.is_empty() {
            err
        } else {
            err.with_detail(parts.join("; "))
        }
    }
}
