//! The narrow trait through which the console reaches a broker. The
//! console knows nothing else of it: the broker implements this over its
//! own state and its Kafka APIs, tests implement it over fixed data.

use std::future::Future;

use crate::model::*;

/// Everything the console reads or changes. Reads are cheap enough to be
/// called per page view (the broker answers most from its metadata image
/// in memory); the async ones may ask other brokers and must bound their
/// own time.
pub trait ConsoleSource: Send + Sync + 'static {
    fn overview(&self) -> ClusterOverview;
    fn brokers(&self) -> Vec<BrokerRow>;
    /// A broker's configs as DescribeConfigs gives them.
    fn broker_configs(
        &self,
        id: i32,
    ) -> impl Future<Output = Result<Vec<ConfigRow>, String>> + Send;
    /// Every topic, sorted by name.
    fn topics(&self) -> Vec<TopicRow>;
    /// A topic with its partitions' offsets; `None` if it does not exist.
    fn topic(&self, name: &str) -> impl Future<Output = Option<TopicDetail>> + Send;
    fn topic_configs(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ConfigRow>, String>> + Send;
    /// Reads records for the message browser (bounded in count, bytes
    /// and time by the implementation).
    fn browse(
        &self,
        req: BrowseRequest,
    ) -> impl Future<Output = Result<Vec<BrowsedRecord>, String>> + Send;
    /// Every group of the cluster, sorted by id; those coordinated
    /// elsewhere without members and lag.
    fn groups(&self) -> impl Future<Output = Vec<GroupRow>> + Send;
    /// A group this node coordinates.
    fn group(&self, id: &str) -> impl Future<Output = Option<GroupDetail>> + Send;
    /// The node coordinating a group, if the group exists.
    fn group_coordinator(&self, id: &str) -> impl Future<Output = Option<i32>> + Send;
    /// The counters behind the live charts.
    fn sample(&self) -> impl Future<Output = Sample> + Send;
    /// Carries out an action through the broker's own Kafka API paths;
    /// `Ok` holds a message for the operator.
    fn act(&self, action: Action) -> impl Future<Output = Result<String, String>> + Send;
}
