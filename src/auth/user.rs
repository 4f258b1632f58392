//! An authenticated caller, as every authenticator reports it and SubjectAccessReview receives
//! it (Kubernetes `user.Info`).

use std::collections::BTreeMap;

/// The group of cluster administrators: always authorised, without a SubjectAccessReview.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Added to every authenticated user, as the apiserver's `AuthenticatedGroupAdder` does.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";

/// An authenticated caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// Adds `system:authenticated` unless present.
    pub fn authenticated(mut self) -> User {
        if !self.groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
            self.groups.push(SYSTEM_AUTHENTICATED.to_string());
        }
        self
    }

    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == SYSTEM_MASTERS)
    }
}
