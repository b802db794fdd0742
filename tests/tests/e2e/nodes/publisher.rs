//! One Kafka publisher at a time across nodes, and its failover with no gap.
