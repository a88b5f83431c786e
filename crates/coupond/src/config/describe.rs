//! The settings as `coupond config` prints them and as `Debug` shows them: every value, with
//! passwords, tokens and secrets redacted.

use super::Config;

impl Config {
    /// The database URL without its password.
    pub fn redacted_database_url(&self) -> String {
        redact_password(&self.database_url)
    }

    pub fn describe(&self) -> String {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "<none>".into());
        format!(
            "listen = {}\ndatabase_url = {}\ndb_pool_size = {}\ndata_dir = {}\njwt_algorithm = {:?}\njwt_secret = {}\n\
             jwt_jwks_file = {}\njwt_public_key = {}\njwt_issuer = {}\njwt_audience = {}\njwt_leeway = {}s\n\
             jwt_role_claim = {}\njwt_admin_roles = {}\njwt_service_roles = {}\njwt_user_roles = {}\n\
             log_format = {:?}\nclaim_strategy = {:?}\nthrottle = {}\ntrusted_proxies = {}\nredis_url = {}\n\
             request_timeout = {:?}\nheader_read_timeout = {:?}\nmax_concurrent_requests = {}\ndb_acquire_timeout = {:?}\n\
             metrics_listen = {}\nmetrics_token = {}\nnats_url = {}\nwebhook_timeout = {:?}\n\
             webhook_max_attempts = {}\nevent_retention = {:?}\nwebhook_allow_networks = {}\nidempotency_retention = {:?}",
            self.listen,
            self.redacted_database_url(),
            self.db_pool_size,
            self.data_dir.display(),
            self.jwt_algorithm,
            if self.jwt_secret.is_some() {
                "<set, redacted>"
            } else {
                "<generated in data_dir>"
            },
            or_none(&self.jwt_jwks_file.as_ref().map(|p| p.display().to_string())),
            // Not secret, but long: its file, or that it is inline.
            match self.jwt_public_key.as_deref() {
                None => "<none>".into(),
                Some(key) if key.starts_with('@') => key.to_owned(),
                Some(_) => "<inline PEM>".to_owned(),
            },
            or_none(&self.jwt_issuer),
            or_none(&self.jwt_audience),
            self.jwt_leeway,
            self.jwt_role_claim,
            self.jwt_admin_roles.join(","),
            self.jwt_service_roles.join(","),
            self.jwt_user_roles.join(","),
            self.log_format,
            self.claim_strategy,
            match self.throttle() {
                Ok(t) if t.enabled => t.describe(),
                Ok(_) => "off".to_owned(),
                Err(e) => format!("<invalid: {e}>"),
            },
            self.trusted_proxies.join(","),
            self.redis_url
                .as_deref()
                .map_or_else(|| "<none: buckets in memory>".to_owned(), redact_password),
            self.request_timeout,
            self.header_read_timeout,
            self.max_concurrent_requests,
            self.db_acquire_timeout,
            self.metrics_listen
                .map_or_else(|| "<the API's listener>".to_owned(), |a| a.to_string()),
            if self.metrics_token.is_some() {
                "<set, redacted>"
            } else {
                "<none: open>"
            },
            self.nats_url
                .as_deref()
                .map_or_else(|| "<none>".to_owned(), coupon_relay::redact_url),
            self.webhook_timeout,
            self.webhook_max_attempts,
            self.event_retention,
            match self.webhook_allow_networks.as_slice() {
                [] => "<none: public addresses only>".to_owned(),
                nets => nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","),
            },
            self.idempotency_retention,
        )
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let host_start = match rest.find('@') {
        Some(at) if rest[..at].find('/').is_none() => at,
        _ => return url.to_owned(),
    };
    match rest[..host_start].split_once(':') {
        Some((user, _)) => format!("{}{}:<redacted>{}", &url[..scheme_end], user, &rest[host_start..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parsed;

    #[test]
    fn the_metrics_token_is_redacted() {
        let config = parsed(&["--metrics-token", "scrape-secret", "--metrics-listen", "127.0.0.1:9100"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("scrape-secret"), "{shown}");
        assert!(shown.contains("metrics_token = <set, redacted>"), "{shown}");
        assert!(shown.contains("metrics_listen = 127.0.0.1:9100\n"), "{shown}");
        assert!(parsed(&[]).describe().contains("metrics_token = <none: open>"));
    }

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(
            redact_password("postgres://u:hunter2@db:5432/c"),
            "postgres://u:<redacted>@db:5432/c"
        );
        assert_eq!(redact_password("postgres://u@db/c"), "postgres://u@db/c");
        assert_eq!(redact_password("sqlite://coupond.db"), "sqlite://coupond.db");
    }
}
