//! Who is calling: the app behind a verified token, with its roles and default company.

/// What an app may do. Each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read entities and metadata.
    Reader,
    /// Also create, change and delete entity data.
    Writer,
    /// Also administer ferry (apps, keys, and later projects, jobs and profiles).
    Admin,
}

impl Role {
    pub fn parse(name: &str) -> Option<Role> {
        match name.to_ascii_lowercase().as_str() {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub client_id: String,
    pub roles: Vec<Role>,
    /// The company (`dataAreaId`) used when a request names none.
    pub default_company: Option<String>,
}

impl Principal {
    /// Whether any of the principal's roles includes `needed`.
    pub fn has(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| *r >= needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_lesser_roles() {
        let p = Principal { client_id: "x".into(), roles: vec![Role::Writer], default_company: None };
        assert!(p.has(Role::Reader) && p.has(Role::Writer) && !p.has(Role::Admin));
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
