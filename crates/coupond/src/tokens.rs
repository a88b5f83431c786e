//! How `serve` verifies tokens, from the `--jwt-*` settings: coupond's own HS256 secret, or an
//! identity provider's RS256 / ES256 keys from a JWKS file or a PEM key. Errors name the setting at
//! fault (flag and variable) and never its value.

use anyhow::{anyhow, bail, Context};
use coupon_server::{RoleNames, TokenKeys, TokenRules, Tokens};

use crate::config::{Config, JwtAlgorithm};
use crate::secret;

const SECRET: &str = "--jwt-secret (COUPOND_JWT_SECRET)";
const JWKS_FILE: &str = "--jwt-jwks-file (COUPOND_JWT_JWKS_FILE)";
const PUBLIC_KEY: &str = "--jwt-public-key (COUPOND_JWT_PUBLIC_KEY)";

pub fn load(config: &Config) -> anyhow::Result<Tokens> {
    Ok(Tokens::new(keys(config)?, rules(config)?))
}

fn keys(config: &Config) -> anyhow::Result<TokenKeys> {
    let algorithm = config.jwt_algorithm.into();
    let (jwks, pem) = (&config.jwt_jwks_file, &config.jwt_public_key);
    if config.jwt_algorithm == JwtAlgorithm::Hs256 {
        if jwks.is_some() || pem.is_some() {
            let given = if jwks.is_some() { JWKS_FILE } else { PUBLIC_KEY };
            bail!("{given} is for --jwt-algorithm rs256 or es256; HS256 verifies with {SECRET}");
        }
        return Ok(TokenKeys::hs256(&secret::load(config)?));
    }
    // A secret that would be ignored is a configuration mistake, and a secret left lying around.
    if config.jwt_secret.is_some() {
        bail!("{SECRET} is for --jwt-algorithm hs256, not {algorithm}");
    }
    match (jwks, pem) {
        (Some(path), None) => {
            let json = std::fs::read(path).with_context(|| format!("{JWKS_FILE}: reading {}", path.display()))?;
            TokenKeys::from_jwks(algorithm, &json).map_err(|e| anyhow!("{JWKS_FILE}: {}: {e}", path.display()))
        }
        (None, Some(key)) => {
            let pem = match key.strip_prefix('@') {
                Some(path) => std::fs::read(path).with_context(|| format!("{PUBLIC_KEY}: reading {path}"))?,
                None => key.as_bytes().to_vec(),
            };
            TokenKeys::from_pem(algorithm, &pem).map_err(|e| anyhow!("{PUBLIC_KEY}: {e}"))
        }
        (Some(_), Some(_)) => bail!("give {JWKS_FILE} or {PUBLIC_KEY}, not both"),
        (None, None) => bail!("--jwt-algorithm {algorithm} needs {JWKS_FILE} or {PUBLIC_KEY}"),
    }
}

fn rules(config: &Config) -> anyhow::Result<TokenRules> {
    let named = |value: &Option<String>, key: &str| match value.as_deref().map(str::trim) {
        Some("") => Err(anyhow!("{key} is empty: leave it unset to accept any")),
        v => Ok(v.map(str::to_owned)),
    };
    let claim = config.jwt_role_claim.trim();
    if claim.is_empty() {
        bail!("--jwt-role-claim (COUPOND_JWT_ROLE_CLAIM) is empty");
    }
    // `a,,b` or a trailing comma would otherwise map the empty name.
    let names = |list: &[String]| {
        list.iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(TokenRules {
        issuer: named(&config.jwt_issuer, "--jwt-issuer (COUPOND_JWT_ISSUER)")?,
        audience: named(&config.jwt_audience, "--jwt-audience (COUPOND_JWT_AUDIENCE)")?,
        leeway_seconds: config.jwt_leeway,
        roles: RoleNames {
            claim: claim.to_owned(),
            admin: names(&config.jwt_admin_roles),
            service: names(&config.jwt_service_roles),
            user: names(&config.jwt_user_roles),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use coupon_server::TokenAlgorithm;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../coupon-server/tests/fixtures");

    fn load_with(args: &[&str]) -> anyhow::Result<Tokens> {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let cli = Cli::try_parse_from(["coupond", "--data-dir", data_dir].iter().chain(args)).unwrap();
        load(&cli.config)
    }

    /// The error of a refused configuration, checked to name `key` and not to show `hidden`.
    #[track_caller]
    fn refused(args: &[&str], key: &str, hidden: &str) -> String {
        let message = format!("{:#}", load_with(args).expect_err("refused"));
        assert!(message.contains(key), "{message:?} names {key}");
        assert!(
            hidden.is_empty() || !message.contains(hidden),
            "{message:?} hides {hidden:?}"
        );
        message
    }

    #[test]
    fn loads_each_kind_of_key() {
        let hs = load_with(&[]).unwrap();
        assert_eq!(hs.algorithm(), TokenAlgorithm::Hs256);
        let jwks = format!("{FIXTURES}/jwks.json");
        let es = load_with(&["--jwt-algorithm", "es256", "--jwt-jwks-file", &jwks]).unwrap();
        assert_eq!(es.algorithm(), TokenAlgorithm::Es256);
        let pem = format!("@{FIXTURES}/rs256-public.pem");
        let rs = load_with(&["--jwt-algorithm", "rs256", "--jwt-public-key", &pem]).unwrap();
        assert_eq!(rs.algorithm(), TokenAlgorithm::Rs256);
        let inline = std::fs::read_to_string(&pem[1..]).unwrap();
        assert!(load_with(&["--jwt-algorithm", "rs256", "--jwt-public-key", &inline]).is_ok());
    }

    #[test]
    fn bad_key_settings_name_the_setting_and_not_its_value() {
        let secret = "a-secret-that-is-long-enough-to-be-used-here";
        let jwks = format!("{FIXTURES}/jwks.json");
        refused(
            &["--jwt-algorithm", "rs256"],
            "--jwt-jwks-file (COUPOND_JWT_JWKS_FILE) or --jwt-public-key",
            "",
        );
        refused(
            &[
                "--jwt-algorithm",
                "rs256",
                "--jwt-jwks-file",
                &jwks,
                "--jwt-public-key",
                "x",
            ],
            "not both",
            "",
        );
        refused(
            &["--jwt-public-key", "pem-text"],
            "--jwt-public-key (COUPOND_JWT_PUBLIC_KEY)",
            "pem-text",
        );
        refused(
            &["--jwt-jwks-file", &jwks],
            "--jwt-jwks-file (COUPOND_JWT_JWKS_FILE)",
            "",
        );
        let with_secret = [
            "--jwt-algorithm",
            "es256",
            "--jwt-jwks-file",
            &jwks,
            "--jwt-secret",
            secret,
        ];
        refused(&with_secret, "--jwt-secret (COUPOND_JWT_SECRET)", secret);
        let garbage = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----";
        refused(
            &["--jwt-algorithm", "rs256", "--jwt-public-key", garbage],
            "--jwt-public-key",
            "bm90IGEga2V5",
        );
        let private = std::fs::read_to_string(format!("{FIXTURES}/rs256-private.pem")).unwrap();
        let message = refused(
            &["--jwt-algorithm", "rs256", "--jwt-public-key", &private],
            "--jwt-public-key",
            "MII",
        );
        assert!(message.contains("private key"), "{message}");
        refused(
            &["--jwt-algorithm", "rs256", "--jwt-public-key", "@/nonexistent/key.pem"],
            "--jwt-public-key",
            "",
        );
        refused(
            &["--jwt-algorithm", "rs256", "--jwt-jwks-file", "/nonexistent.json"],
            "--jwt-jwks-file",
            "",
        );
        let es_pem = format!("@{FIXTURES}/es256-public.pem");
        refused(
            &["--jwt-algorithm", "rs256", "--jwt-public-key", &es_pem],
            "not a RS256 public key",
            "",
        );
    }

    #[test]
    fn bad_claim_settings_name_the_setting() {
        refused(&["--jwt-issuer", " "], "--jwt-issuer (COUPOND_JWT_ISSUER) is empty", "");
        refused(
            &["--jwt-audience", ""],
            "--jwt-audience (COUPOND_JWT_AUDIENCE) is empty",
            "",
        );
        refused(
            &["--jwt-role-claim", ""],
            "--jwt-role-claim (COUPOND_JWT_ROLE_CLAIM)",
            "",
        );
        let leeway = Cli::try_parse_from(["coupond", "--jwt-leeway", "1h"])
            .map(|_| ())
            .unwrap_err();
        assert!(leeway.to_string().contains("--jwt-leeway"), "{leeway}");
        let algorithm = Cli::try_parse_from(["coupond", "--jwt-algorithm", "none"])
            .map(|_| ())
            .unwrap_err();
        assert!(algorithm.to_string().contains("--jwt-algorithm"), "{algorithm}");
    }

    #[test]
    fn role_names_are_trimmed_lists() {
        let cli = Cli::try_parse_from(["coupond", "--jwt-admin-roles", "ops, coupond:admin,,"]).unwrap();
        let rules = rules(&cli.config).unwrap();
        assert_eq!(rules.roles.admin, ["ops", "coupond:admin"]);
        assert_eq!(rules.roles.user, ["user", "coupond:user"]);
        assert_eq!(rules.leeway_seconds, 30);
    }
}
