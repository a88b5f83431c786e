//! Credentials in connection URLs: hidden before a URL reaches a log or an error, and taken out
//! before it reaches a client library (which may log the address it is given).

/// `url` with the user-info of every server in it replaced by `***`:
/// `nats://user:pass@host:4222` becomes `nats://***@host:4222`, and a bare token
/// (`nats://s3cr3t@host`) is hidden the same way. A comma-separated server list is redacted server
/// by server; anything without an `@` before its path is returned as it was.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|server| match split_userinfo(server) {
            Split {
                scheme,
                userinfo: Some(_),
                rest,
            } => format!("{scheme}***@{rest}"),
            Split { userinfo: None, .. } => server.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One server address cut around its user-info: `scheme` keeps its `://`, `rest` starts at the host.
pub(crate) struct Split<'a> {
    pub scheme: &'a str,
    pub userinfo: Option<&'a str>,
    pub rest: &'a str,
}

pub(crate) fn split_userinfo(server: &str) -> Split<'_> {
    let (scheme, after) = match server.find("://") {
        Some(at) => server.split_at(at + 3),
        None => ("", server),
    };
    // The authority ends at the path, query or fragment; a password may itself hold an '@', so the
    // user-info ends at the authority's last one.
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..authority_end].rfind('@') {
        Some(at) => Split {
            scheme,
            userinfo: Some(&after[..at]),
            rest: &after[at + 1..],
        },
        None => Split {
            scheme,
            userinfo: None,
            rest: after,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_hidden_and_the_rest_kept() {
        let cases = [
            ("nats://user:pass@host:4222", "nats://***@host:4222"),
            ("nats://token@127.0.0.1", "nats://***@127.0.0.1"),
            ("tls://u:p@ss@host:4222/x?y=@z", "tls://***@host:4222/x?y=@z"),
            ("user:pass@host", "***@host"),
            (
                "nats://a:b@h1:4222,nats://h2:4222,c:d@h3",
                "nats://***@h1:4222,nats://h2:4222,***@h3",
            ),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://host/path@thing", "nats://host/path@thing"),
            ("", ""),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn the_userinfo_is_cut_at_its_last_at_sign() {
        let split = split_userinfo("nats://u:p@ss@host:4222/x");
        assert_eq!(
            (split.scheme, split.userinfo, split.rest),
            ("nats://", Some("u:p@ss"), "host:4222/x")
        );
        let split = split_userinfo("host:4222");
        assert_eq!((split.scheme, split.userinfo, split.rest), ("", None, "host:4222"));
    }
}
