//! A RabbitMQ cluster of a test's own: several [`RabbitNode`]s on this machine with one Erlang
//! cookie, joined into one cluster with `rabbitmqctl join_cluster`, as an operator forms one on
//! several hosts. A node stopped and started again rejoins by itself (its membership is on disk).

use crate::platform::PlatformError;
use crate::rabbit_node::RabbitNode;

pub struct RabbitCluster {
    nodes: Vec<RabbitNode>,
}

impl RabbitCluster {
    /// Starts `n` nodes and joins the others to the first; returns once all are running in one
    /// cluster.
    pub async fn start(n: usize) -> Result<RabbitCluster, PlatformError> {
        let mut cookie = [0u8; 16];
        getrandom::fill(&mut cookie).map_err(|e| PlatformError::Broker(e.to_string()))?;
        let cookie: String = cookie.iter().map(|b| format!("{b:02X}")).collect();
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            nodes.push(RabbitNode::prepare(Some(&cookie))?);
        }
        // Started one after another: two nodes booting at once on 2 cores take longer than
        // both in turn, and a join needs the first one up anyway.
        nodes[0].start_node().await?;
        let first = nodes[0].name().to_owned();
        for node in nodes.iter_mut().skip(1) {
            node.start_node().await?;
            node.ctl(&["stop_app"]).await?;
            node.ctl(&["join_cluster", &first]).await?;
            node.ctl(&["start_app"]).await?;
        }
        let cluster = RabbitCluster { nodes };
        let running = cluster.running_nodes().await?;
        if running.len() != n.max(1) {
            return Err(PlatformError::Broker(format!(
                "cluster formed with {running:?}, expected {n} nodes"
            )));
        }
        Ok(cluster)
    }

    /// Every node's URL, comma-separated: the `AMQP_URL` of a service that fails over.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RabbitNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&mut self, i: usize) -> &mut RabbitNode {
        &mut self.nodes[i]
    }

    /// A node that is running, to ask about the cluster.
    fn any_running(&self) -> Result<&RabbitNode, PlatformError> {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .ok_or_else(|| PlatformError::Broker("no node of the cluster is running".into()))
    }

    /// The nodes the cluster sees running (`cluster_status`).
    pub async fn running_nodes(&self) -> Result<Vec<String>, PlatformError> {
        let json = self
            .any_running()?
            .ctl(&["cluster_status", "--formatter", "json"])
            .await?;
        let v: serde_json::Value = serde_json::from_str(json.trim())
            .map_err(|e| PlatformError::Broker(format!("cluster_status: {e}: {json}")))?;
        Ok(v["running_nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Each queue of the cluster whose name starts with `prefix`: its type, leader and members.
    pub async fn queues(&self, prefix: &str) -> Result<Vec<QueueInfo>, PlatformError> {
        let json = self
            .any_running()?
            .ctl(&[
                "list_queues",
                "--quiet",
                "--formatter",
                "json",
                "name",
                "type",
                "leader",
                "members",
            ])
            .await?;
        let v: Vec<serde_json::Value> = serde_json::from_str(json.trim())
            .map_err(|e| PlatformError::Broker(format!("list_queues: {e}: {json}")))?;
        Ok(v.iter()
            .filter(|q| q["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .map(|q| QueueInfo {
                name: q["name"].as_str().unwrap_or_default().to_owned(),
                kind: q["type"].as_str().unwrap_or_default().to_owned(),
                leader: q["leader"].as_str().unwrap_or_default().to_owned(),
                members: q["members"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }
}

/// One queue as `rabbitmqctl list_queues` shows it.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub name: String,
    pub kind: String,
    pub leader: String,
    pub members: Vec<String>,
}
