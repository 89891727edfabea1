//! Variables: the per-owner values (`$me`, `$my_packages`, …) a condition may name, so one
//! default filter serves every user.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The values a filter's variables take for its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    /// `$me`: the owner's username.
    pub me: String,
    /// `$my_groups`
    pub my_groups: BTreeSet<String>,
    /// `$my_packages`: owned by the owner or by the owner's groups.
    pub my_packages: BTreeSet<String>,
    /// `$followed_users`
    pub followed_users: BTreeSet<String>,
    /// `$followed_packages`
    pub followed_packages: BTreeSet<String>,
}

impl Variables {
    /// Variables for a user who owns and follows nothing yet.
    pub fn for_user(me: impl Into<String>) -> Variables {
        Variables {
            me: me.into(),
            ..Variables::default()
        }
    }

    /// The set a set-valued variable stands for; `None` for `$me`, which is one value.
    pub fn set(&self, variable: Variable) -> Option<&BTreeSet<String>> {
        match variable {
            Variable::Me => None,
            Variable::MyGroups => Some(&self.my_groups),
            Variable::MyPackages => Some(&self.my_packages),
            Variable::FollowedUsers => Some(&self.followed_users),
            Variable::FollowedPackages => Some(&self.followed_packages),
        }
    }

    /// Every value a variable stands for, without allocating.
    pub fn resolve(&self, variable: Variable) -> impl Iterator<Item = &str> + '_ {
        let one = match variable {
            Variable::Me => Some(self.me.as_str()),
            _ => None,
        };
        one.into_iter()
            .chain(self.set(variable).into_iter().flatten().map(String::as_str))
    }
}

/// A variable a condition may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// `$me`
    Me,
    /// `$my_groups`
    MyGroups,
    /// `$my_packages`
    MyPackages,
    /// `$followed_users`
    FollowedUsers,
    /// `$followed_packages`
    FollowedPackages,
}

/// What a variable's values are, so `packages has $me` can be refused before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariableKind {
    /// Usernames (`$me`, `$followed_users`).
    Users,
    /// Package names (`$my_packages`, `$followed_packages`).
    Packages,
    /// Group names (`$my_groups`).
    Groups,
}

impl VariableKind {
    /// The variables of this kind, as written, for "expected …" messages.
    pub fn variables(self) -> &'static str {
        match self {
            VariableKind::Users => "$me, $followed_users",
            VariableKind::Packages => "$my_packages, $followed_packages",
            VariableKind::Groups => "$my_groups",
        }
    }

    /// A plural noun for the kind's values.
    pub fn noun(self) -> &'static str {
        match self {
            VariableKind::Users => "usernames",
            VariableKind::Packages => "packages",
            VariableKind::Groups => "groups",
        }
    }
}

impl Variable {
    /// Every variable, in the order listed to people.
    pub const ALL: [Variable; 5] = [
        Variable::Me,
        Variable::MyGroups,
        Variable::MyPackages,
        Variable::FollowedUsers,
        Variable::FollowedPackages,
    ];

    /// The name without `$`.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Me => "me",
            Variable::MyGroups => "my_groups",
            Variable::MyPackages => "my_packages",
            Variable::FollowedUsers => "followed_users",
            Variable::FollowedPackages => "followed_packages",
        }
    }

    /// The variable with this name (without `$`).
    pub fn from_name(name: &str) -> Option<Variable> {
        Variable::ALL.into_iter().find(|v| v.name() == name)
    }

    /// What the variable's values are.
    pub fn kind(self) -> VariableKind {
        match self {
            Variable::Me | Variable::FollowedUsers => VariableKind::Users,
            Variable::MyGroups => VariableKind::Groups,
            Variable::MyPackages | Variable::FollowedPackages => VariableKind::Packages,
        }
    }

    /// Whether the variable is one value (`$me`) rather than a set.
    pub fn is_single(self) -> bool {
        self == Variable::Me
    }
}
