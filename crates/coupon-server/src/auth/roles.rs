//! Which role a token grants. The role is read from one claim (`role` by default) and its names are
//! mapped to coupond's three roles through three lists, so that an identity provider's own role,
//! group or scope names can grant them. The highest privilege named wins.

use serde_json::{Map, Value};

use super::Role;

/// The claim that carries the role and the names that grant each role. Names match exactly (case
/// included), as providers compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNames {
    /// A top-level claim, or, when no top-level claim has the whole name, a dotted path into nested
    /// objects (`realm_access.roles`). The claim holds a string (one name, or several separated by
    /// spaces, as in `scope`) or an array of strings.
    pub claim: String,
    pub admin: Vec<String>,
    pub service: Vec<String>,
    pub user: Vec<String>,
}

impl Default for RoleNames {
    /// The `role` claim as `coupond token` writes it, and for each role its plain name and the
    /// namespaced `coupond:<role>`, for providers whose plain `admin` means some other application's.
    fn default() -> Self {
        let names = |role: &str| vec![role.to_owned(), format!("coupond:{role}")];
        RoleNames {
            claim: "role".into(),
            admin: names("admin"),
            service: names("service"),
            user: names("user"),
        }
    }
}

impl RoleNames {
    /// The highest role the claim names, or `None` when it is absent or names none of ours.
    pub(crate) fn role_of(&self, claims: &Map<String, Value>) -> Option<Role> {
        let names: Vec<&str> = match self.claim_value(claims)? {
            Value::String(s) => s.split_whitespace().collect(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => return None,
        };
        let named = |list: &[String]| names.iter().any(|n| list.iter().any(|l| l == n));
        if named(&self.admin) {
            Some(Role::Admin)
        } else if named(&self.service) {
            Some(Role::Service)
        } else if named(&self.user) {
            Some(Role::User)
        } else {
            None
        }
    }

    fn claim_value<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        // A whole name first: namespaced claims such as `https://shop.example/roles` hold dots.
        if let Some(value) = claims.get(&self.claim) {
            return Some(value);
        }
        let mut path = self.claim.split('.');
        let mut value = claims.get(path.next()?)?;
        for part in path {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(names: &RoleNames, claims: Value) -> Option<Role> {
        names.role_of(claims.as_object().unwrap())
    }

    #[test]
    fn the_highest_role_named_wins() {
        let names = RoleNames::default();
        assert_eq!(role(&names, json!({"role": "admin"})), Some(Role::Admin));
        assert_eq!(role(&names, json!({"role": "user"})), Some(Role::User));
        assert_eq!(
            role(&names, json!({"role": ["user", "coupond:service", "reader"]})),
            Some(Role::Service)
        );
        assert_eq!(role(&names, json!({"role": "openid coupond:admin"})), Some(Role::Admin));
        assert_eq!(role(&names, json!({"role": "Admin"})), None, "names match exactly");
        assert_eq!(role(&names, json!({"role": ["reader"]})), None);
        assert_eq!(role(&names, json!({"role": 1})), None);
        assert_eq!(role(&names, json!({"sub": "alice"})), None);
    }

    #[test]
    fn the_claim_may_be_nested_or_namespaced() {
        let nested = RoleNames {
            claim: "realm_access.roles".into(),
            ..RoleNames::default()
        };
        assert_eq!(
            role(&nested, json!({"realm_access": {"roles": ["service"]}})),
            Some(Role::Service)
        );
        let namespaced = RoleNames {
            claim: "https://shop.example/roles".into(),
            admin: vec!["ops".into()],
            ..RoleNames::default()
        };
        assert_eq!(
            role(&namespaced, json!({"https://shop.example/roles": ["ops"]})),
            Some(Role::Admin)
        );
    }
}
