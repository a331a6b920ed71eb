//! The cache keys litellm's routing handlers read and write, built as litellm formats them.

/// `{group}_request_count:{id}`: a deployment's in-flight calls (`LeastBusyLoggingHandler`).
pub fn least_busy_count(group: &str, id: &str) -> String {
    format!("{group}_request_count:{id}")
}

/// `least_busy_reservations:{id}`: the picks reserved on a deployment (`LeastBusyLoggingHandler`).
pub fn least_busy_reservations(id: &str) -> String {
    format!("least_busy_reservations:{id}")
}

/// (`{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`): this minute's usage counters
/// (`LowestTPMLoggingHandler_v2.usage_counter_keys`); `None` for an id holding `:`, which litellm
/// keys its usage dicts by the text before (another deployment's counters could share it).
pub fn usage_counters(id: &str, model: &str, minute: &str) -> Option<(String, String)> {
    if id.contains(':') {
        return None;
    }
    Some((
        format!("{id}:{model}:tpm:{minute}"),
        format!("{id}:{model}:rpm:{minute}"),
    ))
}

/// `{id}_max_parallel_requests_client`: a deployment's parallel-request limit in the routing
/// cache (`max_parallel_requests_limit`).
pub fn parallel_requests_client(id: &str) -> String {
    format!("{id}_max_parallel_requests_client")
}

/// The deployment id a router-core cooldown key names (`deployment:{id}:cooldown`), as
/// `litellm/router_rust/routing_stores.py::parse_key` reads it; `None` for any other key.
pub fn cooldown_id(key: &str) -> Option<&str> {
    key.strip_prefix("deployment:")?.strip_suffix(":cooldown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_busy_keys_name_the_group_and_the_deployment() {
        assert_eq!(least_busy_count("gpt-4o", "d1"), "gpt-4o_request_count:d1");
        assert_eq!(least_busy_reservations("d1"), "least_busy_reservations:d1");
    }

    #[test]
    fn usage_counters_name_the_minute_and_refuse_ids_with_colons() {
        assert_eq!(
            usage_counters("d1", "openai/gpt-4o", "10-05"),
            Some((
                "d1:openai/gpt-4o:tpm:10-05".to_owned(),
                "d1:openai/gpt-4o:rpm:10-05".to_owned()
            ))
        );
        assert_eq!(usage_counters("d:1", "m", "10-05"), None);
    }

    #[test]
    fn parallel_requests_client_key() {
        assert_eq!(
            parallel_requests_client("d1"),
            "d1_max_parallel_requests_client"
        );
    }

    #[test]
    fn cooldown_keys_name_their_deployment() {
        assert_eq!(cooldown_id("deployment:d1:cooldown"), Some("d1"));
        assert_eq!(cooldown_id("deployment:a:b:cooldown"), Some("a:b"));
        assert_eq!(cooldown_id("deployment::cooldown"), Some(""));
        assert_eq!(cooldown_id("deployment:cooldown"), None);
        assert_eq!(cooldown_id("deployment:d1:allowed_fails"), None);
        assert_eq!(cooldown_id("global_router:d1:m:tpm:12-00"), None);
    }
}
